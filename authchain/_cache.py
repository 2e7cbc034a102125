"""Per-chain TTL cache and single flight, keyed by (source name, backend key).

Keys never contain values. Entries past their TTL are kept for the
``stale_if_error`` grace period so a failed refresh can fall back to them,
as aws-secretsmanager-caching does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Entry", "SingleFlight", "TTLCache"]

T = TypeVar("T")


@dataclass(frozen=True)
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


class SingleFlight(Generic[T]):
    """Concurrent callers for one key share one call of the function."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call[T]] = {}
        self._lock = threading.Lock()

    def do(self, key: Hashable, function: Callable[[], T]) -> T:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result  # type: ignore[return-value]
        try:
            call.result = function()
            return call.result
        except BaseException as error:
            call.error = error
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()
