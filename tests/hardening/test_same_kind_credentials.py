"""Credentials from another store of the same kind (issue 14, item 2).

Bootstrap and cross-account setups read one identity's keys with another:
``[clients.aws] credentials = "aws-sm://prod/aws-creds"``, one Vault holding the
token of another. Recursion is broken by the *instance* being resolved (it is
left out of its own credential lookup), not by excluding its whole type; a
real cycle (every store that could read the reference is itself waiting for
its credentials) is a ``ConfigError`` naming it, never a quiet answer from a
default identity.

Proved against the real servers: moto with IAM enforced (so the identity that
signs is observable: one user may read the other's keys, only the other may
read the target), and OpenBao (a root token reads a reader token stored in KV;
the second Vault source then reads as the reader, which root-only paths deny).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from authchain import Chain
from authchain._default import reset_default_chain
from authchain.clients import aws_session, clear, vault_client
from authchain.errors import BackendError, ConfigError
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.openbao import OpenBao


def canary(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory of its own, a HOME without tokens, the default chain and client cache fresh."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    for name in ("AUTHCHAIN_CONFIG", "AUTHCHAIN_PROFILE", "VAULT_TOKEN", "VAULT_ADDR"):
        monkeypatch.delenv(name, raising=False)
    reset_default_chain()
    clear()
    yield tmp_path
    reset_default_chain()
    clear()


def chain_from(work: Path, toml: str, monkeypatch: pytest.MonkeyPatch) -> Chain:
    path = work / "authchain.toml"
    path.write_text(toml + '\n[sources.env]\ntype = "env"\n')  # every order ends with "env"
    monkeypatch.setenv("AUTHCHAIN_CONFIG", str(path))  # trusted: named, not found upwards
    reset_default_chain()
    return Chain.from_config(path)


def sm_table(moto: MotoServer, name: str, credentials: str) -> str:
    """An aws-sm source on moto whose credentials are ``credentials`` (a name or reference)."""
    return f"""[sources.{name}]
type = "aws-sm"
endpoint_url = "{moto.url}"
region = "{REGION}"
credentials = "{credentials}"
"""


# -- AWS: one identity reads the keys of another ---------------------------------------------


@pytest.fixture
def aws_pair(moto: MotoServer, work: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """``bootstrap`` may read only the stored keys; ``prod`` (whose keys are stored) only the target."""
    tag = secrets.token_hex(5)
    bootstrap = moto.iam_user(["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"])
    prod = moto.iam_user(["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"])
    sm = moto.client("secretsmanager")
    keys_id, target_id = f"prod-{tag}/aws-creds", f"prod-{tag}/db"
    target = canary("target")
    sm.create_secret(Name=keys_id, SecretString=json.dumps(prod))
    sm.create_secret(Name=target_id, SecretString=target)
    monkeypatch.setenv("BOOTSTRAP_AWS_CREDENTIALS", json.dumps(bootstrap))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    moto.enforce_iam(True)
    yield {
        "keys_id": keys_id,
        "target_id": target_id,
        "target": target,
        "prod_key": prod["aws_access_key_id"],
        "prod_secret": prod["aws_secret_access_key"],
        "bootstrap_secret": bootstrap["aws_secret_access_key"],
    }
    moto.enforce_iam(False)


def test_readme_form_clients_aws_credentials_from_aws_sm(
    moto: MotoServer, aws_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's ``[clients.aws] credentials = "aws-sm://..."``: read by the configured aws-sm source."""
    chain = chain_from(
        work,
        f"""
order = ["sm", "env"]
{sm_table(moto, "sm", "BOOTSTRAP_AWS_CREDENTIALS")}

[clients.aws]
credentials = "aws-sm://{aws_pair["keys_id"]}"
region_name = "{REGION}"
""",
        monkeypatch,
    )
    session = aws_session(chain=chain)
    assert session.get_credentials().access_key == aws_pair["prod_key"]
    client = session.client("secretsmanager", endpoint_url=moto.url)
    got = client.get_secret_value(SecretId=aws_pair["target_id"])["SecretString"]
    assert got == aws_pair["target"]
    chain.close()


