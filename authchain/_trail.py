"""One source's outcome, turned into a line of the attempt trail.

``SecretNotFound``, ``explain`` and the chain's log lines all read the same
:class:`~authchain.values.Attempt` list; this module is where an outcome
(found, not found, an error, a ``#KEY`` field of a JSON secret) becomes one,
where a found value is registered with the masker, and where an exception
a source let escape becomes that source's ``BackendError`` (:func:`guarded`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from authchain import masking
from authchain._scrub import clear_frames, scrubbed
from authchain.errors import AuthChainError, BackendError, UpstreamError
from authchain.sources.base import Found, NotFound
from authchain.values import Attempt, SecretValue

if TYPE_CHECKING:
    from authchain.sources.base import Source

__all__ = ["EXPLICIT_NOT_PASSED", "announce", "failed", "guarded", "pick_field", "recorded", "register"]

logger = logging.getLogger("authchain")

Result = Found | NotFound

EXPLICIT_NOT_PASSED = Attempt("explicit", "explicit", "not_asked", "no value passed")


def recorded(source: Source, result: Result, cached: bool) -> tuple[Attempt, SecretValue[Any] | None]:
    """The attempt for a found or not-found answer, and the value if found (registered with the masker)."""
    if isinstance(result, Found):
        masking.register(result.value, label=source.name)
        detail = result.detail or "found"
        return Attempt(source.name, source.type, "found", detail, cached), result.value
    logger.debug("%s: %s", source.name, result.reason)
    return Attempt(source.name, source.type, "not_found", result.reason, cached), None


def failed(source: Source, error: BackendError, raise_errors: bool) -> Attempt:
    """The attempt for a failed source.

    Raised instead (with a scrubbed cause) when ``raise_errors`` is on and
    the source does not say ``on_error = "skip"``.
    """
    tries = getattr(error, "attempts", 1)
    limit = getattr(error, "deadline_seconds", None)
    notes = [f"after {tries} attempts"] if tries > 1 else []
    if limit is not None and tries:
        notes.append(f"stopped by the {limit:g}s deadline")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    skip = source.on_error == "skip"
    # SDK exceptions can carry request and response data: only a scrubbed
    # stand-in (type, masked text, traceback) goes on as the cause, and no
    # frame of the failure keeps its locals (a parsed response, a value).
    from authchain._upstream import scrub_cause  # the error path only: not at start-up

    clear_frames(error)
    cause = scrub_cause(error.__cause__)
    logger.debug("%s failed%s: %s", source.name, suffix, error.message, exc_info=cause)
    if raise_errors and not skip:
        raise error.with_source(source.name, suffix, label=source.label) from cause
    note = " (on_error = skip)" if skip and raise_errors else ""
    denied = "access denied: " if error.access_denied and "denied" not in error.message else ""
    return Attempt(source.name, source.type, "error", f"error: {denied}{error.message}{suffix}{note}")


def announce(label: str, attempt: Attempt) -> None:
    """Log the winner: INFO for a fetch, DEBUG for a cached answer; never the value."""
    level = logging.DEBUG if attempt.cached else logging.INFO
    logger.log(level, "%s resolved by %s%s", label, attempt.label, " (cached)" if attempt.cached else "")


@scrubbed
def pick_field(result: Result, field: str | None, where: str) -> Result:
    """Apply a reference's ``#KEY`` to a JSON secret."""
    if field is None or not isinstance(result, Found):
        return result
    try:
        parsed = result.value.json()
    except ValueError:
        raise BackendError(f"{where} is not valid JSON, so #{field} cannot be read") from None
    if not isinstance(parsed, dict):
        raise BackendError(f"{where} is JSON but not an object, so #{field} cannot be read")
    if field not in parsed:
        return NotFound(f"{where} has no field {field!r}")
    item = parsed[field]
    import json

    text = item if isinstance(item, str) else json.dumps(item)
    return Found(SecretValue(text), f"{result.detail or where} (field {field!r})")


def register(results: Iterable[object], label: str) -> None:
    """Register found values with the masker as soon as a backend call returns.

    ``label`` (the source's name) is what the warning about a value too short
    to mask names.
    """
    for result in results:
        if isinstance(result, Found):
            masking.register(result.value, label=label)


def guarded(source: Source, operation: Callable[[], Any]) -> Callable[[], Any]:
    """``operation`` with anything but authchain's own errors turned into a ``BackendError``.

    A source is expected to translate its SDK's exceptions; one that escapes is
    still an error of that source (``on_error = "skip"`` applies, ``explain``
    records it), and its text, which may hold data just fetched, is not shown.
    """

    def run() -> Any:
        try:
            return operation()
        except AuthChainError:
            raise
        except Exception as error:
            failure, stand_in = _unexpected(source, error)
        raise failure from stand_in

    return run


def aguarded(source: Source, operation: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """:func:`guarded` for a coroutine function."""

    async def run() -> Any:
        try:
            return await operation()
        except AuthChainError:
            raise
        except Exception as error:
            failure, stand_in = _unexpected(source, error)
        raise failure from stand_in

    return run


def _unexpected(source: Source, error: Exception) -> tuple[BackendError, BaseException]:
    """The ``BackendError`` for an exception a source let escape, and what it is raised from."""
    from authchain._upstream import type_name  # the error path only: not at start-up

    failure = BackendError(f"unexpected {type(error).__name__} in the {source.type} source")
    clear_frames(error)  # the traceback stays (lines only): its frames may hold data fetched
    stand_in = UpstreamError(type_name(error), "")
    stand_in.__traceback__ = error.__traceback__
    return failure, stand_in
