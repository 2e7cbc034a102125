"""Retry with capped exponential backoff and full jitter, inside a whole-lookup deadline.

Hand-written rather than tenacity: the policy is ten lines, it must take
its clock, sleep and jitter as seams (tests count attempts and delays without
waiting), and the happy path must not pay an extra import.

The deadline is the chain's ``deadline`` setting: one ``resolve``,
``resolve_many`` or ``explain`` call (credential lookups made on its behalf
included) may spend that long asking sources. It lives in a context
variable, so a source can read what is left (:func:`time_left`) and shorten
the timeout of the request it is about to make.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from authchain._records import record
from authchain.errors import BackendError

__all__ = ["Deadline", "RetryPolicy", "acall_with_retry", "call_with_retry", "deadline_scope", "time_left"]

logger = logging.getLogger("authchain")

T = TypeVar("T")

RETRY_AFTER_MAX = 60.0
"""The longest ``Retry-After`` waited for when a lookup has no deadline (``deadline = 0``):
a server asking for longer (a day, ``1e400``) gets the error raised at once, never a sleep
that long or an ``OverflowError`` from ``time.sleep``."""

Jitter = Callable[[float, float], float]


@record
class RetryPolicy:
    """``retries`` more attempts after the first; delay ``jitter(0, min(cap, base * 2**n))``."""

    retries: int = 2
    backoff: float = 0.2
    backoff_max: float = 5.0

    def delay(self, attempt: int, jitter: Jitter) -> float:
        """Full jitter (AWS architecture blog): spreads retries of many clients apart."""
        ceiling = min(self.backoff_max, self.backoff * (2**attempt))
        return jitter(0.0, ceiling)


@record
class Deadline:
    """The moment (on ``clock``) by which the current lookup must be over."""

    seconds: float
    at: float
    clock: Callable[[], float]

    def left(self) -> float:
        return self.at - self.clock()


_generator: Any = None


def full_jitter(low: float, high: float) -> float:
    """A uniform draw from a generator of authchain's own, made on the first retry.

    Not the ``random`` module's shared generator: a program that seeds
    ``random`` for reproducible runs must not see its sequence shift because
    a secret fetch was retried. ``random`` is imported here, not at start-up.
    """
    global _generator
    if _generator is None:
        import random

        _generator = random.Random()
    return float(_generator.uniform(low, high))


_DEADLINE: ContextVar[Deadline | None] = ContextVar("authchain_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(seconds: float | None, clock: Callable[[], float]) -> Iterator[Deadline | None]:
    """Start a deadline of ``seconds`` (None or 0: none) unless one is already running.

    An outer lookup's deadline wins: credentials a source resolves for itself
    are part of the lookup that needed them.
    """
    current = _DEADLINE.get()
    if current is not None or not seconds:
        yield current
        return
    deadline = Deadline(seconds, clock() + seconds, clock)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> Deadline | None:
    return _DEADLINE.get()


def time_left() -> float | None:
    """Seconds left before the current lookup's deadline (None: no deadline).

    Sources use it to shorten the timeout of a request they are about to make.
    """
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline.left()


def call_with_retry(
    operation: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    jitter: Jitter | None = None,
    label: str = "",
    what: str | Callable[[], str] = "",
) -> T:
    """Run ``operation``; retry retryable ``BackendError``s, then re-raise the last.

    A retry waits the backoff, or the error's ``retry_after`` when the backend
    asked for longer (HTTP ``Retry-After``): never past the deadline, and
    without one never more than ``RETRY_AFTER_MAX`` (a longer ask is not retried).

    Access denied and other non-retryable errors are raised at once. The
    raised error carries ``attempts`` (how many calls were made). Under a
    deadline no attempt starts and no backoff sleep runs past it: a retry
    that would is not made, and the last error is raised with
    ``deadline_seconds`` set; a deadline already over before the first
    attempt is a retryable ``BackendError`` of its own (nothing was asked).
    """
    deadline = _not_over(what)
    attempt = 0
    while True:
        try:
            return operation()
        except BackendError as error:
            delay = _retry_delay(error, attempt, policy, jitter, deadline, label)
        sleep(delay)
        attempt += 1


async def acall_with_retry(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]],
    jitter: Jitter | None = None,
    label: str = "",
    what: str | Callable[[], str] = "",
) -> T:
    """:func:`call_with_retry` for a coroutine: the same policy, each attempt and backoff awaited."""
    deadline = _not_over(what)
    attempt = 0
    while True:
        try:
            return await operation()
        except BackendError as error:
            delay = _retry_delay(error, attempt, policy, jitter, deadline, label)
        await sleep(delay)
        attempt += 1


def _not_over(what: str | Callable[[], str]) -> Deadline | None:
    """The current deadline; raised as a ``BackendError`` of its own when already over (nothing was asked)."""
    deadline = _DEADLINE.get()
    if deadline is not None and deadline.left() <= 0:
        what = what() if callable(what) else what  # described only when a message needs it
        error = BackendError(
            f"not asked{f' for {what}' if what else ''}: the {deadline.seconds:g}s deadline "
            "of this lookup had passed",
            retryable=True,
        )
        error.attempts = 0  # type: ignore[attr-defined]
        error.deadline_seconds = deadline.seconds  # type: ignore[attr-defined]
        raise error
    return deadline


def _retry_delay(
    error: BackendError,
    attempt: int,
    policy: RetryPolicy,
    jitter: Jitter | None,
    deadline: Deadline | None,
    label: str,
) -> float:
    """How long to wait before attempt ``attempt + 2`` after ``error``; ``error`` raised when there is none.

    Called inside the ``except`` clause, so the bare ``raise`` keeps the error's traceback.
    """
    error.attempts = attempt + 1  # type: ignore[attr-defined]
    if not error.retryable or attempt >= policy.retries:
        raise error
    delay = policy.delay(attempt, jitter or full_jitter)
    wait = error.retry_after
    if wait is not None and wait >= 0:  # the backend said how long (Retry-After); NaN is not
        if deadline is None and wait > RETRY_AFTER_MAX:
            raise error  # a day, or forever: not waited for, whatever the server says
        delay = max(delay, wait)
    if deadline is not None and delay >= deadline.left():
        error.deadline_seconds = deadline.seconds  # type: ignore[attr-defined]
        raise error
    logger.debug(
        "%s: retryable error (attempt %d of %d), retrying in %.3fs: %s",
        label,
        attempt + 1,
        policy.retries + 1,
        delay,
        error.message,
    )
    return delay
