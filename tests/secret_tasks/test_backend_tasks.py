"""Each backend's Secret task against that backend's real server: happy path,
JSON key, not found, and default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authchain import SecretNotFound, SecretValue
from authchain.testing import canary
from authchain.testing.gcp import FakeSecretManager
from secret_tasks import (
    AWSParameterStoreSecret,
    AWSSecretsManagerSecret,
    AzureKeyVaultSecret,
    GCPSecretManagerSecret,
    KeyringSecret,
    VaultSecret,
)
from tests.servers.azure_keyvault import FakeKeyVault
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.openbao import OpenBao


def revealed(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretValue) else value


# -- Vault / OpenBao -----------------------------------------------------------


@pytest.fixture
def vault_options(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("ST_VAULT_TOKEN", openbao.root_token)
    return {"url": openbao.url, "token": "env://ST_VAULT_TOKEN", "timeout": 5.0}


def test_vault_secret(openbao: OpenBao, vault_options: dict[str, Any]) -> None:
    password, user = canary(), canary()
    openbao.put("tasks/db", {"password": password, "user": user})
    task = VaultSecret("tasks/db", key="password", source_options=vault_options)
    assert revealed(task.run()) == password
    assert revealed(task.run(key="user")) == user
    fields = VaultSecret("tasks/db", as_dict=True, source_options=vault_options).run()
    assert {name: revealed(value) for name, value in fields.items()} == {"password": password, "user": user}


def test_vault_secret_versions(openbao: OpenBao, vault_options: dict[str, Any]) -> None:
    first, second = canary(), canary()
    openbao.put("tasks/rotated", {"value": first})
    openbao.put("tasks/rotated", {"value": second})
    task = VaultSecret("tasks/rotated", key="value", source_options=vault_options)
    assert revealed(task.run()) == second
    assert revealed(task.run(version=1)) == first


def test_vault_secret_not_found_and_default(vault_options: dict[str, Any]) -> None:
    with pytest.raises(SecretNotFound, match="tasks/absent"):
        VaultSecret("tasks/absent", source_options=vault_options).run()
    assert VaultSecret("tasks/absent", default=None, source_options=vault_options).run() is None


# -- AWS -----------------------------------------------------------------------


@pytest.fixture
def aws_options(moto: MotoServer) -> dict[str, Any]:
    return {"endpoint_url": moto.url, "region": REGION, "timeout": 5.0}


def test_aws_secrets_manager_secret(moto: MotoServer, aws_options: dict[str, Any]) -> None:
    value, field = canary(), canary()
    client = moto.client("secretsmanager")
    client.create_secret(Name="tasks/plain", SecretString=value)
    client.create_secret(Name="tasks/json", SecretString=json.dumps({"password": field}))
    assert revealed(AWSSecretsManagerSecret("tasks/plain", source_options=aws_options).run()) == value
    task = AWSSecretsManagerSecret(source_options=aws_options)
    assert revealed(task.run(secret_id="tasks/json", key="password")) == field
    with pytest.raises(SecretNotFound, match="tasks/absent"):
        task.run(secret_id="tasks/absent")
    assert AWSSecretsManagerSecret("tasks/absent", default=None, source_options=aws_options).run() is None


def test_aws_secrets_manager_secret_previous_stage(moto: MotoServer, aws_options: dict[str, Any]) -> None:
    old, new = canary(), canary()
    client = moto.client("secretsmanager")
    client.create_secret(Name="tasks/rotating", SecretString=old)
    client.put_secret_value(SecretId="tasks/rotating", SecretString=new)
    task = AWSSecretsManagerSecret("tasks/rotating", source_options=aws_options)
    assert revealed(task.run()) == new
    assert revealed(task.run(stage="AWSPREVIOUS")) == old


def test_aws_parameter_store_secret(moto: MotoServer, aws_options: dict[str, Any]) -> None:
    value = canary()
    moto.client("ssm").put_parameter(Name="/tasks/param", Value=value, Type="SecureString")
    assert revealed(AWSParameterStoreSecret("/tasks/param", source_options=aws_options).run()) == value
    with pytest.raises(SecretNotFound, match="/tasks/absent"):
        AWSParameterStoreSecret("/tasks/absent", source_options=aws_options).run()


# -- GCP -----------------------------------------------------------------------


def test_gcp_secret_manager_secret(gcp_fake: FakeSecretManager) -> None:
    first, second = canary(), canary()
    gcp_fake.set_secret("tasks-gcp", first, project="st-project")
    gcp_fake.set_secret("tasks-gcp", second, project="st-project")
    options = {"endpoint": gcp_fake.endpoint, "project": "st-project", "timeout": 5.0}
    task = GCPSecretManagerSecret("tasks-gcp", project="st-project", source_options=options)
    assert revealed(task.run()) == second
    assert revealed(task.run(version="1")) == first
    with pytest.raises(SecretNotFound, match="tasks-absent"):
        task.run(secret="tasks-absent")


# -- Azure Key Vault -------------------------------------------------------------


def test_azure_key_vault_secret(azure_vault: FakeKeyVault) -> None:
    pytest.importorskip("azure.keyvault.secrets", reason="needs the azure extra")
    from authchain import Chain, ConfigError
    from authchain.backends.env.source import EnvSource

    client_id, client_secret = "33333333-4444-4555-8666-777777777777", canary("sp")
    azure_vault.add_client(client_id, client_secret)
    principal = {"tenant_id": azure_vault.tenant, "client_id": client_id, "client_secret": client_secret}
    first, second, password = canary(), canary(), canary()
    old = azure_vault.set_secret("tasks-azure", first)
    azure_vault.set_secret("tasks-azure", second)
    azure_vault.set_secret("tasks-azure-json", json.dumps({"user": "app", "password": password}))
    options = {
        "vault_url": azure_vault.url,
        "vault_name": "task-vault",
        "authority": azure_vault.url,
        "ca_bundle": azure_vault.ca_file,
        "credentials": "AZ_SP",  # found through `chain`, as a configured source's credentials are
        "timeout": 5.0,
    }
    chain = Chain([EnvSource(environ={"AZ_SP": json.dumps(principal)})], cache_ttl=0)
    task = AzureKeyVaultSecret("tasks-azure", source_options=options, chain=chain)
    assert revealed(task.run()) == second
    assert revealed(task.run(version=old)) == first
    assert revealed(task.run(vault="task-vault")) == second
    assert revealed(task.run(secret="tasks-azure-json", key="password")) == password
    with pytest.raises(SecretNotFound, match="tasks-absent"):
        task.run(secret="tasks-absent")
    assert (
        AzureKeyVaultSecret("tasks-absent", source_options=options, chain=chain, default=None).run() is None
    )
    with pytest.raises(ConfigError, match="pass vault="):
        AzureKeyVaultSecret("tasks-azure", chain=chain).run()


# -- keyring -------------------------------------------------------------------


def test_keyring_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keyrings.alt.file import PlaintextKeyring

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    value = canary()
    backend = PlaintextKeyring()
    backend.set_password("st-service", "deploy-user", value)
    options = {"backend": "keyrings.alt.file.PlaintextKeyring"}
    task = KeyringSecret("deploy-user", service="st-service", source_options=options)
    assert revealed(task.run()) == value
    with pytest.raises(SecretNotFound, match="nobody"):
        task.run(username="nobody")
    with pytest.raises(ValueError, match="'username' is not set"):
        KeyringSecret(service="st-service", source_options=options).run()
