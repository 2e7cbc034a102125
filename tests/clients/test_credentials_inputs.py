"""What a Secret task returns can be handed to a client factory (issue 14, item 3), and
two arguments naming different credentials are refused (item 5).

Every credential here is produced by a real Secret task against a real server
(moto, OpenBao, the GCP fake, the environment) and handed on as it comes; the
proof is the identity the client acts as (STS ``GetCallerIdentity`` on moto
with IAM enforced, ``lookup-self`` on OpenBao), never the factory's word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain, ConfigError, SecretRef, SecretValue
from authchain.backends.env.source import EnvSource
from authchain.clients import aws_client, aws_session, clear, gcp_credentials, vault_client
from authchain.masking import default_masker
from authchain.testing import canary
from authchain.testing.gcp import FakeSecretManager
from secret_tasks import AWSSecretsManagerSecret, EnvVarSecret, GCPSecretManagerSecret, VaultSecret
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.openbao import OpenBao
from tests.servers.prefect_api import PrefectAPI


@pytest.fixture(autouse=True)
def _fresh_client_cache() -> Iterator[None]:
    clear()
    yield
    clear()


def empty_chain() -> Chain:
    return Chain([EnvSource(environ={})], cache_ttl=0)


def arn_of(moto: MotoServer, keys: dict[str, str]) -> str:
    """The identity moto ties to ``keys``, asked with those keys directly (not through a factory)."""
    return str(moto.client("sts", **keys).get_caller_identity()["Arn"])


def acts_as(moto: MotoServer, client: Any) -> str:
    return str(client.get_caller_identity()["Arn"])


def sts(moto: MotoServer, **kwargs: Any) -> Any:
    return aws_client("sts", endpoint_url=moto.url, region_name=REGION, chain=empty_chain(), **kwargs)


@pytest.fixture
def two_users(moto: MotoServer) -> tuple[dict[str, str], dict[str, str]]:
    first, second = moto.iam_user(["sts:GetCallerIdentity"]), moto.iam_user(["sts:GetCallerIdentity"])
    assert arn_of(moto, first) != arn_of(moto, second)
    return first, second


# -- item 3: Secret task results into credentials= ------------------------------------------


def test_aws_sm_as_dict_result_is_accepted_and_acts_as_that_user(
    moto: MotoServer, two_users: tuple[dict[str, str], dict[str, str]]
) -> None:
    user, _ = two_users
    name = f"creds/{canary('sm')}"
    moto.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(user))
    options = {"endpoint_url": moto.url, "region": REGION, "timeout": 5.0}
    as_dict = AWSSecretsManagerSecret(name, as_dict=True, source_options=options).run()
    assert isinstance(as_dict, dict)
    assert all(isinstance(v, SecretValue) for v in as_dict.values())
    whole = AWSSecretsManagerSecret(name, source_options=options).run()
    fields = {
        "ACCESS_KEY": AWSSecretsManagerSecret(name, key="aws_access_key_id", source_options=options).run(),
        "SECRET_ACCESS_KEY": AWSSecretsManagerSecret(
            name, key="aws_secret_access_key", source_options=options
        ).run(),
    }
    moto.enforce_iam()  # from here only the users' keys work: the process's made-up keys are refused
    expected = arn_of(moto, user)
    for given in (as_dict, whole, fields):
        clear()
        assert acts_as(moto, sts(moto, credentials=given)) == expected
        session = aws_session(given, region_name=REGION, chain=empty_chain())
        assert acts_as(moto, session.client("sts", endpoint_url=moto.url)) == expected
    # The secret key went to the masker, as explicit keys always do.
    assert user["aws_secret_access_key"] not in default_masker.mask(f"key={user['aws_secret_access_key']}")


def test_env_var_secret_json_string_mapping_and_reference(
    moto: MotoServer, two_users: tuple[dict[str, str], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    user, _ = two_users
    variable = f"CREDS_{canary('env').upper().replace('-', '_')}"
    monkeypatch.setenv(variable, json.dumps(user))
    moto.enforce_iam()
    expected = arn_of(moto, user)
    results = {
        "SecretValue": EnvVarSecret(variable).run(),
        "as_dict": EnvVarSecret(variable, as_dict=True).run(),
        "JSON string": json.dumps(user),
        "mapping of strings": dict(user),
        "mapping of SecretValues": {key: SecretValue(value) for key, value in user.items()},
    }
    for label, given in results.items():
        clear()
        assert acts_as(moto, sts(moto, credentials=given)) == expected, label
    chain = Chain([EnvSource(environ={variable: json.dumps(user)})], cache_ttl=0)
    for reference in (SecretRef.parse(f"env://{variable}"), f"env://{variable}"):
        clear()
        client = aws_client(
            "sts", endpoint_url=moto.url, region_name=REGION, chain=chain, credentials=reference
        )
        assert acts_as(moto, client) == expected


def test_vault_secret_as_dict_into_aws_client(
    moto: MotoServer, openbao: OpenBao, two_users: tuple[dict[str, str], dict[str, str]]
) -> None:
    _, user = two_users
    path = f"clients/{canary('aws')}"
    openbao.put(path, user)
    chain = Chain([EnvSource(environ={"CI_VAULT_TOKEN": openbao.root_token})], cache_ttl=0)
    options = {"url": openbao.url, "token": "CI_VAULT_TOKEN", "timeout": 5.0}
    result = VaultSecret(path, as_dict=True, chain=chain, source_options=options).run()
    moto.enforce_iam()
    assert acts_as(moto, sts(moto, credentials=result)) == arn_of(moto, user)


def test_vault_client_takes_a_vault_secret_field_and_refuses_the_dict(openbao: OpenBao) -> None:
    reader = openbao.tokens["reader"]
    path = f"clients/{canary('token')}"
    openbao.put(path, {"token": reader})
    chain = Chain([EnvSource(environ={"CI_VAULT_TOKEN": openbao.root_token})], cache_ttl=0)
    options = {"url": openbao.url, "token": "CI_VAULT_TOKEN", "timeout": 5.0}
    token = VaultSecret(path, key="token", chain=chain, source_options=options).run()
    assert isinstance(token, SecretValue)
    client = vault_client(url=openbao.url, token=token, chain=empty_chain())
    looked_up = client.auth.token.lookup_self()["data"]
    assert "reader" in looked_up["policies"]
    assert "root" not in looked_up["policies"]
    as_dict = VaultSecret(path, as_dict=True, chain=chain, source_options=options).run()
    with pytest.raises(ConfigError, match=r"token= takes one secret .*\(token\)") as caught:
        vault_client(url=openbao.url, token=as_dict, chain=empty_chain())
    assert reader not in str(caught.value)
    assert reader not in repr(caught.value.args)


def test_gcp_secret_as_dict_into_gcp_credentials(gcp_fake: FakeSecretManager) -> None:
    from tests.clients.test_gcp_keyring import made_up_service_account

    account = made_up_service_account("inputs-project")
    gcp_fake.set_secret("inputs-sa", json.dumps(account), project="inputs-project")
    options = {"endpoint": gcp_fake.endpoint, "project": "inputs-project", "timeout": 5.0}
    for as_dict in (True, False):
        clear()
        result = GCPSecretManagerSecret(
            "inputs-sa", project="inputs-project", as_dict=as_dict, source_options=options
        ).run()
        credentials = gcp_credentials(result, chain=empty_chain())
        assert credentials.service_account_email == account["client_email"]
        assert credentials.project_id == "inputs-project"


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(lambda secret: [secret], id="list"),
        pytest.param(lambda secret: 12345, id="int"),
        pytest.param(lambda secret: {"ACCESS_KEY": b"\xff" + secret.encode()}, id="non-utf8-bytes"),
        pytest.param(lambda secret: {"ACCESS_KEY": {secret}}, id="set-in-mapping"),
        pytest.param(lambda secret: {"ACCESS_KEY": SecretRef.parse(f"env://{secret}")}, id="ref-in-mapping"),
        pytest.param(
            lambda secret: {"ACCESS_KEY": f"env://{secret}", "SECRET_ACCESS_KEY": "x" * 20},
            id="ref-text-in-mapping",  # would have signed with the text "env://..." as the key
        ),
    ],
)
def test_wrong_shapes_are_config_errors_without_values(given: Any) -> None:
    secret = canary()
    with pytest.raises(ConfigError) as caught:
        aws_session(given(secret), chain=empty_chain())
    shown = f"{caught.value} {caught.value!r} {caught.value.args}"
    assert secret not in shown
    assert "credentials" in str(caught.value)
    assert caught.value.__cause__ is None


def refused(factory: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BaseException:
    """The ConfigError of ``factory(*args, **kwargs)``; this frame drops the arguments."""
    try:
        factory(*args, **kwargs)
    except ConfigError as caught:
        error: BaseException = caught
    else:
        pytest.fail("expected a ConfigError", pytrace=False)
    del args, kwargs  # the traceback starts here: only the factory's frames are checked
    return error


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(lambda v: (aws_session, ({"ACCESS_KEY": [SecretValue(v), {v}]},), {}), id="aws"),
        pytest.param(lambda v: (gcp_credentials, ({"private_key": b"\xff" + v.encode()},), {}), id="gcp"),
        pytest.param(
            lambda v: (vault_client, (), {"url": "http://127.0.0.1:9", "token": {"token": v}}), id="vault"
        ),
        pytest.param(
            lambda v: (
                aws_client,
                ("s3",),
                {
                    "credentials": {"ACCESS_KEY": "a" + v, "SECRET_ACCESS_KEY": v},
                    "aws_secret_access_key": "b" + v,
                },
            ),
            id="conflict",
        ),
    ],
)
def test_refused_credentials_leave_no_frame_holding_the_value(arguments: Any) -> None:
    from tests.hardening.test_frames import assert_frames_clean

    value = canary()
    factory, args, kwargs = arguments(value)
    error = refused(factory, args, {**kwargs, "chain": empty_chain()})
    del args, kwargs
    assert_frames_clean(value, error)


# -- item 5: conflicting credential arguments ------------------------------------------------


def test_loose_boto3_keys_conflicting_with_credentials_are_refused(
    moto: MotoServer, two_users: tuple[dict[str, str], dict[str, str]]
) -> None:
    first, second = two_users
    moto.enforce_iam()
    for credentials in (first, json.dumps(first), {k: SecretValue(v) for k, v in first.items()}):
        with pytest.raises(
            ConfigError, match=r"credentials= and aws_access_key_id= and aws_secret_access_key="
        ) as caught:
            sts(moto, credentials=credentials, **second)
        shown = f"{caught.value} {caught.value.args}"
        for value in (*first.values(), *second.values()):
            assert value not in shown
    # Only the secret differs: still another identity's keys, still refused.
    with pytest.raises(ConfigError, match=r"credentials= and aws_secret_access_key="):
        sts(moto, credentials=first, aws_secret_access_key=second["aws_secret_access_key"])
    with pytest.raises(ConfigError, match=r"credentials= and aws_session_token="):
        sts(moto, credentials=first, aws_session_token=canary())


def test_loose_keys_identical_to_credentials_or_alone_act_as_that_user(
    moto: MotoServer, two_users: tuple[dict[str, str], dict[str, str]]
) -> None:
    first, second = two_users
    moto.enforce_iam()
    assert acts_as(moto, sts(moto, credentials=first, **first)) == arn_of(moto, first)
    clear()
    alone = sts(moto, **second)
    assert acts_as(moto, alone) == arn_of(moto, second)
    assert sts(moto, **second) is alone  # cached like any explicit credentials
    assert second["aws_secret_access_key"] not in default_masker.mask(second["aws_secret_access_key"])


def test_loose_keys_conflicting_with_a_named_credential_are_refused(
    moto: MotoServer, two_users: tuple[dict[str, str], dict[str, str]]
) -> None:
    first, second = two_users
    chain = Chain([EnvSource(environ={"FIRST_CREDS": json.dumps(first)})], cache_ttl=0)
    moto.enforce_iam()
    with pytest.raises(ConfigError, match=r"credential_name= and aws_access_key_id="):
        aws_client("sts", endpoint_url=moto.url, chain=chain, credential_name="FIRST_CREDS", **second)
    client = aws_client("sts", endpoint_url=moto.url, chain=chain, credential_name="FIRST_CREDS", **first)
    assert acts_as(moto, client) == arn_of(moto, first)


def test_credentials_and_credential_name_together(
    moto: MotoServer, two_users: tuple[dict[str, str], dict[str, str]]
) -> None:
    first, second = two_users
    chain = Chain([EnvSource(environ={"SECOND_CREDS": json.dumps(second)})], cache_ttl=0)
    for factory in (
        lambda **kw: aws_session(**kw),
        lambda **kw: aws_client("sts", endpoint_url=moto.url, **kw),
        lambda **kw: gcp_credentials(**kw),
    ):
        with pytest.raises(ConfigError, match=r"credentials= and credential_name=") as caught:
            factory(credentials=first, credential_name="SECOND_CREDS", chain=chain)
        assert first["aws_secret_access_key"] not in str(caught.value)
    # The same reference twice says one thing: accepted.
    moto.enforce_iam()
    client = aws_client(
        "sts",
        endpoint_url=moto.url,
        chain=chain,
        credentials="env://SECOND_CREDS",
        credential_name="env://SECOND_CREDS",
    )
    assert acts_as(moto, client) == arn_of(moto, second)


def test_vault_token_conflicting_with_credential_names(openbao: OpenBao) -> None:
    reader = openbao.tokens["reader"]
    chain = Chain([EnvSource(environ={"READER": reader, "ROOT": openbao.root_token})], cache_ttl=0)
    for token in (SecretValue(openbao.root_token), openbao.root_token, "env://ROOT"):
        with pytest.raises(ConfigError, match=r"token= and credential_names\['token'\]") as caught:
            vault_client(
                url=openbao.url, token=token, credential_names={"token": "env://READER"}, chain=chain
            )
        assert openbao.root_token not in str(caught.value)
        assert reader not in str(caught.value)
    client = vault_client(
        url=openbao.url, token="env://READER", credential_names={"token": "env://READER"}, chain=chain
    )
    assert "reader" in client.auth.token.lookup_self()["data"]["policies"]


# -- the docs' example (docs/clients.md), run as written ---------------------------------------------------


def readme_block(containing: str) -> str:
    """The Python block of docs/clients.md that contains ``containing``, exactly as a user would copy it."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "clients.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, flags=re.DOTALL | re.MULTILINE)
    found = [block for block in blocks if containing in block]
    assert len(found) == 1, f"expected one docs/clients.md block with {containing!r}, found {len(found)}"
    return found[0]


