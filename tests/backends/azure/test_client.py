"""azure_credential / azure_secret_client against the in-process HTTPS Key Vault and authority."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.keyvault.secrets", reason="needs the azure extra")
pytest.importorskip("azure.identity", reason="needs the azure extra")

from authchain import Chain, ConfigError, masking
from authchain.backends.env.source import EnvSource
from authchain.clients import azure_credential, azure_secret_client, clear, explain_client, lazy
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.servers.azure_keyvault import FakeKeyVault

CLIENT_ID = "22222222-3333-4444-8555-666666666666"


@pytest.fixture(autouse=True)
def _fresh_client_cache() -> Iterator[None]:
    clear()
    yield
    clear()


def principal(fake: FakeKeyVault) -> tuple[dict[str, str], str]:
    secret = canary("sp")
    fake.add_client(CLIENT_ID, secret)
    return {"tenant_id": fake.tenant, "client_id": CLIENT_ID, "client_secret": secret}, secret


def endpoints(fake: FakeKeyVault) -> dict[str, str]:
    return {"vault_url": fake.url, "authority": fake.url, "ca_bundle": fake.ca_file}


def test_a_client_with_credentials_from_the_chain_reads_the_vault(azure_vault: FakeKeyVault) -> None:
    info, secret = principal(azure_vault)
    value = canary()
    azure_vault.set_secret("db-password", value)
    chain = Chain([EnvSource(environ={"AZURE_CREDENTIALS": json.dumps(info)})], cache_ttl=0)
    client = azure_secret_client(chain=chain, **endpoints(azure_vault))
    assert client.get_secret("db-password").value == value
    assert azure_secret_client(chain=chain, **endpoints(azure_vault)) is client, "not cached"
    explanation = explain_client("azure", chain=chain, **endpoints(azure_vault))
    assert explanation.origins["credentials"] == "chain: env (AZURE_CREDENTIALS)"
    assert explanation.origins["vault_url"] == "explicit"
    assert_not_leaked(secret, str(explanation), "explain_client")
    (token,) = azure_vault._tokens
    assert masking.default_masker.mask(token) == masking.REPLACEMENT
    assert masking.default_masker.mask(secret) == masking.REPLACEMENT


def test_explicit_credentials_and_wrong_shaped_ones(azure_vault: FakeKeyVault) -> None:
    info, _ = principal(azure_vault)
    chain = Chain([EnvSource(environ={})], cache_ttl=0)
    credential = azure_credential(info, authority=azure_vault.url, ca_bundle=azure_vault.ca_file, chain=chain)
    assert credential.get_token("https://vault.azure.net/.default").token in azure_vault._tokens
    assert azure_credential(info, authority=azure_vault.url, ca_bundle=azure_vault.ca_file, chain=chain) is (
        credential
    )
    planted = canary()
    with pytest.raises(ConfigError, match="exactly one of client_secret") as caught:
        azure_credential({"tenant_id": "t", "client_id": "c"}, chain=chain)
    with pytest.raises(ConfigError, match="unknown fields") as caught:
        azure_credential({"tenant_id": "t", "client_id": "c", "secret": planted}, chain=chain)
    assert_not_leaked(planted, str(caught.value), "ConfigError")


def test_a_named_credential_nothing_has_is_an_error(azure_vault: FakeKeyVault) -> None:
    chain = Chain([EnvSource(environ={})], cache_ttl=0)
    with pytest.raises(ConfigError, match="'MY_SP' were not found"):
        azure_secret_client(credential_name="MY_SP", chain=chain, **endpoints(azure_vault))
    with pytest.raises(ConfigError, match="pass only one"):
        azure_secret_client({"tenant_id": "t"}, credential_name="MY_SP", chain=chain)


def test_settings_come_from_the_clients_table(
    azure_vault: FakeKeyVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info, _ = principal(azure_vault)
    monkeypatch.setenv("MY_SP", json.dumps(info))
    value = canary()
    azure_vault.set_secret("from-config", value)
    config = tmp_path / "authchain.toml"
    config.write_text(
        '[sources.sp]\ntype = "env"\n\n[clients.azure]\ncredentials = "MY_SP"\n'
        f'vault_url = "{azure_vault.url}"\nauthority = "{azure_vault.url}"\n'
        f"ca_bundle = {json.dumps(azure_vault.ca_file)}\n"
    )
    chain = Chain.from_config(config)
    client = azure_secret_client(chain=chain)
    assert client.get_secret("from-config").value == value
    origins = explain_client("azure", chain=chain).origins
    assert origins["vault_url"] == "[clients.azure]"
    assert origins["credentials"] == "chain: sp (env) (MY_SP)"
    config.write_text('[clients.azure]\nvault = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'vault'"):
        azure_secret_client(chain=Chain.from_config(config, environ={}))


def test_a_client_needs_a_vault() -> None:
    with pytest.raises(ConfigError, match="needs a vault"):
        azure_secret_client({"tenant_id": "t", "client_id": "c", "client_secret": "s"})


def test_the_native_default_is_the_azure_variables_then_default_azure_credential(
    azure_vault: FakeKeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, secret = principal(azure_vault)
    monkeypatch.setenv("AZURE_TENANT_ID", azure_vault.tenant)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    value = canary()
    azure_vault.set_secret("native", value)
    chain = Chain([EnvSource(environ={})], cache_ttl=0)
    assert explain_client("azure", chain=chain).origins["credentials"] == "native default (AZURE_* variables)"
    client = azure_secret_client(chain=chain, **endpoints(azure_vault))
    assert client.get_secret("native").value == value
    assert masking.default_masker.mask(secret) == masking.REPLACEMENT
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    assert explain_client("azure", chain=chain).origins["credentials"] == (
        "native default (DefaultAzureCredential)"
    )


def test_the_native_default_is_refused_under_a_test_override(
    azure_vault: FakeKeyVault, authchain_secrets: Any
) -> None:
    with pytest.raises(ConfigError, match="would read the real environment"):
        azure_secret_client(**endpoints(azure_vault))
    info, _ = principal(azure_vault)
    authchain_secrets["AZURE_CREDENTIALS"] = json.dumps(info)
    value = canary()
    azure_vault.set_secret("overridden", value)
    assert azure_secret_client(**endpoints(azure_vault)).get_secret("overridden").value == value


def test_a_lazy_client_pickles_without_credentials(azure_vault: FakeKeyVault) -> None:
    info, secret = principal(azure_vault)
    with pytest.raises(ConfigError, match="travels in pickles"):
        lazy(azure_secret_client, info, vault_url=azure_vault.url)
    deferred = lazy(azure_secret_client, "env://AZ_SP_FOR_LAZY", **endpoints(azure_vault))
    os.environ["AZ_SP_FOR_LAZY"] = json.dumps(info)
    try:
        planted = canary()
        azure_vault.set_secret("lazy", planted)
        assert deferred.get_secret("lazy").value == planted
    finally:
        del os.environ["AZ_SP_FOR_LAZY"]
    data = pickle.dumps(deferred)
    assert_not_leaked(secret, data, "pickle.dumps(lazy client)")
    (token,) = azure_vault._tokens
    assert_not_leaked(token, data, "pickle.dumps(lazy client)")
