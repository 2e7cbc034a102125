"""The chain against real sources: precedence, outcomes, retries, cache, batching, explain.

Faults a real source cannot be made to show come from small Source subclasses
defined here; the chain itself is never mocked. Time, sleep and jitter come in
through the chain's seams, so nothing here waits except the single-flight and
pool tests, which sleep a few milliseconds inside a source on purpose.
"""

from __future__ import annotations

import json
import logging
import pickle
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import authchain
from authchain import BackendError, Chain, ConfigError, SecretNotFound, SecretValue
from authchain.backends.dotenv.source import DotenvSource
from authchain.backends.env.source import EnvSource
from authchain.errors import ChainClosedError, SourceUnavailableError
from authchain.sources.base import CheckResult, Found, Key, NotFound, Source
from authchain.testing import MemorySource, canary
from authchain.testing.contract import assert_not_leaked

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


# -- precedence -----------------------------------------------------------------------


def test_explicit_wins_when_not_none() -> None:
    memory = MemorySource({"TOKEN": canary()})
    chain = Chain([memory])
    given = canary()
    assert secret(chain.resolve("TOKEN", explicit=given)) == given
    assert memory.calls == 0, "an explicit value means no source is asked"
    already = SecretValue(canary())
    assert chain.resolve("TOKEN", explicit=already) is already
    assert secret(chain.resolve("TOKEN", explicit="")) == "", "an empty string is still a value"


def test_explicit_none_falls_through_to_the_sources() -> None:
    value = canary()
    memory = MemorySource({"TOKEN": value})
    assert secret(Chain([memory]).resolve("TOKEN", explicit=None)) == value
    assert memory.calls == 1


def test_environment_beats_dotenv_in_canonical_order(tmp_path: Path) -> None:
    from_env, from_file = canary(), canary()
    env = EnvSource(environ={"TOKEN": from_env})
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"TOKEN": from_file, "ONLY_FILE": "f"}))
    canonical = sorted([dotenv, env], key=lambda source: source.rank)
    assert [source.type for source in canonical] == ["env", "dotenv"]
    chain = Chain(canonical)
    assert secret(chain.resolve("TOKEN")) == from_env
    assert secret(chain.resolve("ONLY_FILE")) == "f"


def test_config_without_order_uses_canonical_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env, from_file = canary(), canary()
    write_env_file(tmp_path / ".env", {"AUTHCHAIN_T_TOKEN": from_file})
    config = tmp_path / "authchain.toml"
    # dotenv is written first: the canonical order still asks env first.
    config.write_text('[sources.dotenv]\ntype = "dotenv"\n\n[sources.env]\ntype = "env"\n', encoding="utf-8")
    monkeypatch.setenv("AUTHCHAIN_T_TOKEN", from_env)
    chain = Chain.from_config(config)
    assert [source.name for source in chain.sources] == ["env", "dotenv"]
    assert secret(chain.resolve("AUTHCHAIN_T_TOKEN")) == from_env


def test_order_changes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env, from_file = canary(), canary()
    write_env_file(tmp_path / ".env", {"AUTHCHAIN_T_TOKEN": from_file})
    config = tmp_path / "authchain.toml"
    config.write_text(
        'order = ["dotenv", "env"]\n\n[sources.env]\ntype = "env"\n\n[sources.dotenv]\ntype = "dotenv"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("AUTHCHAIN_T_TOKEN", from_env)
    chain = Chain.from_config(config)
    assert [source.name for source in chain.sources] == ["dotenv", "env"]
    assert secret(chain.resolve("AUTHCHAIN_T_TOKEN")) == from_file


def test_sources_are_asked_in_the_order_given(tmp_path: Path) -> None:
    from_env, from_file = canary(), canary()
    env = EnvSource(environ={"TOKEN": from_env})
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"TOKEN": from_file}))
    assert secret(Chain([dotenv, env]).resolve("TOKEN")) == from_file


def test_default_is_returned_as_given() -> None:
    chain = Chain([MemorySource()])
    marker = object()
    assert chain.resolve("MISSING", default=marker) is marker
    assert chain.resolve("MISSING", default=None) is None
    plain = chain.resolve("MISSING", default="fallback")
    assert plain == "fallback"
    assert not isinstance(plain, SecretValue)


def test_default_is_not_used_when_found() -> None:
    value = canary()
    assert secret(Chain([MemorySource({"TOKEN": value})]).resolve("TOKEN", default=None)) == value


