"""Secret tasks outside a flow, against real env and .env sources (the backend
tasks are tested next to their servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authchain import Chain, ConfigError, SecretNotFound, SecretValue
from authchain.backends.env.source import EnvSource
from authchain.testing import MemorySource, canary
from secret_tasks import ChainSecret, DotenvSecret, EnvVarSecret, PrefectSecret, VaultSecret


def test_env_var_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    value = canary()
    monkeypatch.setenv("ST_ENV_SECRET", value)
    result = EnvVarSecret("ST_ENV_SECRET").run()
    assert isinstance(result, SecretValue)
    assert result.get_secret_value() == value
    assert EnvVarSecret().run(name="ST_ENV_SECRET").get_secret_value() == value


def test_env_var_secret_not_found_and_default() -> None:
    with pytest.raises(SecretNotFound, match="ST_ENV_NOWHERE"):
        EnvVarSecret("ST_ENV_NOWHERE").run()
    assert EnvVarSecret("ST_ENV_NOWHERE", default=None).run() is None
    fallback = SecretValue("fallback")
    assert EnvVarSecret("ST_ENV_NOWHERE", default=fallback).run() is fallback


def test_env_var_secret_json_key_and_as_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    user, password = canary("user"), canary("password")
    monkeypatch.setenv("ST_ENV_JSON", json.dumps({"user": user, "password": password}))
    assert EnvVarSecret("ST_ENV_JSON", key="password").run().get_secret_value() == password
    fields = EnvVarSecret("ST_ENV_JSON", as_dict=True).run()
    assert isinstance(fields, dict)
    assert {k: v.get_secret_value() for k, v in fields.items()} == {"user": user, "password": password}
    assert isinstance(EnvVarSecret("ST_ENV_JSON").run(as_dict=True), dict)


def test_bad_name_is_a_value_error_before_any_lookup() -> None:
    with pytest.raises(ValueError, match="not a variable name") as caught:
        EnvVarSecret("not-a-name!").run()
    assert isinstance(caught.value, ConfigError)


def test_dotenv_secret(tmp_path: Path) -> None:
    value = canary()
    env_file = tmp_path / "app.env"
    env_file.write_text(f"ST_DOTENV={value}\n")
    assert DotenvSecret("ST_DOTENV", path=str(env_file)).run().get_secret_value() == value
    with pytest.raises(SecretNotFound, match="ST_DOTENV_MISSING"):
        DotenvSecret("ST_DOTENV_MISSING", path=str(env_file)).run()


def test_chain_secret_uses_the_given_chain_and_references() -> None:
    value, other = canary(), canary()
    memory = MemorySource({"API_KEY": value})
    chain = Chain([memory, EnvSource(environ={"OTHER": other})])
    assert ChainSecret("API_KEY", chain=chain).run().get_secret_value() == value
    assert ChainSecret("env://OTHER", chain=chain).run().get_secret_value() == other
    with pytest.raises(SecretNotFound) as caught:
        ChainSecret("NOWHERE", chain=chain).run()
    assert "memory: NOWHERE is not in memory" in str(caught.value)


def test_chain_secret_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = canary()
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.env]\ntype = "env"\nprefix = "STCFG_"\n[profiles.p]\ncache_ttl = 0\n')
    monkeypatch.setenv("STCFG_TOKEN", value)
    assert ChainSecret("TOKEN", config=str(config), profile="p").run().get_secret_value() == value


def test_chains_a_task_builds_for_one_run_are_closed_and_given_ones_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.env]\ntype = "env"\n')
    monkeypatch.setenv("PREFECT__CONTEXT__SECRETS__ST_CLOSED", json.dumps(canary()))
    monkeypatch.setenv("ST_CLOSED", canary())
    closed: list[Chain] = []
    close = Chain.close

    def counting_close(chain: Chain) -> None:
        closed.append(chain)
        close(chain)

    monkeypatch.setattr(Chain, "close", counting_close)
    ChainSecret("ST_CLOSED", config=str(config)).run()
    PrefectSecret("ST_CLOSED").run()
    EnvVarSecret("ST_CLOSED", source_options={"prefix": ""}).run()
    assert len(closed) == 3, "each run closes the chain it built"
    given = Chain([EnvSource()])
    ChainSecret("ST_CLOSED", chain=given).run()
    assert given not in closed, "a chain the caller passed stays open"
    assert len(closed) == 3


def test_chain_secret_takes_no_source_options() -> None:
    with pytest.raises(ConfigError, match="not source_options"):
        ChainSecret("TOKEN", source_options={"prefix": "X_"})


def test_prefect_secret_reads_prefect_1_local_secrets_outside_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    value = canary()
    monkeypatch.setenv("PREFECT__CONTEXT__SECRETS__ST_LEGACY", json.dumps(value))
    assert PrefectSecret("ST_LEGACY").run().get_secret_value() == value
    with pytest.raises(SecretNotFound) as caught:
        PrefectSecret("ST_LEGACY_MISSING").run()
    assert "not inside a Prefect flow or task run" in str(caught.value)


def test_vault_secret_builds_a_checked_reference() -> None:
    with pytest.raises(ConfigError, match=r"'\.' and '\.\.' are not allowed"):
        VaultSecret("app/../../etc", mount="secret").run()
