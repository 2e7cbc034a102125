"""Swap every secret lookup for a test, and make canary values to hunt leaks with.

While :func:`override_secrets` (or the ``authchain_secrets`` fixture) is
active, one override layer answers first for every chain in the process: the
default chain, a chain a Secret task builds (``source_options``, Prefect
blocks), a ``scheme://`` reference and a client factory's credential lookup.
A name or reference it does not hold is ``SecretNotFound`` naming the
override: nothing real (no backend, no environment variable, no ``.env``
file) is asked unless ``passthrough`` is switched on.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from authchain._chain import Chain, _set_testing_override
from authchain._default import get_default_chain, set_default_chain
from authchain.refs import SecretRef, is_reference
from authchain.sources.base import Found, Key, NotFound
from authchain.testing.memory import MemorySource

__all__ = ["OverrideSource", "canary", "override_secrets"]

_HINT = (
    "not overridden; under override_secrets / the authchain_secrets fixture nothing real is asked "
    "(set it, or set .passthrough = True to ask the configured sources too)"
)


class OverrideSource(MemorySource):
    """One test's overrides: ``source["NAME"] = v`` or ``source["aws-sm://prod/db#password"] = v``.

    A reference is answered by, in order: the same reference (written in any
    equivalent form); the reference without its ``#KEY``, whose JSON value
    gives the field; both again without the reference's ``?query`` settings
    (version, stage, region); the secret's name (``env://API_TOKEN``, ``aws-sm://API_TOKEN``,
    ``vault://secret/app/API_TOKEN``, ``aws-ssm:///app/API_TOKEN``,
    ``gcp-sm://API_TOKEN/versions/latest`` and ``keyring://svc/API_TOKEN``
    are all answered by ``API_TOKEN``), again with the field picked from JSON.

    ``passthrough`` (default False): also ask the sources configured for
    whatever chain is asked, after the overrides.
    """

    def __init__(self, values: Mapping[str, str | bytes] | None = None, **common: Any) -> None:
        super().__init__(None, **common)
        self._passthrough = False
        self._on_passthrough: Callable[[bool], None] | None = None
        for name, value in (values or {}).items():
            self[name] = value

    @property
    def passthrough(self) -> bool:
        return self._passthrough

    @passthrough.setter
    def passthrough(self, on: bool) -> None:
        self._passthrough = bool(on)
        if self._on_passthrough is not None:
            self._on_passthrough(self._passthrough)

    def __setitem__(self, name: str, value: str | bytes) -> None:
        super().__setitem__(_normal(name), value)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(_normal(name))

    def __contains__(self, name: object) -> bool:
        return super().__contains__(_normal(name) if isinstance(name, str) else name)

    def set(self, name: str, value: str | bytes) -> None:
        self[name] = value

    def get(self, key: Key) -> Found | NotFound:
        result = super().get(key)
        if isinstance(result, NotFound):
            return NotFound(f"{key} is {_HINT}")
        return Found(result.value, f"{key} is overridden")

    def lookup_key(self, name: str | SecretRef) -> tuple[Key, str | None]:
        """The (key, JSON field) that answers ``name``; the name itself when nothing does."""
        if not (isinstance(name, SecretRef) or is_reference(name)):
            return str(name), None
        ref = SecretRef.parse(name)
        field = ref.field
        candidates: list[tuple[str, str | None]] = []
        for params in dict.fromkeys((ref.params, ())):  # with its ?query, then without
            candidates.append((str(SecretRef(ref.scheme, ref.location, ref.fragment, params)), None))
            if field:
                candidates.append((str(SecretRef(ref.scheme, ref.location, None, params)), field))
        own = _name_of(ref)
        if own:
            candidates.append((own, field))
        for key, pick in candidates:
            if key in self._values:
                return key, pick
        return str(ref), None


def _normal(name: str) -> str:
    """A reference in one canonical text, so equivalent spellings find the same override."""
    return str(SecretRef.parse(name)) if is_reference(name) else name


def _name_of(ref: SecretRef) -> str | None:
    """The secret's own name inside a reference (what ``authchain_secrets["NAME"]`` answers)."""
    if ref.scheme == "dotenv":
        return ref.fragment
    if ref.scheme == "gcp-sm":
        parts = ref.location.split("/")
        if "secrets" in parts and parts.index("secrets") + 1 < len(parts):
            return parts[parts.index("secrets") + 1]
        return parts[0] or None
    return ref.location.rstrip("/").rsplit("/", 1)[-1] or None


class _OverrideLayer:
    """What the chain's testing hook asks (see ``authchain._chain._set_testing_override``)."""

    def __init__(self, source: OverrideSource) -> None:
        self.source = source

    def lookup_key(self, name: str | SecretRef) -> tuple[Key, str | None]:
        return self.source.lookup_key(name)


@contextmanager
def override_secrets(
    values: Mapping[str, str | bytes] | None = None, *, passthrough: bool = False
) -> Iterator[OverrideSource]:
    """Make every secret lookup answer from ``values`` inside the ``with`` block.

    Covers ``authchain.resolve``, every Secret task (whatever its backend,
    ``chain=`` or ``source_options=``), every ``scheme://`` reference and the
    client factories' credential lookups (``AWS_CREDENTIALS``, ``VAULT_TOKEN``):
    keys are names or references (see :class:`OverrideSource`).

    Args:
        values: name or reference → value. Add more through the yielded source
            (``source["NAME"] = "value"``).
        passthrough: also ask the configured sources after the overrides (also
            settable later: ``source.passthrough = True``). Off by default so a
            test never reaches a real backend or the real environment by accident.

    Example:
        >>> import authchain
        >>> with override_secrets({"DB_PASSWORD": "test-only"}):
        ...     authchain.resolve("DB_PASSWORD").get_secret_value()
        'test-only'
    """
    memory = OverrideSource(values, name="override")
    import authchain._default as default

    original = previous = (
        default._chain
    )  # None: not built yet (then built from config only if asked to pass through)
    empty = Chain([], cache_ttl=0)

    def use_default(through: bool) -> None:
        # Without passthrough the default chain is an empty stand-in: the
        # configured one (and its config file) is not even built.
        nonlocal previous
        if through and previous is None:
            previous = get_default_chain()
        set_default_chain(previous if through else empty)

    use_default(passthrough)
    memory.passthrough = passthrough
    memory._on_passthrough = use_default
    before = _set_testing_override(_OverrideLayer(memory))
    try:
        yield memory
    finally:
        memory._on_passthrough = None
        _set_testing_override(before)
        set_default_chain(original)


def canary(label: str = "canary") -> str:
    """A unique, unguessable value to plant and then search for in outputs."""
    return f"{label}-{secrets.token_hex(12)}"