@pytest.mark.timeout(600)  # the Prefect API's start and a child flow run, on a loaded 2-core machine
def test_readme_custom_task_passes_a_secret_task_result_to_a_factory(
    moto: MotoServer, prefect_api: PrefectAPI, tmp_path: Path
) -> None:
    from tests.test_examples import run

    reader = moto.iam_user(["secretsmanager:GetSecretValue", "sts:GetCallerIdentity"])
    etl = moto.iam_user(["sts:GetCallerIdentity"])
    moto.client("secretsmanager").create_secret(Name="ops/etl-aws-keys", SecretString=json.dumps(etl))
    moto.enforce_iam()
    script = tmp_path / "audit.py"
    script.write_text(readme_block("class WhoAmI") + "\nprint(audit())\n", encoding="utf-8")
    env = {
        "PREFECT_API_URL": prefect_api.api_url,
        "AWS_ACCESS_KEY_ID": reader["aws_access_key_id"],  # the identity that reads the secret
        "AWS_SECRET_ACCESS_KEY": reader["aws_secret_access_key"],
    }
    output = run(script, env=env, cwd=tmp_path)
    assert output.strip().splitlines()[-1] == arn_of(moto, etl)  # the task signed as the secret's user
    assert arn_of(moto, etl) != arn_of(moto, reader)
    assert etl["aws_secret_access_key"] not in output
