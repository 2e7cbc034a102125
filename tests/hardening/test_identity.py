"""Never a silent identity switch (issue 13, item 7).

A credential the user named (in a Secret task's ``source_options``, in a
factory argument) is looked up through the configured chain exactly as the
same setting in ``authchain.toml`` is, and one that nothing has is an error
naming it: never a login as whoever ``VAULT_TOKEN``, ``~/.vault-token``,
boto3's provider chain or ``google.auth.default()`` happens to be.

Proved against the real OpenBao server (a root token where hvac would look
for one, a restricted token under the name the task gives, a secret only root
may read) and against moto with IAM enforced (admin keys in the environment,
a restricted IAM user under the name the task gives).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authchain._default import reset_default_chain
from authchain.clients import aws_session, clear, explain_client, gcp_credentials, vault_client
from authchain.errors import AuthChainError, BackendError, ConfigError
from secret_tasks import AWSSecretsManagerSecret, GCPSecretManagerSecret, VaultSecret
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.openbao import OpenBao


def canary(label: str = "v") -> str:
    return f"{label}-{secrets.token_hex(12)}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory whose config defines no sources (so the default chain:
    environment, .env), a HOME of its own, and a default chain built afresh."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "authchain.toml").write_text("retries = 0\n")  # stops the upward search here
    user = tmp_path / "home"
    user.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user / ".config"))
    monkeypatch.delenv("AUTHCHAIN_CONFIG", raising=False)
    monkeypatch.delenv("AUTHCHAIN_PROFILE", raising=False)
    reset_default_chain()
    clear()
    yield user
    reset_default_chain()
    clear()


@pytest.fixture
def vault_world(openbao: OpenBao, home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Root where hvac looks (VAULT_TOKEN and ~/.vault-token), a reader token under
    MY_VAULT_TOKEN, one secret only root may read and one the reader may read."""
    tag = secrets.token_hex(6)
    world = {
        "root_only_path": f"root-only-{tag}/db",
        "root_only": canary("root-only"),
        "readable_path": f"t/{tag}/db",
        "readable": canary("readable"),
    }
    openbao.put(world["root_only_path"], {"v": world["root_only"]})
    openbao.put(world["readable_path"], {"v": world["readable"]})
    restricted = openbao.client().auth.token.create(policies=["reader"], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    (home / ".vault-token").write_text(openbao.root_token)
    monkeypatch.setenv("MY_VAULT_TOKEN", restricted)
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    return world


def assert_refused(error: BaseException, *values: str) -> None:
    text = f"{error!s} {error!r}"
    for value in values:
        assert value not in text, "a value reached the error message"


# -- Vault: a token named in source_options -------------------------------------------------


@pytest.mark.parametrize("where_root_is", ["VAULT_TOKEN and ~/.vault-token", "~/.vault-token only"])
@pytest.mark.parametrize("token", ["MY_VAULT_TOKEN", "env://MY_VAULT_TOKEN"])
def test_vault_task_uses_the_named_token_not_the_root_one(
    openbao: OpenBao,
    vault_world: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    where_root_is: str,
    token: str,
) -> None:
    if where_root_is == "~/.vault-token only":
        monkeypatch.delenv("VAULT_TOKEN")
    options = {"url": openbao.url, "token": token}
    task = VaultSecret(vault_world["root_only_path"], key="v", source_options=options)
    with pytest.raises(BackendError) as caught:
        task.run()
    assert caught.value.access_denied, "the restricted identity must be refused, not replaced"
    assert_refused(caught.value, vault_world["root_only"], openbao.root_token)
    # The same task settings do log in: as the restricted identity, with its access.
    readable = VaultSecret(vault_world["readable_path"], key="v", source_options=options).run()
    assert readable.get_secret_value() == vault_world["readable"]


def test_a_named_vault_token_nothing_has_is_an_error_not_root(
    openbao: OpenBao, vault_world: dict[str, str]
) -> None:
    missing = f"MISSING_VAULT_TOKEN_{secrets.token_hex(4).upper()}"
    mark = openbao.audit_mark()
    task = VaultSecret(
        vault_world["root_only_path"], key="v", source_options={"url": openbao.url, "token": missing}
    )
    with pytest.raises(AuthChainError) as caught:
        task.run()
    assert missing in str(caught.value)
    assert_refused(caught.value, vault_world["root_only"], openbao.root_token)
    assert not [path for path in openbao.requests_since(mark) if "root-only" in path], (
        "no read may be attempted with any other identity"
    )


def test_vault_task_without_a_token_name_still_uses_the_configured_chain(
    openbao: OpenBao, vault_world: dict[str, str]
) -> None:
    """No name given: the default name, VAULT_TOKEN, through the chain (the environment here)."""
    task = VaultSecret(vault_world["root_only_path"], key="v", source_options={"url": openbao.url})
    assert task.run().get_secret_value() == vault_world["root_only"]


def test_source_options_win_over_a_chain_which_only_supplies_their_credentials(
    openbao: OpenBao, vault_world: dict[str, str]
) -> None:
    """A task given both: its own settings are used, not the chain's Vault and its root token."""
    from authchain import Chain
    from authchain.backends.env.source import EnvSource
    from authchain.backends.vault.source import VaultSource

    restricted = os.environ["MY_VAULT_TOKEN"]
    creds = EnvSource(environ={"ROOT_NAME": openbao.root_token, "MY_VAULT_TOKEN": restricted}, name="creds")
    chain = Chain([VaultSource(url=openbao.url, token="ROOT_NAME"), creds], cache_ttl=0, retries=0)
    options = {"url": openbao.url, "token": "MY_VAULT_TOKEN"}
    task = VaultSecret(vault_world["root_only_path"], key="v", chain=chain, source_options=options)
    with pytest.raises(BackendError) as caught:
        task.run()
    assert caught.value.access_denied
    assert_refused(caught.value, vault_world["root_only"], openbao.root_token)
    readable = VaultSecret(vault_world["readable_path"], key="v", chain=chain, source_options=options)
    assert readable.run().get_secret_value() == vault_world["readable"]


# -- Vault: AppRole names in source_options --------------------------------------------------


def test_approle_names_in_source_options_are_found_through_the_chain(
    openbao: OpenBao, vault_world: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    role_id, secret_id = openbao.approles["app"]  # reader policy
    monkeypatch.setenv("MY_ROLE_ID", role_id)
    monkeypatch.setenv("MY_SECRET_ID", secret_id)
    options = {"url": openbao.url, "auth": "approle", "role_id": "MY_ROLE_ID", "secret_id": "MY_SECRET_ID"}
    readable = VaultSecret(vault_world["readable_path"], key="v", source_options=options).run()
    assert readable.get_secret_value() == vault_world["readable"]
    with pytest.raises(BackendError) as caught:
        VaultSecret(vault_world["root_only_path"], key="v", source_options=options).run()
    assert caught.value.access_denied
    assert_refused(caught.value, vault_world["root_only"], role_id, secret_id, openbao.root_token)


@pytest.mark.parametrize("missing", ["role_id", "secret_id"])
def test_a_named_approle_credential_nothing_has_is_an_error(
    openbao: OpenBao, vault_world: dict[str, str], monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    role_id, secret_id = openbao.approles["app"]
    monkeypatch.setenv("MY_ROLE_ID", role_id)
    monkeypatch.setenv("MY_SECRET_ID", secret_id)
    absent = f"ABSENT_{secrets.token_hex(4).upper()}"
    options = {"url": openbao.url, "auth": "approle", "role_id": "MY_ROLE_ID", "secret_id": "MY_SECRET_ID"}
    options[missing] = absent
    with pytest.raises(BackendError, match=f"{absent} was not found") as caught:
        VaultSecret(vault_world["root_only_path"], key="v", source_options=options).run()
    assert_refused(caught.value, vault_world["root_only"], role_id, secret_id)


# -- Vault: the factory ------------------------------------------------------------------------


def test_vault_client_with_a_token_reference_logs_in_as_that_identity(
    openbao: OpenBao, vault_world: dict[str, str]
) -> None:
    import hvac

    client = vault_client(url=openbao.url, token="env://MY_VAULT_TOKEN")
    read = client.secrets.kv.v2.read_secret_version(
        path=vault_world["readable_path"], raise_on_deleted_version=True
    )
    assert read["data"]["data"]["v"] == vault_world["readable"]
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_version(
            path=vault_world["root_only_path"], raise_on_deleted_version=True
        )
    origin = explain_client("vault", url=openbao.url, token="env://MY_VAULT_TOKEN").origins["token"]
    assert origin.startswith("chain: env"), origin


@pytest.mark.parametrize("how", ["reference", "credential_names"])
def test_vault_client_with_a_named_token_nothing_has_is_an_error(
    openbao: OpenBao, vault_world: dict[str, str], how: str
) -> None:
    missing = f"MISSING_{secrets.token_hex(4).upper()}"
    arguments: dict[str, Any] = (
        {"token": f"env://{missing}"} if how == "reference" else {"credential_names": {"token": missing}}
    )
    with pytest.raises(AuthChainError) as caught:
        vault_client(url=openbao.url, **arguments)
    assert missing in str(caught.value)
    assert_refused(caught.value, openbao.root_token)
    origin = explain_client("vault", url=openbao.url, **arguments).origins["token"]
    assert origin.startswith("missing"), origin


# -- AWS: credentials named in source_options, against moto with IAM enforced -------------------


@pytest.fixture
def aws_world(moto: MotoServer, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Admin keys where boto3 looks (the environment), a user allowed nothing on
    Secrets Manager under MY_AWS_CREDENTIALS, a reader under READER_AWS_CREDENTIALS."""
    admin = moto.iam_user(["*"])
    nobody = moto.iam_user(["ssm:DescribeParameters"])
    reader = moto.iam_user(["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"])
    secret_id = f"admin-only-{secrets.token_hex(6)}"
    value = canary("admin-only")
    moto.client("secretsmanager").create_secret(Name=secret_id, SecretString=value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", admin["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", admin["aws_secret_access_key"])
    monkeypatch.setenv("MY_AWS_CREDENTIALS", json.dumps(nobody))
    monkeypatch.setenv("READER_AWS_CREDENTIALS", json.dumps(reader))
    moto.enforce_iam(True)
    yield {"secret_id": secret_id, "value": value, "admin_secret": admin["aws_secret_access_key"]}
    moto.enforce_iam(False)


def test_aws_task_uses_the_named_credentials_not_boto3s(moto: MotoServer, aws_world: dict[str, str]) -> None:
    options = {"endpoint_url": moto.url, "region": REGION, "credentials": "MY_AWS_CREDENTIALS"}
    task = AWSSecretsManagerSecret(aws_world["secret_id"], source_options=options)
    with pytest.raises(BackendError) as caught:
        task.run()
    assert caught.value.access_denied
    assert_refused(caught.value, aws_world["value"], aws_world["admin_secret"])
    # Found through the chain (not a ConfigError), and used: a reader gets the value.
    options["credentials"] = "READER_AWS_CREDENTIALS"
    found = AWSSecretsManagerSecret(aws_world["secret_id"], source_options=options).run()
    assert found.get_secret_value() == aws_world["value"]


def test_aws_named_credentials_nothing_has_are_an_error(moto: MotoServer, aws_world: dict[str, str]) -> None:
    missing = f"MISSING_{secrets.token_hex(4).upper()}"
    options = {"endpoint_url": moto.url, "region": REGION, "credentials": missing}
    with pytest.raises(ConfigError, match=missing) as caught:
        AWSSecretsManagerSecret(aws_world["secret_id"], source_options=options).run()
    assert_refused(caught.value, aws_world["value"], aws_world["admin_secret"])


@pytest.mark.parametrize("how", ["credentials reference", "credential_name"])
def test_aws_session_with_named_credentials_never_uses_boto3s_chain(
    moto: MotoServer, aws_world: dict[str, str], how: str
) -> None:
    def session(name: str) -> Any:
        if how == "credential_name":
            return aws_session(credential_name=name, region_name=REGION)
        return aws_session(credentials=f"env://{name}", region_name=REGION)

    missing = f"MISSING_{secrets.token_hex(4).upper()}"
    with pytest.raises(ConfigError, match=missing):
        session(missing)
    # A bare name passed as the credentials themselves is not JSON keys: an error, never boto3's chain.
    with pytest.raises(ConfigError, match="not JSON") as caught:
        aws_session(credentials="MY_AWS_CREDENTIALS", region_name=REGION)
    assert_refused(caught.value, aws_world["admin_secret"])
    client = session("MY_AWS_CREDENTIALS").client("secretsmanager", endpoint_url=moto.url)
    denied = client.exceptions.ClientError
    with pytest.raises(denied) as caught:
        client.get_secret_value(SecretId=aws_world["secret_id"])
    assert "AccessDenied" in str(caught.value)
    assert aws_world["value"] not in str(caught.value)


# -- GCP: credentials named in source_options or passed to the factory ---------------------------


def test_gcp_named_credentials_nothing_has_are_an_error_not_adc(
    home: Path, gcp_fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("google.auth")
    import google.auth

    asked: list[object] = []
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: asked.append(a) or (None, None))
    missing = f"MISSING_{secrets.token_hex(4).upper()}"
    value = canary("gcp")
    gcp_fake.set_secret("named-cred", value, project="authchain-test")
    task = GCPSecretManagerSecret(
        "named-cred", source_options={"endpoint": gcp_fake.endpoint, "credentials": missing}
    )
    with pytest.raises(ConfigError, match=missing) as caught:
        task.run()
    assert_refused(caught.value, value)
    with pytest.raises(ConfigError, match=missing):
        gcp_credentials(credentials=f"env://{missing}")
    with pytest.raises(ConfigError, match=missing):
        gcp_credentials(credential_name=missing)
    assert asked == [], "google.auth.default() must not stand in for a named credential"
