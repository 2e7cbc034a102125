"""Retries: backoff, jitter, per-source policy, local sources, access denied.

The chain against real and scripted sources (helpers: tests/chain/_support.py).
"""

from __future__ import annotations

import random

import pytest

from authchain import BackendError, Chain
from authchain.sources.base import Found, Key, NotFound
from authchain.testing import canary
from tests.chain._support import (
    FakeClock,
    ScriptedSource,
    Sleeps,
    ceiling,
    denied,
    secret,
    throttled,
)

# -- retries --------------------------------------------------------------------------


def test_retryable_error_is_retried_then_answers() -> None:
    value = canary()
    flaky = ScriptedSource({"TOKEN": value}, fault=throttled, failures=2)
    sleeps = Sleeps()
    chain = Chain([flaky], retries=3, backoff=0.2, sleep=sleeps, jitter=ceiling)
    assert secret(chain.resolve("TOKEN")) == value
    assert flaky.calls == 3
    assert sleeps == pytest.approx([0.2, 0.4])


def test_retries_plus_one_calls_then_raise_with_capped_backoff() -> None:
    flaky = ScriptedSource(fault=throttled, failures=100, name="store")
    sleeps = Sleeps()
    chain = Chain([flaky], retries=5, backoff=0.2, backoff_max=1.0, sleep=sleeps, jitter=ceiling)
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert flaky.calls == 6
    assert sleeps == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    assert str(caught.value) == "store (scripted): throttled (HTTP 503) (after 6 attempts)"
    assert caught.value.retryable


def test_jitter_is_drawn_between_zero_and_the_ceiling() -> None:
    flaky = ScriptedSource(fault=throttled, failures=3)
    ranges: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        ranges.append((low, high))
        return high / 2

    sleeps = Sleeps()
    Chain([flaky], retries=3, backoff=0.1, sleep=sleeps, jitter=record).resolve("TOKEN", default=None)
    assert [low for low, _ in ranges] == [0.0, 0.0, 0.0]
    assert [high for _, high in ranges] == pytest.approx([0.1, 0.2, 0.4])
    assert sleeps == pytest.approx([0.05, 0.1, 0.2])


def test_retries_leave_the_programs_random_sequence_alone() -> None:
    """Jitter comes from a generator of authchain's own, not the shared ``random`` one."""
    random.seed(1234)
    expected = [random.random() for _ in range(3)]
    random.seed(1234)
    flaky = ScriptedSource(fault=throttled, failures=100)
    sleeps = Sleeps()
    with pytest.raises(BackendError):
        Chain([flaky], retries=3, sleep=sleeps).resolve("TOKEN")
    assert len(sleeps) == 3, "three jittered waits were drawn"
    assert [random.random() for _ in range(3)] == expected


def test_default_retry_policy_is_two_retries() -> None:
    flaky = ScriptedSource(fault=throttled, failures=100)
    sleeps = Sleeps()
    with pytest.raises(BackendError):
        Chain([flaky], sleep=sleeps, jitter=ceiling).resolve("TOKEN")
    assert flaky.calls == 3
    assert sleeps == pytest.approx([0.2, 0.4])


def test_per_source_retries_and_backoff_override_the_chain() -> None:
    flaky = ScriptedSource(fault=throttled, failures=100, retries=1, backoff=0.05)
    sleeps = Sleeps()
    with pytest.raises(BackendError):
        Chain([flaky], retries=5, backoff=1.0, sleep=sleeps, jitter=ceiling).resolve("TOKEN")
    assert flaky.calls == 2
    assert sleeps == pytest.approx([0.05])


def test_per_source_zero_retries_means_one_call() -> None:
    flaky = ScriptedSource(fault=throttled, failures=100, retries=0)
    sleeps = Sleeps()
    with pytest.raises(BackendError):
        Chain([flaky], retries=5, sleep=sleeps).resolve("TOKEN")
    assert (flaky.calls, sleeps) == (1, [])


class LocalScripted(ScriptedSource):
    """A ScriptedSource that, like env and .env, answers without a request."""

    type = "local-scripted"

    def is_local(self) -> bool:
        return True


def test_a_local_source_is_asked_once_and_not_retried() -> None:
    local = LocalScripted(fault=throttled, failures=100, name="file")
    sleeps = Sleeps()
    with pytest.raises(BackendError) as caught:
        Chain([local], retries=5, sleep=sleeps).resolve("TOKEN")
    assert (local.calls, sleeps) == (1, []), "nothing transient to wait out in a local read"
    assert str(caught.value) == "file (local-scripted): throttled (HTTP 503)"


def test_a_local_source_is_cached_and_served_stale_like_any_other() -> None:
    clock = FakeClock()
    value = canary()
    local = LocalScripted({"TOKEN": value})
    chain = Chain([local], cache_ttl=10, stale_if_error=30, clock=clock, sleep=Sleeps())
    assert secret(chain.resolve("TOKEN")) == value
    assert secret(chain.resolve("TOKEN")) == value
    assert local.calls == 1, "the second resolve came from the cache"
    local.fail(throttled)
    clock.advance(15)
    assert secret(chain.resolve("TOKEN")) == value, "an expired value within the grace period"
    assert local.calls == 2