def test_empty_chain_answers_only_explicit() -> None:
    chain = Chain()
    assert secret(chain.resolve("TOKEN", explicit="given")) == "given"
    with pytest.raises(SecretNotFound) as caught:
        chain.resolve("TOKEN")
    assert labels(caught.value) == ["explicit"]
    assert repr(chain) == "<Chain: explicit>"


@pytest.mark.parametrize("bad", ["", " TOKEN", "TOKEN\n", "A\x00B", 42])
def test_malformed_names_are_config_errors(bad: Any) -> None:
    with pytest.raises(ConfigError, match="secret name"):
        Chain([MemorySource()]).resolve(bad)


def test_source_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="two sources share the name 'env'"):
        Chain([EnvSource(environ={}), EnvSource(environ={}, prefix="X_")])


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_workers"):
        Chain([], max_workers=0)


def test_repr_lists_sources_in_order() -> None:
    chain = Chain([EnvSource(environ={}, name="env-app"), MemorySource()])
    assert repr(chain) == "<Chain: explicit, env-app (env), memory>"
    assert chain.source("memory").type == "memory"
    with pytest.raises(KeyError):
        chain.source("absent")


# -- the three outcomes ---------------------------------------------------------------


def test_not_found_moves_on_to_the_next_source() -> None:
    value = canary()
    first, second = MemorySource(name="first"), MemorySource({"TOKEN": value}, name="second")
    assert secret(Chain([first, second]).resolve("TOKEN")) == value
    assert (first.calls, second.calls) == (1, 1)


def test_found_stops_the_walk() -> None:
    value = canary()
    first, second = MemorySource({"TOKEN": value}, name="first"), MemorySource(name="second")
    assert secret(Chain([first, second]).resolve("TOKEN")) == value
    assert second.calls == 0


def test_error_is_raised_naming_the_source_and_does_not_fall_through() -> None:
    broken = ScriptedSource(fault=denied, failures=1, name="vault-prod")
    behind = MemorySource({"TOKEN": canary()})
    with pytest.raises(BackendError) as caught:
        Chain([broken, behind]).resolve("TOKEN")
    assert str(caught.value) == "vault-prod (scripted): permission denied on kv/app"
    assert caught.value.source is not None
    assert caught.value.source.startswith("vault-prod")
    assert caught.value.access_denied
    assert behind.calls == 0


def test_on_error_skip_records_the_error_and_moves_on() -> None:
    value = canary()
    broken = ScriptedSource(fault=throttled, failures=100, on_error="skip", name="vault-prod")
    behind = MemorySource({"TOKEN": value})
    chain = Chain([broken, behind], retries=1, sleep=Sleeps(), cache_ttl=0)
    assert secret(chain.resolve("TOKEN")) == value
    assert broken.calls == 2, "a skipped source is still retried first"

    explanation = chain.explain("TOKEN")
    error = explanation.attempts[1]
    assert (error.source, error.outcome) == ("vault-prod", "error")
    assert error.detail == "error: throttled (HTTP 503) (after 2 attempts)"
    assert "vault-prod  scripted  error" in str(explanation)
    assert explanation.winner is not None
    assert explanation.winner.source == "memory"


def test_on_error_skip_appears_in_secret_not_found() -> None:
    broken = ScriptedSource(fault=denied, failures=100, on_error="skip", name="vault-prod")
    with pytest.raises(SecretNotFound) as caught:
        Chain([broken, MemorySource()], sleep=Sleeps()).resolve("TOKEN")
    assert (
        "    vault-prod (scripted): error: permission denied on kv/app (on_error = skip)\n"
        "    memory: TOKEN is not in memory\n"
    ) in str(caught.value)
    assert [a.outcome for a in caught.value.attempts] == ["not_asked", "error", "not_found"]


def test_unavailable_source_is_reported_and_treated_as_not_found() -> None:
    value = canary()
    gone = ScriptedSource(fault=unavailable, failures=100, name="keyring")
    chain = Chain([gone, MemorySource({"TOKEN": value})], sleep=Sleeps())
    assert secret(chain.resolve("TOKEN")) == value
    assert gone.calls == 1, "unavailable is not retried"
    with pytest.raises(SecretNotFound) as caught:
        chain.resolve("OTHER")
    assert "    keyring (scripted): unavailable: no keyring backend on this machine\n" in str(caught.value)
    assert caught.value.attempts[1].outcome == "unavailable"


