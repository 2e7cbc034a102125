"""Scripted sources and seams shared by the chain's tests (tests/chain/).

Faults a real source cannot be made to show come from small Source subclasses
defined here; the chain itself is never mocked. Time, sleep and jitter come in
through the chain's seams, so nothing waits except the single-flight and pool
tests, which sleep a few milliseconds inside a source on purpose.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from authchain import BackendError, SecretNotFound, SecretValue
from authchain.errors import SourceUnavailableError
from authchain.sources.base import Found, Key, NotFound, Source

# -- test sources and seams --------------------------------------------------------


class ScriptedSource(Source):
    """Answers from a dict, but raises ``fault()`` for the first ``failures`` calls."""

    type = "scripted"
    concurrent = False

    def __init__(
        self,
        values: dict[str, str] | None = None,
        *,
        fault: Callable[[], Exception] | None = None,
        failures: int = 0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.values = dict(values or {})
        self.fault = fault
        self.failures = failures
        self.calls = 0
        self.closed = 0
        self._lock = threading.Lock()

    def fail(self, fault: Callable[[], Exception], times: int = 10**6) -> None:
        """From now on, fail the next ``times`` calls."""
        with self._lock:
            self.fault, self.failures = fault, self.calls + times

    def key_for(self, name: str) -> Key:
        return name

    def get(self, key: Key) -> Found | NotFound:
        with self._lock:
            self.calls += 1
            failing = self.fault is not None and self.calls <= self.failures
        if failing:
            assert self.fault is not None
            raise self.fault()
        value = self.values.get(str(key))
        if value is None:
            return NotFound(f"{key} is not scripted")
        return Found(SecretValue(value), f"{key} is scripted")

    def close(self) -> None:
        self.closed += 1

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["values"] = {}
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def throttled() -> BackendError:
    return BackendError("throttled (HTTP 503)", retryable=True)


def denied() -> BackendError:
    return BackendError("permission denied on kv/app", access_denied=True, retryable=True)


def unavailable() -> SourceUnavailableError:
    return SourceUnavailableError("no keyring backend on this machine")


class SlowSource(Source):
    """An I/O-bound source: each get sleeps briefly; counts calls and peak concurrency."""

    type = "slow"
    concurrent = True

    def __init__(self, values: dict[str, str], *, delay: float = 0.05, **common: Any) -> None:
        super().__init__(**common)
        self.values = values
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def key_for(self, name: str) -> Key:
        return name

    def get(self, key: Key) -> Found | NotFound:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.in_flight -= 1
        value = self.values.get(str(key))
        return NotFound(f"{key} is not here") if value is None else Found(SecretValue(value))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sleeps(list[float]):
    """Records the delays the chain asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def ceiling(low: float, high: float) -> float:
    """Jitter that always picks the top of the range, so delays are predictable."""
    assert low == 0.0, "full jitter draws from [0, ceiling]"
    return high


def secret(value: SecretValue[Any] | None) -> Any:
    assert isinstance(value, SecretValue)
    return value.get_secret_value()


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()), encoding="utf-8")
    return path


def labels(error: SecretNotFound) -> list[str]:
    return [attempt.source for attempt in error.attempts]
