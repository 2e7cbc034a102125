"""Swap the default chain for a test, and make canary values to hunt leaks with."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from authchain._chain import Chain
from authchain._default import get_default_chain, set_default_chain
from authchain.testing.memory import MemorySource

__all__ = ["canary", "override_secrets"]


@contextmanager
def override_secrets(
    values: Mapping[str, str | bytes] | None = None, *, passthrough: bool = False
) -> Iterator[MemorySource]:
    """Make ``authchain.resolve`` answer from ``values`` inside the ``with`` block.

    Args:
        values: name → value. Add more through the yielded source
            (``source["NAME"] = "value"``).
        passthrough: also ask the configured chain after the overrides. Off by
            default so a test never reaches a real backend by accident.

    Example:
        >>> import authchain
        >>> with override_secrets({"DB_PASSWORD": "test-only"}):
        ...     authchain.resolve("DB_PASSWORD").get_secret_value()
        'test-only'
    """
    memory = MemorySource(values, name="override")
    sources = [memory, *get_default_chain().sources] if passthrough else [memory]
    previous = set_default_chain(Chain(sources, cache_ttl=0))
    try:
        yield memory
    finally:
        set_default_chain(previous)


def canary(label: str = "canary") -> str:
    """A unique, unguessable value to plant and then search for in outputs."""
    return f"{label}-{secrets.token_hex(12)}"