def test_secret_not_found_lists_every_source_in_order(tmp_path: Path) -> None:
    path = write_env_file(tmp_path / ".env", {"OTHER": canary()})
    chain = Chain(
        [
            MemorySource(name="store"),
            EnvSource(prefix="APP_", name="env-app", environ={}),
            DotenvSource(path=path),
        ]
    )
    with pytest.raises(SecretNotFound) as caught:
        chain.resolve("DB_PASSWORD")
    assert str(caught.value) == (
        "'DB_PASSWORD' was not found by any source.\n"
        "Attempted sources:\n"
        "    explicit: no value passed\n"
        "    store (memory): DB_PASSWORD is not in memory\n"
        "    env-app (env): APP_DB_PASSWORD is not set\n"
        f"    dotenv: {path} has no DB_PASSWORD\n"
        "See `authchain explain DB_PASSWORD`."
    )
    assert isinstance(caught.value, LookupError)
    assert caught.value.name == "DB_PASSWORD"
    assert caught.value.missing == ("DB_PASSWORD",)


def test_secret_not_found_survives_pickling() -> None:
    with pytest.raises(SecretNotFound) as caught:
        Chain([MemorySource()]).resolve("TOKEN")
    clone = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert str(clone) == str(caught.value)
    assert clone.attempts == caught.value.attempts


def test_check_maps_each_source_to_a_status() -> None:
    class Checked(ScriptedSource):
        def check(self) -> CheckResult:
            assert self.fault is not None
            raise self.fault()

    chain = Chain(
        [
            MemorySource(),
            Checked(fault=unavailable, name="a"),
            Checked(fault=denied, name="b"),
            Checked(fault=throttled, name="c"),
            Checked(fault=lambda: ConfigError("bad url"), name="d"),
        ]
    )
    assert [(r.source, r.status) for r in chain.check()] == [
        ("memory", "ok"),
        ("a", "unavailable"),
        ("b", "unauthenticated"),
        ("c", "unreachable"),
        ("d", "misconfigured"),
    ]


def test_close_closes_every_source_and_the_chain_stays_closed() -> None:
    value = canary()
    source = ScriptedSource({"TOKEN": value})
    with Chain([source], cache_ttl=0) as chain:
        assert secret(chain.resolve("TOKEN")) == value
    assert source.closed == 1
    calls = source.calls
    # Closed like an httpx or botocore client: a lookup raises, it does not reopen the source.
    with pytest.raises(ChainClosedError, match="closed"):
        chain.resolve("TOKEN")
    assert source.calls == calls


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


# -- resolve_many ----------------------------------------------------------------------


def test_resolve_many_returns_a_dict_by_name(tmp_path: Path) -> None:
    values = {name: canary() for name in ("A", "B", "C")}
    env = EnvSource(environ={"A": values["A"], "C": values["C"]})
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"B": values["B"], "C": "shadowed"}))
    result = Chain([env, dotenv]).resolve_many(["A", "B", "C"])
    assert list(result) == ["A", "B", "C"]
    assert {name: secret(value) for name, value in result.items()} == values


def test_resolve_many_batches_a_batching_source() -> None:
    names = [f"NAME_{i}" for i in range(10)]
    values = {name: canary() for name in names}
    memory = MemorySource(values, batch=True)
    chain = Chain([memory])
    result = chain.resolve_many(names)
    assert {name: secret(value) for name, value in result.items()} == values
    assert (memory.batch_calls, memory.calls) == (1, 0), "one batch call, no single gets"


def test_resolve_many_batch_then_next_source_for_the_rest() -> None:
    store = MemorySource({"A": "store-a"}, batch=True, name="store")
    env = EnvSource(environ={"A": "env-a", "B": "env-b", "C": "env-c"})
    result = Chain([store, env]).resolve_many(["A", "B", "C"])
    assert {name: secret(value) for name, value in result.items()} == {
        "A": "store-a",
        "B": "env-b",
        "C": "env-c",
    }
    assert (store.batch_calls, store.calls) == (1, 0)


def test_resolve_many_batch_uses_the_cache() -> None:
    memory = MemorySource({"A": "a-value", "B": "b-value"}, batch=True)
    chain = Chain([memory])
    chain.resolve_many(["A", "B"])
    chain.resolve_many(["A", "B"])
    assert secret(chain.resolve("A")) == "a-value"
    assert (memory.batch_calls, memory.calls) == (1, 0)
    assert chain.explain("B").from_cache


