"""The walk: precedence, the three outcomes, references, module functions and logging.

The chain against real and scripted sources (helpers: tests/chain/_support.py).
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

import authchain
from authchain import BackendError, Chain, ConfigError, SecretNotFound, SecretValue
from authchain.backends.dotenv.source import DotenvSource
from authchain.backends.env.source import EnvSource
from authchain.errors import ChainClosedError
from authchain.sources.base import CheckResult
from authchain.testing import MemorySource, canary
from authchain.testing.contract import assert_not_leaked
from tests.chain._support import (
    FakeClock,
    ScriptedSource,
    Sleeps,
    denied,
    labels,
    secret,
    throttled,
    unavailable,
    write_env_file,
)

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
