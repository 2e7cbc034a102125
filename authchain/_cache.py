"""Per-chain TTL cache and single flight, keyed by (source name, backend key).

Keys never contain values. Entries past their TTL are kept for the
``stale_if_error`` grace period so a failed refresh can fall back to them,
as aws-secretsmanager-caching does.

Invalidation is generational: a fetch takes :meth:`TTLCache.generation`
before it asks the backend and stores with ``put(..., since=...)``, which
refuses the answer when its key (or the whole cache) was invalidated in the
meantime. Otherwise a fetch that started before a rotation would put the old
value back for a full TTL right after ``invalidate()`` removed it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from authchain._records import record

__all__ = ["Entry", "FlightTimeout", "SingleFlight", "TTLCache"]

T = TypeVar("T")


@record
class Entry(Generic[T]):
    result: T
    stored_at: float
    ttl: float
    # Where the answer holds besides its age (None: everywhere); a "not found"
    # remembered for one Prefect flow run carries that run. See Chain._hit.
    scope: Hashable = None

    def fresh(self, now: float) -> bool:
        return now - self.stored_at < self.ttl

    def usable_stale(self, now: float, grace: float) -> bool:
        return now - self.stored_at < self.ttl + grace


# Keys remembered as "invalidated at generation N" before the whole map is
# folded into one cache-wide mark (callers that invalidate a new reference per
# request must not grow it without bound).
_MAX_INVALIDATED = 1024


class TTLCache(Generic[T]):
    """A thread-safe dict of entries with an age; expired ones are dropped lazily."""

    def __init__(self, clock: Callable[[], float], grace: float = 0.0) -> None:
        self._clock = clock
        self._grace = grace
        self._entries: dict[Hashable, Entry[T]] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation. A put whose fetch started at an older
        # generation than its key's (or the cache's) last invalidation is refused.
        self._generation = 0
        self._cleared_at = 0
        self._invalidated: dict[Hashable, int] = {}

    def generation(self) -> int:
        """The token a fetch takes before it asks the backend (see :meth:`put`)."""
        with self._lock:
            return self._generation

    def unchanged_since(self, generation: int) -> bool:
        """Whether nothing at all was invalidated since ``generation`` was taken."""
        with self._lock:
            return self._generation == generation

    def get(self, key: Hashable) -> Entry[T] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.usable_stale(self._clock(), self._grace):
                del self._entries[key]
                return None
            return entry

    def put(
        self, key: Hashable, result: T, ttl: float, *, since: int | None = None, scope: Hashable = None
    ) -> bool:
        """Store ``result`` for ``ttl`` seconds; False if it was refused.

        ``since`` is the :meth:`generation` taken before the fetch started: an
        answer fetched before ``key`` (or the whole cache) was invalidated is
        not stored, and does not displace what a later fetch stored. ``scope``
        is kept with the entry (where it applies; None: everywhere).
        """
        with self._lock:
            if since is not None and since < max(self._cleared_at, self._invalidated.get(key, 0)):
                return False
            if ttl <= 0:
                # Not kept; and an older entry must not outlive this answer (an
                # expired value served as stale after the secret was deleted).
                self._entries.pop(key, None)
            else:
                self._entries[key] = Entry(result, self._clock(), ttl, scope)
            return True

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def invalidate(self, key: Hashable) -> None:
        """Drop ``key`` and refuse answers to fetches of it that are already under way."""
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)
            if len(self._invalidated) >= _MAX_INVALIDATED:
                # Folded into one mark: every fetch under way now is refused.
                self._cleared_at = self._generation
                self._invalidated.clear()
            else:
                self._invalidated[key] = self._generation

    def clear(self) -> None:
        """Drop every entry and refuse the answers of every fetch already under way."""
        with self._lock:
            self._generation += 1
            self._cleared_at = self._generation
            self._invalidated.clear()
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class _Call(Generic[T]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class FlightTimeout(TimeoutError):
    """A follower stopped waiting for another caller's call of the same key."""


class SingleFlight(Generic[T]):
    """Concurrent callers for one key share one call of the function.

    :meth:`do` covers one key. A batch call claims several keys at once
    (:meth:`claim`), fetches the ones it leads in one request, settles each
    (:meth:`settle`), and waits (:meth:`wait`) for the keys another caller
    was already fetching, so a key is never fetched twice at the same time
    whichever way it was asked for.
    """

    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call[T]] = {}
        self._lock = threading.Lock()

    def claim(self, key: Hashable) -> tuple[_Call[T], bool]:
        """The call in flight for ``key`` and whether this caller leads it (and must settle it)."""
        with self._lock:
            call = self._calls.get(key)
            if call is not None:
                return call, False
            call = self._calls[key] = _Call()
            return call, True

    def forget(self, key: Hashable) -> None:
        """Callers from now on start a new call for ``key`` instead of joining the one running.

        The running call still hands its outcome to those already waiting on
        it (used when ``key`` is invalidated while a fetch is under way).
        """
        with self._lock:
            self._calls.pop(key, None)

    def forget_all(self) -> None:
        """:meth:`forget` every key."""
        with self._lock:
            self._calls.clear()

    def settle(self, key: Hashable, call: _Call[T], result: T | None, error: BaseException | None) -> None:
        """Hand a led call's outcome to everyone waiting on it, and end the flight."""
        call.result, call.error = result, error
        with self._lock:
            if self._calls.get(key) is call:
                del self._calls[key]
        call.done.set()

    def wait(self, call: _Call[T], timeout: float | None = None) -> T:
        """The outcome of a call another caller leads (raised if it failed).

        Raises:
            FlightTimeout: not settled within ``timeout`` seconds (None: no limit).
        """
        if not call.done.wait(None if timeout is None else max(timeout, 0.0)):
            raise FlightTimeout(f"still waiting for another caller's fetch after {timeout:g}s")
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def do(self, key: Hashable, function: Callable[[], T], *, wait: float | None = None) -> T:
        """Call ``function`` for ``key``, or wait for the call already running for it.

        A caller that finds a call running waits at most ``wait`` seconds (None:
        as long as it takes), then raises :class:`FlightTimeout`; the running
        call goes on for the others.
        """
        call, leader = self.claim(key)
        if not leader:
            return self.wait(call, wait)
        try:
            result = function()
        except BaseException as error:
            self.settle(key, call, None, error)
            raise
        self.settle(key, call, result, None)
        return result