def test_resolve_many_batch_error_for_one_key() -> None:
    class PartlyBroken(MemorySource):
        def get_many(self, keys: Iterable[Key]) -> dict[Key, Found | NotFound | BackendError]:
            results = super().get_many(keys)
            results["BROKEN"] = BackendError("BROKEN: decryption failed")
            return results

    source = PartlyBroken({"A": "a-value", "BROKEN": "never"}, batch=True, name="store")
    with pytest.raises(BackendError, match=r"^store \(memory\): BROKEN: decryption failed$"):
        Chain([source]).resolve_many(["A", "BROKEN"])
    skipping = PartlyBroken({"A": "a-value"}, batch=True, name="store", on_error="skip")
    result = Chain([skipping]).resolve_many(["A", "BROKEN"], default=None)
    assert secret(result["A"]) == "a-value"
    assert result["BROKEN"] is None


def test_resolve_many_batch_serves_stale_values_when_the_refresh_fails() -> None:
    class Outage(MemorySource):
        down = False

        def get_many(self, keys: Iterable[Key]) -> dict[Key, Found | NotFound | BackendError]:
            if self.down:
                raise BackendError("service unavailable (503)", retryable=True)
            return super().get_many(keys)

    clock = FakeClock()
    source = Outage({"A": "a-value", "B": "b-value"}, batch=True)
    chain = Chain([source], cache_ttl=10, stale_if_error=60, clock=clock, sleep=Sleeps())
    chain.resolve_many(["A", "B"])
    source.down = True
    clock.advance(20)
    result = chain.resolve_many(["A", "B"])
    assert {name: secret(value) for name, value in result.items()} == {"A": "a-value", "B": "b-value"}


def test_resolve_many_runs_a_concurrent_source_on_the_pool() -> None:
    names = [f"NAME_{i}" for i in range(8)]
    slow = SlowSource({name: canary() for name in names}, delay=0.05)
    with Chain([slow], max_workers=8) as chain:
        result = chain.resolve_many(names)
    assert set(result) == set(names)
    assert slow.calls == 8
    assert slow.max_in_flight > 1, "lookups of a concurrent source should overlap"


def test_resolve_many_with_one_worker_is_serial() -> None:
    names = [f"NAME_{i}" for i in range(4)]
    slow = SlowSource({name: canary() for name in names}, delay=0.005)
    with Chain([slow], max_workers=1) as chain:
        chain.resolve_many(names)
    assert slow.max_in_flight == 1


def test_resolve_many_leaves_non_concurrent_sources_serial() -> None:
    class SerialSlow(SlowSource):
        concurrent = False

    names = [f"NAME_{i}" for i in range(4)]
    slow = SerialSlow({name: canary() for name in names}, delay=0.005)
    with Chain([slow], max_workers=8) as chain:
        chain.resolve_many(names)
    assert slow.max_in_flight == 1


def test_resolve_many_missing_names_raise_with_all_missing_listed() -> None:
    chain = Chain([MemorySource({"A": canary(), "C": canary()})])
    with pytest.raises(SecretNotFound) as caught:
        chain.resolve_many(["A", "MISSING_1", "C", "MISSING_2"])
    assert caught.value.name == "MISSING_1"
    assert caught.value.missing == ("MISSING_1", "MISSING_2")
    assert str(caught.value).startswith(
        "'MISSING_1' was not found by any source (also missing: MISSING_2).\n"
    )


def test_resolve_many_default_fills_missing_names() -> None:
    value = canary()
    chain = Chain([MemorySource({"A": value})])
    result = chain.resolve_many(["A", "MISSING"], default=None)
    assert secret(result["A"]) == value
    assert result["MISSING"] is None


def test_resolve_many_raises_backend_errors() -> None:
    chain = Chain([ScriptedSource(fault=denied, failures=100, name="vault-prod")])
    with pytest.raises(BackendError, match="vault-prod"):
        chain.resolve_many(["A", "B"])


def test_resolve_many_accepts_references() -> None:
    memory = MemorySource({"DB": '{"user": "app"}', "A": "a-value"})
    result = Chain([memory]).resolve_many(["A", "memory://DB#user"])
    assert {name: secret(value) for name, value in result.items()} == {
        "A": "a-value",
        "memory://DB#user": "app",
    }


# -- explain -----------------------------------------------------------------------------