def test_a_source_reads_its_keys_from_another_source_of_its_type(
    moto: MotoServer, aws_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # prod is first in the order: its own credential lookup leaves prod out and
    # so reaches bootstrap, which signs as the bootstrap user.
    chain = chain_from(
        work,
        f"""
order = ["prod", "bootstrap", "env"]
{sm_table(moto, "prod", "aws-sm://" + aws_pair["keys_id"])}

{sm_table(moto, "bootstrap", "BOOTSTRAP_AWS_CREDENTIALS")}
""",
        monkeypatch,
    )
    found = chain.resolve(aws_pair["target_id"])
    assert found.get_secret_value() == aws_pair["target"]
    assert chain.explain(aws_pair["target_id"]).winner.source == "prod"
    chain.close()


def test_identity_is_the_stored_one_not_the_bootstrap_one(
    moto: MotoServer, aws_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deny the prod user the target: the read fails, so prod really signs as the stored identity."""
    moto.enforce_iam(False)
    nobody = moto.iam_user(["ssm:DescribeParameters"])
    keys_id = aws_pair["keys_id"] + "-nobody"
    moto.client("secretsmanager").create_secret(Name=keys_id, SecretString=json.dumps(nobody))
    moto.enforce_iam(True)
    chain = chain_from(
        work,
        f"""
order = ["prod", "bootstrap", "env"]
{sm_table(moto, "prod", "aws-sm://" + keys_id)}

{sm_table(moto, "bootstrap", "BOOTSTRAP_AWS_CREDENTIALS")}
""",
        monkeypatch,
    )
    with pytest.raises(BackendError) as caught:
        chain.resolve(aws_pair["target_id"])
    assert caught.value.access_denied
    for value in (aws_pair["target"], nobody["aws_secret_access_key"], aws_pair["bootstrap_secret"]):
        assert value not in str(caught.value)
    chain.close()


def test_a_lone_source_reading_its_own_keys_is_a_cycle_naming_it(
    moto: MotoServer, aws_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = chain_from(
        work,
        f"""
order = ["prod", "env"]
{sm_table(moto, "prod", "aws-sm://" + aws_pair["keys_id"])}
""",
        monkeypatch,
    )
    with pytest.raises(ConfigError, match="credential cycle") as caught:
        chain.resolve(aws_pair["target_id"])
    message = str(caught.value)
    assert "prod (aws-sm)" in message
    assert aws_pair["keys_id"] in message
    for value in (aws_pair["target"], aws_pair["prod_secret"], aws_pair["bootstrap_secret"]):
        assert value not in message
    chain.close()


def test_two_sources_waiting_for_each_other_are_a_cycle_naming_both(
    moto: MotoServer, aws_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = chain_from(
        work,
        f"""
order = ["a", "b", "env"]
{sm_table(moto, "a", "aws-sm://" + aws_pair["keys_id"])}

{sm_table(moto, "b", "aws-sm://" + aws_pair["keys_id"] + "-b")}
""",
        monkeypatch,
    )
    with pytest.raises(ConfigError, match="credential cycle") as caught:
        chain.resolve(aws_pair["target_id"])
    message = str(caught.value)
    assert "a (aws-sm)" in message
    assert "b (aws-sm)" in message
    assert message.index("a (aws-sm)") < message.index("b (aws-sm)"), "named from the outermost lookup in"
    chain.close()


def test_a_bare_credential_name_never_asks_the_clients_own_kind(
    moto: MotoServer, aws_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``AWS_CREDENTIALS`` stored in Secrets Manager is not how a factory bootstraps: the bare
    conventional name walks the chain without AWS stores (a reference reaches them)."""
    moto.enforce_iam(False)
    moto.client("secretsmanager").create_secret(
        Name="AWS_CREDENTIALS",
        SecretString=json.dumps({"ACCESS_KEY": "AKIASTORED", "SECRET_ACCESS_KEY": "x"}),
    )
    moto.enforce_iam(True)
    chain = chain_from(
        work,
        f"""
order = ["sm", "env"]
{sm_table(moto, "sm", "BOOTSTRAP_AWS_CREDENTIALS")}
""",
        monkeypatch,
    )
    try:
        explained = aws_session(chain=chain).get_credentials()
        assert explained is None or explained.access_key != "AKIASTORED"
    finally:
        moto.enforce_iam(False)
        moto.client("secretsmanager").delete_secret(
            SecretId="AWS_CREDENTIALS", ForceDeleteWithoutRecovery=True
        )
        moto.enforce_iam(True)
        chain.close()


# -- Vault: one Vault holds the token of another ---------------------------------------------


@pytest.fixture
def vault_pair(openbao: OpenBao, work: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Root under ROOT_TOKEN; a reader token stored in KV at a root-only path; a readable
    and a root-only secret."""
    tag = secrets.token_hex(5)
    reader = openbao.client().auth.token.create(policies=["reader"], ttl="10m")["auth"]["client_token"]
    world = {
        "token_path": f"boot-{tag}/reader",
        "readable_path": f"t/{tag}/db",
        "readable": canary("readable"),
        "root_only_path": f"root-only-{tag}/db",
        "root_only": canary("root-only"),
        "reader": reader,
    }
    openbao.put(world["token_path"], {"token": reader})
    openbao.put(world["readable_path"], {"v": world["readable"]})
    openbao.put(world["root_only_path"], {"v": world["root_only"]})
    monkeypatch.setenv("ROOT_TOKEN", openbao.root_token)
    return world


def vault_config(openbao: OpenBao, vault_pair: dict[str, str], order: str, prefix: str) -> str:
    return f"""
order = {order}
[sources.prod]
type = "vault"
url = "{openbao.url}"
path_prefix = "{prefix}"
field = "v"
token = "vault://secret/{vault_pair["token_path"]}#token"

[sources.boot]
type = "vault"
url = "{openbao.url}"
token = "ROOT_TOKEN"
"""


def test_a_vault_source_logs_in_with_a_token_another_vault_holds(
    openbao: OpenBao, vault_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prod first: references go to prod, which reads as the stored reader token."""
    prefix = vault_pair["readable_path"].rsplit("/", 1)[0]
    chain = chain_from(
        work, vault_config(openbao, vault_pair, '["prod", "boot", "env"]', prefix), monkeypatch
    )
    readable = f"vault://secret/{vault_pair['readable_path']}#v"
    assert chain.resolve(readable).get_secret_value() == vault_pair["readable"]
    assert chain.explain(readable).winner.source == "prod"
    with pytest.raises(BackendError) as caught:  # root could read it: prod is not root
        chain.resolve(f"vault://secret/{vault_pair['root_only_path']}#v")
    assert caught.value.access_denied
    for value in (vault_pair["root_only"], vault_pair["reader"], openbao.root_token):
        assert value not in str(caught.value)
    chain.close()


def test_a_later_vault_source_borrows_from_an_earlier_one(
    openbao: OpenBao, vault_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """boot first: a bare name misses in boot and is found by prod, logged in with boot's answer."""
    prefix = vault_pair["readable_path"].rsplit("/", 1)[0]
    chain = chain_from(
        work, vault_config(openbao, vault_pair, '["boot", "prod", "env"]', prefix), monkeypatch
    )
    assert chain.resolve("db").get_secret_value() == vault_pair["readable"]
    assert chain.explain("db").winner.source == "prod"
    chain.close()


def test_two_vaults_holding_each_others_token_are_a_cycle(
    openbao: OpenBao, vault_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = chain_from(
        work,
        f"""
order = ["one", "two", "env"]
[sources.one]
type = "vault"
url = "{openbao.url}"
token = "vault://secret/{vault_pair["token_path"]}#token"

[sources.two]
type = "vault"
url = "{openbao.url}"
token = "vault://secret/{vault_pair["token_path"]}#other"
""",
        monkeypatch,
    )
    with pytest.raises(ConfigError, match="credential cycle") as caught:
        chain.resolve(f"vault://secret/{vault_pair['readable_path']}#v")
    message = str(caught.value)
    assert "one (vault)" in message
    assert "two (vault)" in message
    assert vault_pair["reader"] not in message
    assert openbao.root_token not in message
    chain.close()


def test_vault_client_token_from_a_vault_reference(
    openbao: OpenBao, vault_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[clients.vault] token = "vault://..."``: the configured Vault reads it, the client logs in as it."""
    chain = chain_from(
        work,
        f"""
order = ["boot", "env"]
[sources.boot]
type = "vault"
url = "{openbao.url}"
token = "ROOT_TOKEN"

[clients.vault]
url = "{openbao.url}"
token = "vault://secret/{vault_pair["token_path"]}#token"
""",
        monkeypatch,
    )
    client = vault_client(chain=chain)
    assert client.token == vault_pair["reader"]
    assert client.auth.token.lookup_self()["data"]["policies"] == ["default", "reader"]
    chain.close()


def test_a_conventional_name_pinned_to_the_clients_kind_reaches_that_store(
    moto: MotoServer, aws_pair: dict[str, str], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[secrets] AWS_CREDENTIALS = "aws-sm://..."``: the pin says where, so the store is asked."""
    chain = chain_from(
        work,
        f"""
order = ["sm", "env"]
{sm_table(moto, "sm", "BOOTSTRAP_AWS_CREDENTIALS")}

[secrets]
AWS_CREDENTIALS = "aws-sm://{aws_pair["keys_id"]}"
""",
        monkeypatch,
    )
    session = aws_session(chain=chain, region_name=REGION)
    assert session.get_credentials().access_key == aws_pair["prod_key"]
    chain.close()
