"""Per-chain TTL cache and single flight, keyed by (source name, backend key).

Keys never contain values. Entries past their TTL are kept for the
``stale_if_error`` grace period so a failed refresh can fall back to them,
as aws-secretsmanager-caching does.
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

    def fresh(self, now: float) -> bool:
        return now - self.stored_at < self.ttl

    def usable_stale(self, now: float, grace: float) -> bool:
        return now - self.stored_at < self.ttl + grace


class TTLCache(Generic[T]):
    """A thread-safe dict of entries with an age; expired ones are dropped lazily."""

    def __init__(self, clock: Callable[[], float], grace: float = 0.0) -> None:
        self._clock = clock
        self._grace = grace
        self._entries: dict[Hashable, Entry[T]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Entry[T] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.usable_stale(self._clock(), self._grace):
                del self._entries[key]
                return None
            return entry

    def put(self, key: Hashable, result: T, ttl: float) -> None:
        if ttl <= 0:
            # Not kept; and an older entry must not outlive this answer (an
            # expired value served as stale after the secret was deleted).
            self.pop(key)
            return
        with self._lock:
            self._entries[key] = Entry(result, self._clock(), ttl)

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
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