def test_explain_asks_every_source_and_reports_shadowed(tmp_path: Path) -> None:
    env = EnvSource(environ={"TOKEN": canary()})
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"TOKEN": canary()}))
    memory = MemorySource({"TOKEN": canary()})
    empty = MemorySource(name="empty")
    explanation = Chain([env, empty, dotenv, memory]).explain("TOKEN")
    assert [a.source for a in explanation.attempts] == ["explicit", "env", "empty", "dotenv", "memory"]
    assert explanation.winner is not None
    assert explanation.winner.source == "env"
    assert [a.source for a in explanation.shadowed] == ["dotenv", "memory"]
    text = str(explanation)
    assert text.startswith("TOKEN: found by env (env)\n")
    assert text.endswith("also defined in (shadowed): dotenv, memory")
    assert memory.calls == 1, "explain asks sources after the winner"
    data = explanation.as_dict()
    assert data["winner"] == "env"
    assert data["shadowed"] == ["dotenv", "memory"]
    assert [a["status"] for a in data["attempts"]] == [
        "not asked",
        "WINNER",
        "not found",
        "shadowed",
        "shadowed",
    ]


def test_explain_reports_the_cached_flag() -> None:
    memory = MemorySource({"TOKEN": canary()})
    chain = Chain([memory])
    assert not chain.explain("TOKEN").from_cache
    explanation = chain.explain("TOKEN")
    assert explanation.from_cache
    assert "found by memory (memory), from cache" in str(explanation)
    assert "[cached]" in str(explanation)
    assert memory.calls == 1


def test_explain_of_a_missing_name_does_not_raise() -> None:
    explanation = Chain([MemorySource()]).explain("TOKEN")
    assert not explanation.found
    assert explanation.winner is None
    assert str(explanation).startswith("TOKEN: not found by any source\n")


def test_explain_records_errors_instead_of_raising() -> None:
    broken = ScriptedSource(fault=denied, failures=100, name="vault-prod")
    value = canary()
    explanation = Chain([broken, MemorySource({"TOKEN": value})], sleep=Sleeps()).explain("TOKEN")
    assert explanation.attempts[1].outcome == "error"
    assert explanation.attempts[1].detail == "error: permission denied on kv/app"
    assert explanation.winner is not None
    assert explanation.winner.source == "memory"


def test_explain_shows_a_pin() -> None:
    memory = MemorySource({"creds": '{"password": "pw-example"}'})
    chain = Chain([memory], secrets={"DB_PASSWORD": "memory://creds#password"})
    assert secret(chain.resolve("DB_PASSWORD")) == "pw-example"
    explanation = chain.explain("DB_PASSWORD")
    assert explanation.pinned_to == "memory://creds#password"
    assert "pinned in config to memory://creds#password" in str(explanation)


# -- references ----------------------------------------------------------------------------


def test_env_reference_goes_straight_to_the_env_source() -> None:
    value = canary()
    memory = MemorySource({"OTHER": canary()})
    env = EnvSource(prefix="APP_", environ={"OTHER": value})
    chain = Chain([memory, env])
    assert secret(chain.resolve("env://OTHER")) == value
    assert memory.calls == 0


def test_reference_to_an_unconfigured_builtin_uses_a_default_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = canary()
    monkeypatch.setenv("AUTHCHAIN_TEST_REF", value)
    assert secret(Chain([MemorySource()]).resolve("env://AUTHCHAIN_TEST_REF")) == value


def test_json_field_of_a_reference() -> None:
    memory = MemorySource({"DB": json.dumps({"user": "app", "password": "pw-example", "port": 5432})})
    chain = Chain([memory])
    assert secret(chain.resolve("memory://DB#password")) == "pw-example"
    assert secret(chain.resolve("memory://DB#port")) == "5432"
    assert memory.calls == 1, "both fields come from one cached lookup"


def test_missing_json_field_is_not_found_naming_the_field() -> None:
    chain = Chain([MemorySource({"DB": json.dumps({"user": "app"})})])
    with pytest.raises(SecretNotFound) as caught:
        chain.resolve("memory://DB#password")
    assert "    memory: DB has no field 'password'\n" in str(caught.value)
    assert caught.value.name == "memory://DB#password"
    assert chain.resolve("memory://DB#password", default=None) is None


def test_invalid_json_for_a_field_is_a_backend_error_without_the_value() -> None:
    value = canary()
    memory = MemorySource({"DB": value})
    sleeps = Sleeps()
    with pytest.raises(BackendError) as caught:
        Chain([memory], sleep=sleeps).resolve("memory://DB#password")
    assert str(caught.value) == "memory: DB is not valid JSON, so #password cannot be read"
    assert_not_leaked(value, str(caught.value), "the JSON error")
    assert (memory.calls, sleeps) == (1, [])


