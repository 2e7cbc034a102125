"""The module-level verbs: ``authchain.resolve``, ``resolve_many``, ``explain`` and their awaitable forms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from authchain import _default
from authchain._chain import _MISSING, Chain, NameOrRef
from authchain._default import get_default_chain
from authchain.errors import ChainClosedError
from authchain.values import Explanation, SecretValue

__all__ = ["aexplain", "aresolve", "aresolve_many", "explain", "resolve", "resolve_many"]


def resolve(
    name: NameOrRef, *, explicit: Any = None, default: Any = _MISSING, chain: Chain | None = None
) -> SecretValue[Any]:
    """Return the secret ``name`` from the first source that has it.

    Args:
        name: a logical name (``"DB_PASSWORD"``) or a reference (``"env://OTHER"``,
            ``"vault://secret/app#password"``), which goes straight to its backend.
        explicit: a value the caller already has; returned when not None.
        default: returned as given when nothing has the name.
        chain: the chain to use; default: the one built from ``authchain.toml``.

    Returns:
        A :class:`SecretValue`; call ``.get_secret_value()`` where you use it.

    Raises:
        SecretNotFound: no source had it (the message lists each source asked).
        BackendError: a source failed and is not configured ``on_error = "skip"``.
        ConfigError: a bad config, name or reference.

    Example:
        >>> import os
        >>> os.environ["AUTHCHAIN_DOCTEST_TOKEN"] = "example-token"
        >>> resolve("env://AUTHCHAIN_DOCTEST_TOKEN")
        SecretValue('**********')
        >>> resolve("AUTHCHAIN_DOCTEST_MISSING", default=None) is None
        True
    """
    target = chain or get_default_chain()
    try:
        return target.resolve(name, explicit=explicit, default=default)
    except ChainClosedError:
        again = _replacement(chain, target)
        if again is None:
            raise
    return again.resolve(name, explicit=explicit, default=default)


def resolve_many(
    names: Iterable[NameOrRef], *, default: Any = _MISSING, chain: Chain | None = None
) -> dict[str, SecretValue[Any]]:
    """Resolve several names in one go (batched per source, concurrent where possible).

    Raises:
        SecretNotFound: for the first missing name (all are in ``.missing``),
            unless ``default`` is given.
    """
    target = chain or get_default_chain()
    if chain is None:
        names = list(names)  # asked again if the default chain is replaced under the call
    try:
        return target.resolve_many(names, default=default)
    except ChainClosedError:
        again = _replacement(chain, target)
        if again is None:
            raise
    return again.resolve_many(names, default=default)


async def aresolve(
    name: NameOrRef, *, explicit: Any = None, default: Any = _MISSING, chain: Chain | None = None
) -> SecretValue[Any]:
    """:func:`resolve` for async code: same answers and cache, and the event loop never blocks.

    Backend calls run on a bounded thread pool; concurrent callers of one
    name (coroutines and threads alike) share one backend call.

    Example:
        >>> import asyncio, os
        >>> os.environ["AUTHCHAIN_DOCTEST_TOKEN"] = "example-token"
        >>> asyncio.run(aresolve("env://AUTHCHAIN_DOCTEST_TOKEN"))
        SecretValue('**********')
    """
    target = chain or await _default_chain()
    try:
        return await target.aresolve(name, explicit=explicit, default=default)
    except ChainClosedError:
        again = _replacement(chain, target)
        if again is None:
            raise
    return await again.aresolve(name, explicit=explicit, default=default)


async def aresolve_many(
    names: Iterable[NameOrRef], *, default: Any = _MISSING, chain: Chain | None = None
) -> dict[str, SecretValue[Any]]:
    """:func:`resolve_many` for async code (batched and concurrent the same way; see
    :meth:`Chain.aresolve_many` for where each source is asked)."""
    target = chain or await _default_chain()
    names = list(names)
    try:
        return await target.aresolve_many(names, default=default)
    except ChainClosedError:
        again = _replacement(chain, target)
        if again is None:
            raise
    return await again.aresolve_many(names, default=default)


def explain(name: NameOrRef, *, chain: Chain | None = None) -> Explanation:
    """Ask every source about ``name`` and report who has it, who won, who is shadowed.

    ``print(explain("DB_PASSWORD"))`` prints a table; no value is ever shown.
    """
    target = chain or get_default_chain()
    try:
        return target.explain(name)
    except ChainClosedError:
        again = _replacement(chain, target)
        if again is None:
            raise
    return again.explain(name)


async def aexplain(name: NameOrRef, *, chain: Chain | None = None) -> Explanation:
    """:func:`explain` for async code: the same report, and the event loop never blocks.

    Example:
        >>> import asyncio, os
        >>> os.environ["AUTHCHAIN_DOCTEST_TOKEN"] = "example-token"
        >>> print(asyncio.run(aexplain("env://AUTHCHAIN_DOCTEST_TOKEN")).winner.source)
        env
    """
    target = chain or await _default_chain()
    try:
        return await target.aexplain(name)
    except ChainClosedError:
        again = _replacement(chain, target)
        if again is None:
            raise
    return await again.aexplain(name)


async def _default_chain() -> Chain:
    """The default chain; its first build (a config file read, plugins found) runs in a thread."""
    if _default._chain is not None:
        return _default._chain
    import asyncio

    return await asyncio.to_thread(get_default_chain)


def _replacement(given: Chain | None, closed: Chain) -> Chain | None:
    """The chain to ask again after ``closed`` was closed under a call (None: none).

    ``reset_default_chain()`` closes the default chain while other threads may
    be using it: their call is made once more on the new default. A chain the
    caller passed, or a default chain closed without being replaced, stays an
    error.
    """
    if given is not None:
        return None
    current = get_default_chain()
    return current if current is not closed else None
