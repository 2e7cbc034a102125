"""The chain's cache through Chain: TTLs, stale-if-error, invalidation, single flight.

The chain against real and scripted sources (helpers: tests/chain/_support.py).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from authchain import BackendError, Chain, SecretNotFound
from authchain.sources.base import Found, Key, NotFound
from authchain.testing import MemorySource, canary
from authchain.testing.contract import assert_not_leaked
from tests.chain._support import (
    FakeClock,
    ScriptedSource,
    Sleeps,
    SlowSource,
    secret,
    throttled,
)

# -- cache -----------------------------------------------------------------------------


def test_cache_serves_until_the_ttl_expires() -> None:
    clock = FakeClock()
    memory = MemorySource({"TOKEN": "old-value"})
    chain = Chain([memory], cache_ttl=10, clock=clock)
    assert secret(chain.resolve("TOKEN")) == "old-value"
    memory["TOKEN"] = "new-value"
    clock.advance(9.9)
    assert secret(chain.resolve("TOKEN")) == "old-value"
    assert memory.calls == 1
    clock.advance(0.1)
    assert secret(chain.resolve("TOKEN")) == "new-value"
    assert memory.calls == 2


def test_default_cache_ttl_is_five_minutes() -> None:
    clock = FakeClock()
    memory = MemorySource({"TOKEN": canary()})
    chain = Chain([memory], clock=clock)
    chain.resolve("TOKEN")
    clock.advance(299)
    chain.resolve("TOKEN")
    assert memory.calls == 1
    clock.advance(1)
    chain.resolve("TOKEN")
    assert memory.calls == 2


def test_cache_ttl_zero_disables_the_cache() -> None:
    memory = MemorySource({"TOKEN": canary()})
    chain = Chain([memory], cache_ttl=0)
    for _ in range(3):
        chain.resolve("TOKEN")
    assert memory.calls == 3
    assert not chain.explain("TOKEN").from_cache


def test_not_found_is_not_cached_by_default() -> None:
    memory = MemorySource()
    chain = Chain([memory], clock=FakeClock())
    assert chain.resolve("TOKEN", default=None) is None
    memory["TOKEN"] = "arrived"
    assert secret(chain.resolve("TOKEN")) == "arrived"
    assert memory.calls == 2


def test_negative_ttl_remembers_not_found_briefly() -> None:
    clock = FakeClock()
    memory = MemorySource()
    chain = Chain([memory], negative_ttl=5, clock=clock)
    assert chain.resolve("TOKEN", default=None) is None
    memory["TOKEN"] = "arrived"
    assert chain.resolve("TOKEN", default=None) is None
    assert memory.calls == 1
    with pytest.raises(SecretNotFound) as caught:
        chain.resolve("TOKEN")
    assert "memory: TOKEN is not in memory [cached]" in str(caught.value)
    clock.advance(5)
    assert secret(chain.resolve("TOKEN")) == "arrived"
    assert memory.calls == 2


def test_cache_is_per_source_and_key() -> None:
    clock = FakeClock()
    a = MemorySource({"X": "from-a"}, name="a")
    b = MemorySource({"X": "from-b", "Y": "y-from-b"}, name="b")
    chain = Chain([a, b], clock=clock)
    assert secret(chain.resolve("X")) == "from-a"
    assert secret(chain.resolve("memory://X")) == "from-a"  # same (source, key): cached
    assert (a.calls, b.calls) == (1, 0)
    assert secret(chain.resolve("Y")) == "y-from-b"
    assert secret(chain.resolve("Y")) == "y-from-b"
    # a's miss of Y is not cached and is asked again; b's Y is b's own cache entry.
    assert (a.calls, b.calls) == (3, 1)


def test_stale_if_error_serves_an_expired_value_then_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    value = canary()
    source = ScriptedSource({"TOKEN": value}, name="vault-prod")
    chain = Chain([source], cache_ttl=10, stale_if_error=30, retries=0, clock=clock, sleep=Sleeps())
    assert secret(chain.resolve("TOKEN")) == value

    source.fail(throttled)
    clock.advance(15)
    with caplog.at_level(logging.WARNING, logger="authchain"):
        assert secret(chain.resolve("TOKEN")) == value
    assert source.calls == 2, "the refresh was attempted"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "vault-prod" in message
    assert "refresh of TOKEN failed" in message
    assert "serving the cached value" in message
    assert_not_leaked(value, message, "the stale warning")

    clock.advance(24.9)  # 39.9 s after storing: still within ttl + grace
    assert secret(chain.resolve("TOKEN")) == value
    clock.advance(0.1)
    with pytest.raises(BackendError, match="throttled"):
        chain.resolve("TOKEN")


def test_a_deleted_secret_is_not_served_stale_when_the_backend_later_fails() -> None:
    clock = FakeClock()
    source = ScriptedSource({"TOKEN": canary()}, name="vault-prod")
    chain = Chain([source], cache_ttl=10, stale_if_error=30, retries=0, clock=clock, sleep=Sleeps())
    chain.resolve("TOKEN")
    del source.values["TOKEN"]
    clock.advance(15)
    assert chain.resolve("TOKEN", default=None) is None, "the secret was deleted"
    source.fail(throttled)
    with pytest.raises(BackendError, match="throttled"):
        chain.resolve("TOKEN")


def test_without_stale_if_error_a_failed_refresh_raises() -> None:
    clock = FakeClock()
    source = ScriptedSource({"TOKEN": canary()})
    chain = Chain([source], cache_ttl=10, retries=0, clock=clock)
    chain.resolve("TOKEN")
    source.fail(throttled)
    clock.advance(10)
    with pytest.raises(BackendError):
        chain.resolve("TOKEN")


def test_stale_value_is_replaced_once_the_refresh_succeeds() -> None:
    clock = FakeClock()
    source = ScriptedSource({"TOKEN": "v1-value"})
    chain = Chain([source], cache_ttl=10, stale_if_error=30, retries=0, clock=clock)
    chain.resolve("TOKEN")
    source.fail(throttled, times=1)
    source.values["TOKEN"] = "v2-value"
    clock.advance(11)
    assert secret(chain.resolve("TOKEN")) == "v1-value"
    assert secret(chain.resolve("TOKEN")) == "v2-value"
    assert secret(chain.resolve("TOKEN")) == "v2-value"
    assert source.calls == 3


def test_invalidate_forgets_one_name() -> None:
    memory = MemorySource({"A": "a-value", "B": "b-value"})
    chain = Chain([memory])
    chain.resolve("A")
    chain.resolve("B")
    memory["A"] = "a-changed"
    chain.invalidate("A")
    assert secret(chain.resolve("A")) == "a-changed"
    assert secret(chain.resolve("B")) == "b-value"
    assert memory.calls == 3


def test_invalidate_a_reference() -> None:
    memory = MemorySource({"A": "a-value"})
    chain = Chain([memory])
    chain.resolve("memory://A")
    memory["A"] = "a-changed"
    chain.invalidate("memory://A")
    assert secret(chain.resolve("A")) == "a-changed"


def test_clear_cache_forgets_everything() -> None:
    memory = MemorySource({"A": "a-value", "B": "b-value"})
    chain = Chain([memory])
    chain.resolve("A")
    chain.resolve("B")
    chain.clear_cache()
    chain.resolve("A")
    chain.resolve("B")
    assert memory.calls == 4


def test_single_flight_32_threads_make_one_backend_call() -> None:
    value = canary()
    slow = SlowSource({"TOKEN": value}, delay=0.05)
    chain = Chain([slow])
    barrier = threading.Barrier(32)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait(timeout=10)
        try:
            got = secret(chain.resolve("TOKEN"))
        except BaseException as error:  # pragma: no cover - reported below
            with lock:
                errors.append(error)
            return
        with lock:
            results.append(got)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors
    assert len(results) == 32
    assert all(result == value for result in results)
    assert slow.calls == 1


def test_single_flight_shares_an_error_too() -> None:
    class SlowFailing(SlowSource):
        def get(self, key: Key) -> Found | NotFound:
            super().get(key)
            raise BackendError("connection refused")

    source = SlowFailing({}, delay=0.05)
    chain = Chain([source], retries=0)
    barrier = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait(timeout=10)
        try:
            chain.resolve("TOKEN")
            outcome = "resolved"
        except BackendError as error:
            outcome = str(error)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert outcomes == ["slow: connection refused"] * 16
    assert source.calls == 1