def test_json_that_is_not_an_object_is_a_backend_error() -> None:
    chain = Chain([MemorySource({"DB": json.dumps(["a", "b"])})])
    with pytest.raises(BackendError, match="is JSON but not an object"):
        chain.resolve("memory://DB#password")


def test_malformed_reference_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="malformed env:// reference: the location is not a variable name"):
        Chain([EnvSource(environ={})]).resolve("env://1BAD")


# -- pickling ------------------------------------------------------------------------------


def test_pickled_chain_carries_no_cached_values_and_works_after(tmp_path: Path) -> None:
    value = canary()
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"TOKEN": value}))
    chain = Chain([EnvSource(environ={}), dotenv], cache_ttl=600)
    assert secret(chain.resolve("TOKEN")) == value
    assert chain.explain("TOKEN").from_cache

    data = pickle.dumps(chain)
    assert_not_leaked(value, data, "a pickled chain")
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    assert not clone.explain("TOKEN").from_cache, "the cache stays in the process"
    assert secret(clone.resolve("TOKEN")) == value
    assert clone.cache_ttl == 600
    assert [source.name for source in clone.sources] == ["env", "dotenv"]


def test_cloudpickled_chain_carries_no_cached_values(tmp_path: Path) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")
    value = canary()
    chain = Chain([DotenvSource(path=write_env_file(tmp_path / ".env", {"TOKEN": value}))])
    chain.resolve_many(["TOKEN"])
    data = cloudpickle.dumps(chain)
    assert_not_leaked(value, data, "a cloudpickled chain")
    assert secret(pickle.loads(data).resolve("TOKEN")) == value  # noqa: S301 - our own bytes


# -- module functions -----------------------------------------------------------------------


def test_module_functions_take_a_chain() -> None:
    values = {"A": canary(), "B": canary()}
    chain = Chain([MemorySource(values)])
    assert secret(authchain.resolve("A", chain=chain)) == values["A"]
    assert secret(authchain.resolve("X", explicit="given", chain=chain)) == "given"
    assert authchain.resolve("MISSING", default=None, chain=chain) is None
    many = authchain.resolve_many(["A", "B"], chain=chain)
    assert {name: secret(value) for name, value in many.items()} == values
    assert authchain.resolve_many(["MISSING"], default=None, chain=chain) == {"MISSING": None}
    explanation = authchain.explain("A", chain=chain)
    assert isinstance(explanation, authchain.Explanation)
    assert explanation.from_cache


# -- logging -----------------------------------------------------------------------------------


def test_one_info_line_names_the_winner(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="authchain")
    chain = Chain(
        [MemorySource(name="empty"), EnvSource(prefix="APP_", name="env-app", environ={"APP_T": "x"})]
    )
    chain.resolve("T")
    chain.resolve("T")  # cached: DEBUG only
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["T resolved by env-app (env)"]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert "empty: T is not in memory" in debug
    assert "T resolved by env-app (env) (cached)" in debug


def test_no_value_in_any_log_record(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG, logger="authchain")
    planted = {name: canary() for name in ("A", "B", "C", "J")}
    flaky = ScriptedSource(
        {"A": planted["A"]}, fault=throttled, failures=2, name="flaky", on_error="skip", retries=1
    )
    env = EnvSource(environ={"B": planted["B"], "J": planted["J"]})
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"C": planted["C"]}))
    clock = FakeClock()
    chain = Chain([flaky, env, dotenv], cache_ttl=1, stale_if_error=60, clock=clock, sleep=Sleeps())
    chain.resolve("A", default=None)  # skipped after the retries, then not found further down
    chain.resolve("A")  # the third call answers
    chain.resolve_many(["A", "B", "C"])
    chain.explain("C")
    with pytest.raises(BackendError):
        chain.resolve("env://J#field")
    clock.advance(2)
    flaky.fail(throttled)
    chain.resolve("A")  # stale value served with a warning
    messages = [record.getMessage() for record in caplog.records]
    assert any("retryable error (attempt 1 of 2)" in m for m in messages), "retries are logged"
    assert any("serving the cached value" in m for m in messages), "the stale fallback is logged"
    assert any(m == "A resolved by flaky (scripted)" for m in messages), "the winner is logged"
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        for value in planted.values():
            assert_not_leaked(value, text, f"a {record.levelname} log record")
