"""EnvSource: the contract, plus prefix, references, case folding and empty values."""

from __future__ import annotations

import os
import pickle

import pytest

from authchain import BackendError, Chain, ConfigError
from authchain.backends.env.source import EnvSource
from authchain.refs import SecretRef
from authchain.sources.base import Found, NotFound
from authchain.testing import MemorySource, canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked, unique_name


class TestEnvContract(SourceContractTests):
    @pytest.fixture
    def environ(self) -> dict[str, str]:
        return {}

    @pytest.fixture
    def source(self, environ: dict[str, str]) -> EnvSource:
        return EnvSource(environ=environ)

    @pytest.fixture
    def seed(self, environ: dict[str, str]) -> Seed:
        def put(name: str, value: str) -> None:
            environ[name] = value

        return put


class TestPrefixedEnvContract(TestEnvContract):
    @pytest.fixture
    def source(self, environ: dict[str, str]) -> EnvSource:
        return EnvSource(prefix="APP_", name="env-app", environ=environ)

    @pytest.fixture
    def seed(self, environ: dict[str, str]) -> Seed:
        def put(name: str, value: str) -> None:
            environ["APP_" + name] = value

        return put


class TestCaseInsensitiveEnvContract(TestEnvContract):
    @pytest.fixture
    def source(self, environ: dict[str, str]) -> EnvSource:
        return EnvSource(case_sensitive=False, environ=environ)

    @pytest.fixture
    def seed(self, environ: dict[str, str]) -> Seed:
        def put(name: str, value: str) -> None:
            environ[name.lower()] = value  # found only by folding case

        return put


def test_prefix_is_prepended_to_the_name() -> None:
    value = canary()
    source = EnvSource(prefix="APP_", environ={"APP_DB_PASSWORD": value, "DB_PASSWORD": canary()})
    assert source.key_for("DB_PASSWORD") == "APP_DB_PASSWORD"
    result = source.get(source.key_for("DB_PASSWORD"))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value
    assert result.detail == "APP_DB_PASSWORD is set"


def test_prefix_miss_names_the_prefixed_variable() -> None:
    source = EnvSource(prefix="APP_", environ={"DB_PASSWORD": canary()})
    assert source.get(source.key_for("DB_PASSWORD")) == NotFound("APP_DB_PASSWORD is not set")


def test_references_ignore_the_prefix() -> None:
    plain, prefixed = canary(), canary()
    source = EnvSource(prefix="APP_", environ={"OTHER": plain, "APP_OTHER": prefixed})
    assert source.key_for_ref(SecretRef.parse("env://OTHER")) == ("OTHER", None)
    chain = Chain([source])
    assert chain.resolve("env://OTHER").get_secret_value() == plain
    assert chain.resolve("OTHER").get_secret_value() == prefixed


def test_reference_with_a_json_field() -> None:
    source = EnvSource(environ={"DB": '{"user": "app", "port": 5432}'})
    chain = Chain([source])
    assert chain.resolve("env://DB#user").get_secret_value() == "app"
    assert chain.resolve("env://DB#port").get_secret_value() == "5432"


def test_case_sensitive_by_default() -> None:
    source = EnvSource(environ={"db_password": canary()})
    assert isinstance(source.get("DB_PASSWORD"), NotFound)


def test_case_insensitive_matches_another_case() -> None:
    value = canary()
    source = EnvSource(case_sensitive=False, environ={"app_Db_Password": value})
    result = source.get(EnvSource(prefix="APP_").key_for("DB_PASSWORD"))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value


def test_case_insensitive_exact_match_wins_without_ambiguity() -> None:
    exact = canary()
    source = EnvSource(case_sensitive=False, environ={"TOKEN": exact, "token": canary()})
    result = source.get("TOKEN")
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == exact


def test_case_insensitive_same_value_in_two_cases_is_fine() -> None:
    value = canary()
    source = EnvSource(case_sensitive=False, environ={"token": value, "Token": value})
    result = source.get("TOKEN")
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value


def test_case_insensitive_ambiguity_is_a_backend_error_without_values() -> None:
    first, second = canary(), canary()
    source = EnvSource(case_sensitive=False, environ={"token": first, "Token": second})
    with pytest.raises(BackendError) as caught:
        source.get("TOKEN")
    text = str(caught.value)
    assert "Token, token" in text
    assert "differ only in case" in text
    assert not caught.value.retryable
    assert_not_leaked(first, text, "the ambiguity error")
    assert_not_leaked(second, text, "the ambiguity error")


def test_ambiguity_inside_a_chain_names_the_source_and_stops() -> None:
    behind = MemorySource({"TOKEN": canary()})
    env = EnvSource(case_sensitive=False, environ={"token": canary(), "Token": canary()})
    with pytest.raises(BackendError) as caught:
        Chain([env, behind]).resolve("TOKEN")
    assert caught.value.source == "env"
    assert str(caught.value).startswith("env: ")
    assert behind.calls == 0, "an error must not fall through to a weaker source"


def test_empty_variable_is_found_by_default() -> None:
    result = EnvSource(environ={"EMPTY": ""}).get("EMPTY")
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == ""


def test_ignore_empty_treats_empty_as_not_set() -> None:
    result = EnvSource(ignore_empty=True, environ={"EMPTY": ""}).get("EMPTY")
    assert result == NotFound("EMPTY is set but empty (ignore_empty)")


def test_ignore_empty_lets_a_later_source_answer() -> None:
    value = canary()
    chain = Chain([EnvSource(ignore_empty=True, environ={"TOKEN": ""}), MemorySource({"TOKEN": value})])
    assert chain.resolve("TOKEN").get_secret_value() == value
    hidden = Chain([EnvSource(environ={"TOKEN": ""}), MemorySource({"TOKEN": value})])
    assert hidden.resolve("TOKEN").get_secret_value() == ""


def test_reads_the_live_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    name, value = unique_name("AUTHCHAIN_TEST"), canary()
    source = EnvSource()
    assert source.environ is os.environ
    assert isinstance(source.get(name), NotFound)
    monkeypatch.setenv(name, value)
    result = source.get(name)
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value


def test_environ_seam_does_not_travel_in_a_pickle() -> None:
    value = canary()
    source = EnvSource(prefix="APP_", environ={"APP_TOKEN": value})
    data = pickle.dumps(source)
    assert_not_leaked(value, data, "a pickled EnvSource")
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    assert clone.environ is os.environ
    assert clone.prefix == "APP_"


def test_a_source_reading_os_environ_itself_pickles_without_it() -> None:
    clone = pickle.loads(pickle.dumps(EnvSource(environ=os.environ)))  # noqa: S301 - our own bytes
    assert clone.environ is os.environ, "the clone reads its own process's environment"


def test_settings_are_validated_with_the_key_named() -> None:
    where = "authchain.toml: sources.env"
    source = EnvSource.from_settings("env", {"prefix": "APP_", "ignore_empty": "true"}, where=where)
    assert isinstance(source, EnvSource)
    assert (source.prefix, source.ignore_empty) == ("APP_", True)
    with pytest.raises(ConfigError, match=r"sources\.env\.case_sensitive must be true or false"):
        EnvSource.from_settings("env", {"case_sensitive": "maybe"}, where=where)
    with pytest.raises(ConfigError, match=r"unknown setting 'prefx'.*did you mean 'prefix'"):
        EnvSource.from_settings("env", {"prefx": "APP_"}, where=where)


def test_on_error_must_be_raise_or_skip() -> None:
    with pytest.raises(ConfigError, match="on_error must be one of 'raise', 'skip'"):
        EnvSource(on_error="ignore")