def test_a_local_source_still_honours_a_passed_deadline() -> None:
    clock = FakeClock()
    slow = ScriptedSource({}, name="remote")
    local = LocalScripted({"TOKEN": canary()}, name="file")
    original_get = slow.get

    def get_slowly(key: Key) -> Found | NotFound:
        clock.advance(5)  # the remote source used up the whole deadline
        return original_get(key)

    slow.get = get_slowly  # type: ignore[method-assign]
    chain = Chain([slow, local], deadline=2, clock=clock, sleep=Sleeps())
    with pytest.raises(BackendError, match="not asked for TOKEN: the 2s deadline of this lookup had passed"):
        chain.resolve("TOKEN")
    assert local.calls == 0


def test_access_denied_is_never_retried() -> None:
    source = ScriptedSource(fault=denied, failures=100)
    sleeps = Sleeps()
    with pytest.raises(BackendError) as caught:
        Chain([source], retries=5, sleep=sleeps).resolve("TOKEN")
    assert (source.calls, sleeps) == (1, [])
    assert caught.value.access_denied
    assert not caught.value.retryable
    assert "after" not in str(caught.value)


def test_non_retryable_error_is_not_retried() -> None:
    source = ScriptedSource(fault=lambda: BackendError("malformed response"), failures=100)
    sleeps = Sleeps()
    with pytest.raises(BackendError, match="malformed response"):
        Chain([source], retries=5, sleep=sleeps).resolve("TOKEN")
    assert (source.calls, sleeps) == (1, [])


# -- Retry-After ---------------------------------------------------------------------------


def _asks_to_wait(seconds: float) -> BackendError:
    return BackendError("throttled (HTTP 429)", retryable=True, retry_after=seconds)


def test_a_retry_waits_at_least_what_the_backend_asked_for() -> None:
    value = canary()
    flaky = ScriptedSource({"TOKEN": value}, fault=lambda: _asks_to_wait(1.5), failures=2)
    sleeps = Sleeps()
    chain = Chain([flaky], retries=3, backoff=0.2, cache_ttl=0, sleep=sleeps, jitter=ceiling)
    assert secret(chain.resolve("TOKEN")) == value
    assert sleeps == pytest.approx([1.5, 1.5]), "Retry-After wins over a shorter backoff"
    flaky.fail(lambda: _asks_to_wait(0.1), times=1)
    sleeps.clear()
    assert secret(chain.resolve("TOKEN")) == value
    assert sleeps == pytest.approx([0.2]), "a longer backoff wins over a short Retry-After"


def test_a_retry_after_past_the_deadline_is_not_waited_for() -> None:
    clock = FakeClock()
    flaky = ScriptedSource({"TOKEN": canary()}, fault=lambda: _asks_to_wait(30), failures=1)
    sleeps = Sleeps()
    chain = Chain([flaky], retries=3, backoff=0.2, deadline=10, clock=clock, sleep=sleeps, jitter=ceiling)
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert sleeps == []
    assert flaky.calls == 1
    assert caught.value.retry_after == 30


@pytest.mark.parametrize("seconds", [86400.0, float("inf"), 1e300])
def test_without_a_deadline_a_huge_retry_after_is_not_waited_for(seconds: float) -> None:
    """``deadline = 0``: a server asking for a day (or forever) gets the error at once, never a
    day's sleep or ``time.sleep``'s OverflowError."""
    from authchain._retry import RETRY_AFTER_MAX

    flaky = ScriptedSource({"TOKEN": canary()}, fault=lambda: _asks_to_wait(seconds), failures=1)
    sleeps = Sleeps()
    chain = Chain([flaky], retries=3, backoff=0.2, deadline=0, sleep=sleeps, jitter=ceiling)
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert (sleeps, flaky.calls) == ([], 1)
    assert caught.value.retryable
    flaky.fail(lambda: _asks_to_wait(RETRY_AFTER_MAX), times=1)
    assert chain.resolve("TOKEN")
    assert sleeps == pytest.approx([RETRY_AFTER_MAX]), "up to the bound, it is waited for"


def test_a_nan_or_negative_retry_after_is_ignored() -> None:
    value = canary()
    for seconds in (float("nan"), -5.0):
        flaky = ScriptedSource({"TOKEN": value}, fault=lambda s=seconds: _asks_to_wait(s), failures=1)
        sleeps = Sleeps()
        chain = Chain([flaky], retries=1, backoff=0.2, deadline=0, sleep=sleeps, jitter=ceiling)
        assert secret(chain.resolve("TOKEN")) == value
        assert sleeps == pytest.approx([0.2]), "the backoff, as if nothing was asked"


def test_retry_after_survives_pickling_and_naming_the_source() -> None:
    import pickle

    error = _asks_to_wait(2.5).with_source("store", label="store (scripted)")
    assert error.retry_after == 2.5
    assert pickle.loads(pickle.dumps(error)).retry_after == 2.5  # noqa: S301 - our own bytes
