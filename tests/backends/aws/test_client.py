"""aws_session / aws_client against moto's real HTTP server, with IAM enforced so
only the credentials the factory found can work."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain, ConfigError
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultSource
from authchain.clients import aws_client, aws_session, clear, explain_client
from authchain.clients._base import Unfingerprintable, fingerprint
from authchain.testing import canary
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.openbao import OpenBao


@pytest.fixture(autouse=True)
def _fresh_client_cache() -> Iterator[None]:
    clear()
    yield
    clear()


def prefect1(keys: dict[str, str]) -> dict[str, str]:
    return {"ACCESS_KEY": keys["aws_access_key_id"], "SECRET_ACCESS_KEY": keys["aws_secret_access_key"]}


def roundtrip(client: Any) -> None:
    """A real authenticated call: write and read back a parameter."""
    name, value = f"/clients/{canary('p')}", canary()
    client.put_parameter(Name=name, Value=value, Type="String")
    assert client.get_parameter(Name=name)["Parameter"]["Value"] == value


def empty_chain() -> Chain:
    return Chain([EnvSource(environ={})], cache_ttl=0)


def test_explicit_credentials(moto: MotoServer) -> None:
    keys = moto.iam_user(["ssm:*"])
    moto.enforce_iam()
    client = aws_client(
        "ssm", credentials=prefect1(keys), endpoint_url=moto.url, region_name=REGION, chain=empty_chain()
    )
    roundtrip(client)
    explanation = explain_client("aws", credentials=prefect1(keys), region_name=REGION, chain=empty_chain())
    assert explanation.origins["credentials"] == "explicit"
    assert explanation.origins["region_name"] == "explicit"
    assert keys["aws_secret_access_key"] not in str(explanation)


def test_aws_credentials_env_var_json_through_the_chain(moto: MotoServer) -> None:
    keys = moto.iam_user(["ssm:*"])
    moto.enforce_iam()  # the process's AWS_ACCESS_KEY_ID is now rejected: only the chain's keys work
    chain = Chain([EnvSource(environ={"AWS_CREDENTIALS": json.dumps(prefect1(keys))})], cache_ttl=0)
    roundtrip(aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=chain))
    assert explain_client("aws", chain=chain).origins["credentials"] == "chain: env (AWS_CREDENTIALS)"


def test_aws_credentials_secret_in_openbao(moto: MotoServer, openbao: OpenBao) -> None:
    keys = moto.iam_user(["ssm:*"])
    path = f"clients/{canary('aws')}"
    openbao.put(path, keys)
    vault = VaultSource(url=openbao.url, token="CLIENTS_VAULT_TOKEN")
    chain = Chain([vault, EnvSource(environ={"CLIENTS_VAULT_TOKEN": openbao.root_token})], cache_ttl=0)
    moto.enforce_iam()
    reference = f"vault://secret/{path}"
    roundtrip(
        aws_client("ssm", endpoint_url=moto.url, region_name=REGION, credential_name=reference, chain=chain)
    )
    origin = explain_client("aws", credential_name=reference, chain=chain).origins["credentials"]
    assert origin == f"chain: vault ({reference})"


def test_boto3_default_when_nothing_else_has_them(moto: MotoServer) -> None:
    # moto's fixture puts made-up keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: boto3's own env provider.
    roundtrip(aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=empty_chain()))
    assert explain_client("aws", chain=empty_chain()).origins["credentials"] == "native default (boto3: env)"


def test_wrong_shape_names_the_expected_keys_not_the_values() -> None:
    secret = canary()
    with pytest.raises(ConfigError) as caught:
        aws_session({"ACCESS_KEY": "AKIDEXAMPLE", "password": secret}, chain=empty_chain())
    assert "ACCESS_KEY and SECRET_ACCESS_KEY" in str(caught.value)
    assert secret not in str(caught.value)


def test_a_configured_credential_name_nothing_has_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.env]\ntype = "env"\n[clients.aws]\ncredentials = "PROD_AWS_CREDS"\n')
    chain = Chain.from_config(config, environ={})
    with pytest.raises(ConfigError, match="PROD_AWS_CREDS"):
        aws_session(chain=chain)


def test_clients_table_settings_and_origins(tmp_path: Path, moto: MotoServer) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text(
        '[sources.env]\ntype = "env"\n'
        f'[clients.aws]\nregion_name = "eu-west-1"\nendpoint_url = "{moto.url}"\n'
    )
    chain = Chain.from_config(config, environ={})
    client = aws_client("ssm", chain=chain)
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == moto.url
    origins = explain_client("aws", chain=chain).origins
    assert origins["region_name"] == "[clients.aws]"
    assert origins["endpoint_url"] == "[clients.aws]"


def test_second_call_returns_the_same_client_and_threads_build_one(moto: MotoServer) -> None:
    chain = empty_chain()
    first = aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=chain)
    assert aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=chain) is first
    clear()
    barrier, results = threading.Barrier(32), []
    lock = threading.Lock()

    def ask() -> None:
        barrier.wait()
        client = aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=chain)
        with lock:
            results.append(client)

    threads = [threading.Thread(target=ask) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in results}) == 1
    assert results[0] is not first


def test_other_settings_make_another_client(moto: MotoServer) -> None:
    chain = empty_chain()
    one = aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=chain)
    other = aws_client("ssm", endpoint_url=moto.url, region_name="eu-west-1", chain=chain)
    assert one is not other


def test_expiring_credentials_are_refreshed_through_the_chain(moto: MotoServer) -> None:
    old_keys, new_keys = moto.iam_user(["ssm:*"]), moto.iam_user(["ssm:*"])
    soon = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    later = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    environ = {"AWS_CREDENTIALS": json.dumps({**prefect1(old_keys), "Expiration": soon})}
    chain = Chain([EnvSource(environ=environ)], cache_ttl=300)
    session = aws_session(region_name=REGION, chain=chain)
    # The secret is rotated where the chain reads it; the old value is still cached by the chain.
    environ["AWS_CREDENTIALS"] = json.dumps({**prefect1(new_keys), "Expiration": later})
    frozen = session.get_credentials().get_frozen_credentials()  # within botocore's refresh window
    assert frozen.access_key == new_keys["aws_access_key_id"]
    assert session.get_credentials().method == "authchain"
    moto.enforce_iam()
    roundtrip(session.client("ssm", endpoint_url=moto.url))


def test_client_arguments_are_told_apart_by_value_not_by_address(moto: MotoServer) -> None:
    from botocore.config import Config

    chain = empty_chain()

    def build(**kwargs: Any) -> Any:
        return aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=chain, **kwargs)

    short = build(config=Config(connect_timeout=1))
    assert build(config=Config(connect_timeout=1)) is short, "an equal Config: the same client"
    long = build(config=Config(connect_timeout=99))
    assert long is not short
    assert long.meta.config.connect_timeout == 99

    with pytest.raises(Unfingerprintable):  # only its address describes it: never a cache key
        fingerprint("aws-client", {"kwargs": {"thing": object()}})


def test_explicit_expiring_credentials_do_not_share_a_session(moto: MotoServer) -> None:
    first, second = moto.iam_user(["ssm:*"]), moto.iam_user(["ssm:*"])
    later = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    sessions = [
        aws_session({**prefect1(keys), "Expiration": later}, region_name=REGION, chain=empty_chain())
        for keys in (first, second)
    ]
    assert sessions[0] is not sessions[1]
    found = [session.get_credentials().get_frozen_credentials().access_key for session in sessions]
    assert found == [first["aws_access_key_id"], second["aws_access_key_id"]]


def test_explain_names_the_profile_from_the_clients_table(tmp_path: Path) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.env]\ntype = "env"\n[clients.aws]\nprofile_name = "reporting"\n')
    chain = Chain.from_config(config, environ={})
    # boto3 is asked with that profile, which does not exist on this machine.
    assert explain_client("aws", chain=chain).origins["credentials"] == (
        "native default (boto3: unavailable: ProfileNotFound)"
    )
