"""AWS Secrets Manager and SSM Parameter Store sources against moto's real HTTP server.

Every request goes to moto on 127.0.0.1 (``tests/servers/moto_server.py`` also
sets ``AWS_ENDPOINT_URL`` to it and clears every other ``AWS_*`` variable), or
to the counting proxy in front of it. Access denied is produced by moto's own
IAM layer (``/moto-api/reset-auth`` turns policy checks on; users and policies
are created through moto's IAM API). The proxy injects only what moto cannot
show: throttling and 5xx answers, resets, hangs.
"""

from __future__ import annotations

import json
import pickle
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3", reason="needs the aws extra")
pytest.importorskip("moto", reason="needs moto[server]")

from authchain import BackendError, Chain, ConfigError, SecretNotFound, SecretValue
from authchain._registry import load_source_class
from authchain.backends.aws.source import (
    CHUNK_WORKERS,
    AWSParameterStoreSource,
    AWSSecretsManagerSource,
    ParameterKey,
    SecretsManagerKey,
)
from authchain.backends.env.source import EnvSource
from authchain.refs import SecretRef
from authchain.sources.base import Found, NotFound, Source
from authchain.testing import canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.proxy import ProxiedRequest, TCPProxy

OTHER_REGION = "eu-west-1"
SM = "secretsmanager."
SSM = "AmazonSSM."


def target(operation: str) -> tuple[str, str]:
    """The ``X-Amz-Target`` header of one API call, for ``proxy.count(header=...)``."""
    return ("X-Amz-Target", operation)


def calls(proxy: TCPProxy, operation: str) -> list[ProxiedRequest]:
    return [r for r in list(proxy.requests) if r.header("X-Amz-Target") == operation]


def dead_endpoint() -> str:
    """An http:// URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
def sources() -> Iterator[list[Source]]:
    """Sources made by a test, closed at its end."""
    made: list[Source] = []
    yield made
    for source in made:
        source.close()


@pytest.fixture
def make_sm(moto: MotoServer, sources: list[Source]) -> Callable[..., AWSSecretsManagerSource]:
    def make(**settings: Any) -> AWSSecretsManagerSource:
        settings.setdefault("region", REGION)
        settings.setdefault("endpoint_url", moto.url)
        settings.setdefault("timeout", 5.0)
        source = AWSSecretsManagerSource(**settings)
        sources.append(source)
        return source

    return make


@pytest.fixture
def make_ssm(moto: MotoServer, sources: list[Source]) -> Callable[..., AWSParameterStoreSource]:
    def make(**settings: Any) -> AWSParameterStoreSource:
        settings.setdefault("region", REGION)
        settings.setdefault("endpoint_url", moto.url)
        settings.setdefault("timeout", 5.0)
        source = AWSParameterStoreSource(**settings)
        sources.append(source)
        return source

    return make


@pytest.fixture
def sm(moto: MotoServer) -> Any:
    return moto.client("secretsmanager")


@pytest.fixture
def ssm(moto: MotoServer) -> Any:
    return moto.client("ssm")


def chain_with_keys(source: Source, keys: dict[str, str], **options: Any) -> Chain:
    """A chain whose env source holds ``AWS_CREDENTIALS`` (Prefect 1 shape) for ``source``."""
    prefect1 = {"ACCESS_KEY": keys["aws_access_key_id"], "SECRET_ACCESS_KEY": keys["aws_secret_access_key"]}
    env = EnvSource(environ={"AWS_CREDENTIALS": json.dumps(prefect1)})
    options.setdefault("cache_ttl", 0)
    return Chain([source, env], **options)


# -- the contract ---------------------------------------------------------------------------


class TestSecretsManagerContract(SourceContractTests):
    @pytest.fixture
    def source(self, make_sm: Callable[..., AWSSecretsManagerSource]) -> Source:
        return make_sm(name="aws-sm-test", prefix="contract/")

    @pytest.fixture
    def seed(self, sm: Any) -> Seed:
        def put(name: str, value: str) -> None:
            sm.create_secret(Name=f"contract/{name}", SecretString=value)

        return put


class TestParameterStoreContract(SourceContractTests):
    @pytest.fixture
    def source(self, make_ssm: Callable[..., AWSParameterStoreSource]) -> Source:
        return make_ssm(path_prefix="/contract")

    @pytest.fixture
    def seed(self, ssm: Any) -> Seed:
        def put(name: str, value: str) -> None:
            ssm.put_parameter(Name=f"/contract/{name}", Value=value, Type="SecureString")

        return put


class TestParameterStoreLoadPathContract(TestParameterStoreContract):
    @pytest.fixture
    def source(self, make_ssm: Callable[..., AWSParameterStoreSource]) -> Source:
        return make_ssm(name="ssm-path", path_prefix="/contract", load_path=True)


# -- registration, import, settings ------------------------------------------------------------


def test_types_are_registered() -> None:
    assert load_source_class("aws-sm") is AWSSecretsManagerSource
    assert load_source_class("aws-ssm") is AWSParameterStoreSource
    assert AWSSecretsManagerSource.rank == AWSParameterStoreSource.rank == 100
    assert AWSSecretsManagerSource.extra == AWSParameterStoreSource.extra == "aws"


def test_module_import_loads_no_boto3(tmp_path: Path) -> None:
    code = (
        "import sys, authchain.backends.aws.source; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


def test_missing_boto3_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    source = AWSSecretsManagerSource(region=REGION)
    for module in ("boto3", "botocore"):  # what an environment without the extra looks like
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError, match=r"pip install 'authchain\[aws\]'"):
        source.get(source.key_for("DB_PASSWORD"))


@pytest.mark.parametrize(
    ("cls", "settings", "message"),
    [
        (AWSSecretsManagerSource, {"region": "Mars"}, "region must look like"),
        (AWSSecretsManagerSource, {"endpoint_url": "127.0.0.1:4566"}, "endpoint_url must start with"),
        (AWSSecretsManagerSource, {"version_stage": "bad stage"}, "version_stage"),
        (AWSSecretsManagerSource, {"credentials": "aws-sm://"}, "malformed|not a reference|location"),
        (AWSParameterStoreSource, {"path_prefix": "/app//prod"}, "empty segment"),
        (AWSParameterStoreSource, {"path_prefix": "app/../prod"}, r"'\.\.' segment"),
        (AWSParameterStoreSource, {"load_path": True}, "load_path needs a path_prefix"),
    ],
)
def test_bad_settings_are_config_errors(cls: type[Source], settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cls(**settings)


def test_config_file_builds_both_sources(moto: MotoServer, sm: Any, ssm: Any, tmp_path: Path) -> None:
    secret, parameter = canary(), canary()
    sm.create_secret(Name="app/DB_PASSWORD", SecretString=secret)
    ssm.put_parameter(Name="/app/API_TOKEN", Value=parameter, Type="SecureString")
    config = tmp_path / "authchain.toml"
    config.write_text(
        f"""
[sources.sm]
type = "aws-sm"
region = "{REGION}"
endpoint_url = "{moto.url}"
prefix = "app/"
timeout = 2

[sources.params]
type = "aws-ssm"
region = "{REGION}"
endpoint_url = "{moto.url}"
path_prefix = "/app"

[sources.env]
type = "env"
"""
    )
    with Chain.from_config(config) as chain:
        assert [s.type for s in chain.sources] == ["aws-sm", "aws-ssm", "env"]
        assert chain.resolve("DB_PASSWORD").get_secret_value() == secret
        assert chain.resolve("API_TOKEN").get_secret_value() == parameter
        settings = chain.source("sm").settings()
        assert settings["prefix"] == "app/"
        assert settings["timeout"] == 2.0
        assert [report.status for report in chain.check()] == ["ok", "ok", "ok"]


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.sm]\ntype = "aws-sm"\nregoin = "us-east-1"\n')
    with pytest.raises(ConfigError, match=r"regoin.*did you mean 'region'"):
        Chain.from_config(config)


def test_no_endpoint_url_still_only_reaches_the_local_server(moto: MotoServer, sm: Any) -> None:
    """The session points AWS_ENDPOINT_URL at moto: a default source cannot reach AWS."""
    value = canary()
    sm.create_secret(Name="DEFAULT_SOURCE", SecretString=value)
    with Chain([], cache_ttl=0) as chain:  # a reference gets a default aws-sm instance
        assert chain.resolve("aws-sm://DEFAULT_SOURCE").get_secret_value() == value


# -- keys and references (pure) -----------------------------------------------------------------


def test_secrets_manager_keys() -> None:
    source = AWSSecretsManagerSource(region=REGION, prefix="app/prod/")
    assert source.key_for("DB_PASSWORD") == SecretsManagerKey("app/prod/DB_PASSWORD", "AWSCURRENT")
    arn = f"arn:aws:secretsmanager:{OTHER_REGION}:123456789012:secret:app/db-AbCdEf"

    def ref(text: str) -> tuple[Any, str | None]:
        return source.key_for_ref(SecretRef.parse(text))

    # References ignore the prefix; the ARN's region wins over ?region=.
    assert ref(f"aws-sm://{arn}?region=us-west-2#password") == (
        SecretsManagerKey(arn, "AWSCURRENT", None, OTHER_REGION),
        "password",
    )
    assert ref("aws-sm://db?region=us-west-2") == (
        SecretsManagerKey("db", "AWSCURRENT", None, "us-west-2"),
        None,
    )
    assert ref(f"aws-sm://db?region={REGION}")[0] == SecretsManagerKey("db")  # the source's own region
    assert ref("aws-sm://db?stage=AWSPREVIOUS")[0] == SecretsManagerKey("db", "AWSPREVIOUS")
    version = "0123456789abcdef0123456789abcdef"
    assert ref(f"aws-sm://db?version_id={version}")[0] == SecretsManagerKey("db", None, version)
    assert source.describe_key(ref(f"aws-sm://db?stage=AWSPREVIOUS&region={OTHER_REGION}")[0]) == (
        f"db (AWSPREVIOUS, in {OTHER_REGION})"
    )


def test_parameter_store_keys() -> None:
    source = AWSParameterStoreSource(region=REGION, path_prefix="/app/prod/")
    assert source.key_for("DB_PASSWORD") == ParameterKey("/app/prod/DB_PASSWORD")
    assert AWSParameterStoreSource().key_for("DB_PASSWORD") == ParameterKey("DB_PASSWORD")
    assert AWSParameterStoreSource(path_prefix="/").key_for("X") == ParameterKey("/X")

    def ref(text: str) -> tuple[Any, str | None]:
        return source.key_for_ref(SecretRef.parse(text))

    assert ref("aws-ssm:///other/NAME#user") == (ParameterKey("/other/NAME"), "user")
    assert ref("aws-ssm:///other/NAME:3")[0] == ParameterKey("/other/NAME", ":3")
    assert ref("aws-ssm:///other/NAME?version=3")[0] == ParameterKey("/other/NAME", ":3")
    assert ref("aws-ssm:///other/NAME?label=blue")[0] == ParameterKey("/other/NAME", ":blue")
    assert ref(f"aws-ssm:///other/NAME?region={OTHER_REGION}")[0] == ParameterKey(
        "/other/NAME", "", OTHER_REGION
    )
    assert source.describe_key(ParameterKey("/x", ":3", OTHER_REGION)) == f"/x:3 (in {OTHER_REGION})"


# -- Secrets Manager: values ------------------------------------------------------------------------


def test_string_secret(make_sm: Callable[..., AWSSecretsManagerSource], sm: Any) -> None:
    value = canary()
    version = sm.create_secret(Name="DB_PASSWORD", SecretString=value)["VersionId"]
    source = make_sm()
    result = source.get(source.key_for("DB_PASSWORD"))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value
    assert result.detail == f"secret DB_PASSWORD (version {version})"


def test_binary_secret_comes_back_as_bytes(make_sm: Callable[..., AWSSecretsManagerSource], sm: Any) -> None:
    value = canary().encode() + b"\x00\xff\x10"
    sm.create_secret(Name="KEYTAB", SecretBinary=value)
    source = make_sm()
    with Chain([source], cache_ttl=0) as chain:
        assert chain.resolve("KEYTAB").get_secret_value() == value
        many = chain.resolve_many(["KEYTAB", "aws-sm://KEYTAB?stage=AWSCURRENT"])
    assert {type(v.get_secret_value()) for v in many.values()} == {bytes}


def test_json_field_reference(make_sm: Callable[..., AWSSecretsManagerSource], sm: Any) -> None:
    password, other = canary(), canary()
    sm.create_secret(Name="app/db", SecretString=json.dumps({"username": "app", "password": password}))
    sm.create_secret(Name="app/plain", SecretString=other)
    with Chain([make_sm()], cache_ttl=0) as chain:
        assert chain.resolve("aws-sm://app/db#password").get_secret_value() == password
        with pytest.raises(SecretNotFound) as missing:
            chain.resolve("aws-sm://app/db#port")
        assert "app/db has no field 'port'" in str(missing.value)
        assert_not_leaked(password, str(missing.value), "SecretNotFound")
        with pytest.raises(BackendError, match="app/plain is not valid JSON") as invalid:
            chain.resolve("aws-sm://app/plain#password")
        assert_not_leaked(other, str(invalid.value), "BackendError")


def test_arn_reference_reads_the_arn_region(
    make_sm: Callable[..., AWSSecretsManagerSource], moto: MotoServer
) -> None:
    value = canary()
    arn = moto.client("secretsmanager", region=OTHER_REGION).create_secret(Name="far/db", SecretString=value)[
        "ARN"
    ]
    source = make_sm()  # configured for us-east-1, where moto has no such secret
    with Chain([source], cache_ttl=0) as chain:
        assert chain.resolve(f"aws-sm://{arn}?region={REGION}").get_secret_value() == value
        assert chain.resolve(f"aws-sm://far/db?region={OTHER_REGION}").get_secret_value() == value
        assert chain.resolve("aws-sm://far/db", default=None) is None
        # ARNs batch too (the answer names the secret by ARN as well as by name).
        both = chain.resolve_many([f"aws-sm://{arn}", f"aws-sm://far/db?region={OTHER_REGION}"])
    assert {v.get_secret_value() for v in both.values()} == {value}


def test_awsprevious_after_rotation(make_sm: Callable[..., AWSSecretsManagerSource], sm: Any) -> None:
    old, new = canary("old"), canary("new")
    first = sm.create_secret(Name="ROTATED", SecretString=old)["VersionId"]
    with Chain([make_sm()], cache_ttl=0) as chain:
        with pytest.raises(SecretNotFound, match=r"no secret ROTATED \(AWSPREVIOUS\)"):
            chain.resolve("aws-sm://ROTATED?stage=AWSPREVIOUS")
        sm.put_secret_value(SecretId="ROTATED", SecretString=new)
        assert chain.resolve("ROTATED").get_secret_value() == new
        assert chain.resolve("aws-sm://ROTATED?stage=AWSPREVIOUS").get_secret_value() == old
        assert chain.resolve(f"aws-sm://ROTATED?version_id={first}").get_secret_value() == old
        many = chain.resolve_many(["ROTATED", "aws-sm://ROTATED?stage=AWSPREVIOUS"])
    assert many["ROTATED"].get_secret_value() == new
    assert many["aws-sm://ROTATED?stage=AWSPREVIOUS"].get_secret_value() == old
    previous = make_sm(version_stage="AWSPREVIOUS")
    result = previous.get(previous.key_for("ROTATED"))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == old


def test_prefix_maps_names(make_sm: Callable[..., AWSSecretsManagerSource], sm: Any) -> None:
    prefixed, bare = canary(), canary()
    sm.create_secret(Name="team/prod/DB_PASSWORD", SecretString=prefixed)
    sm.create_secret(Name="API_KEY", SecretString=bare)
    with Chain([make_sm(prefix="team/prod/")], cache_ttl=0) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == prefixed
        with pytest.raises(SecretNotFound, match="no secret team/prod/API_KEY"):
            chain.resolve("API_KEY")
        assert chain.resolve("aws-sm://API_KEY").get_secret_value() == bare  # references skip the prefix


def test_not_found_names_the_secret(make_sm: Callable[..., AWSSecretsManagerSource]) -> None:
    source = make_sm(prefix="app/")
    assert source.get(source.key_for("NOPE")) == NotFound("no secret app/NOPE")
    assert source.get(source.key_for("has space")) == NotFound(
        "app/has space is not a valid secret name, so no secret has it"
    )


def test_secret_marked_for_deletion_is_not_found(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any
) -> None:
    sm.create_secret(Name="GONE", SecretString=canary())
    sm.delete_secret(SecretId="GONE", RecoveryWindowInDays=7)
    source = make_sm()
    expected = NotFound("secret GONE is marked for deletion")
    assert source.get(source.key_for("GONE")) == expected
    many = source.get_many([source.key_for("GONE"), source.key_for("MISSING")])
    assert many == {
        source.key_for("GONE"): expected,
        source.key_for("MISSING"): NotFound("no secret MISSING"),
    }


# -- Secrets Manager: batching ------------------------------------------------------------------------


def test_resolve_many_45_names_3_missing_makes_3_batch_requests(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto_proxy: TCPProxy
) -> None:
    names = [f"BATCH_{i:02d}" for i in range(45)]
    missing = {names[3], names[22], names[44]}
    values = {name: canary() for name in names if name not in missing}
    for name, value in values.items():
        sm.create_secret(Name=f"svc/{name}", SecretString=value)
    moto_proxy.clear()
    with Chain([make_sm(prefix="svc/", endpoint_url=moto_proxy.url)], cache_ttl=0) as chain:
        got = chain.resolve_many(names, default=None)
        with pytest.raises(SecretNotFound) as caught:
            chain.resolve_many(names)
    batches = calls(moto_proxy, SM + "BatchGetSecretValue")
    assert len(batches) == 3 * 2  # the second resolve_many made the same three calls
    sizes = [len(json.loads(r.body)["SecretIdList"]) for r in batches[:3]]
    assert sorted(sizes, reverse=True) == [20, 20, 5], "chunks of AWS's limit (sent concurrently)"
    assert moto_proxy.count(header=target(SM + "GetSecretValue")) == 0
    assert {name for name, value in got.items() if value is None} == missing
    assert {name: value.get_secret_value() for name, value in got.items() if value is not None} == values
    assert set(caught.value.missing) == missing
    assert f"no secret svc/{names[3]}" in str(caught.value)


@pytest.mark.parametrize("service", ["aws-sm", "aws-ssm"])
def test_batch_chunks_are_sent_at_once_not_one_after_another(
    service: str,
    make_sm: Callable[..., AWSSecretsManagerSource],
    make_ssm: Callable[..., AWSParameterStoreSource],
    sm: Any,
    ssm: Any,
    moto_proxy: TCPProxy,
) -> None:
    """Each request waits 1 s at the proxy: sent one after another, the chunks would
    arrive at least 1 s apart; sent at once, they all arrive before any is answered."""
    run = uuid.uuid4().hex[:8]
    names = [f"AT_ONCE_{run}_{i:02d}" for i in range(45)]
    if service == "aws-sm":
        for name in names:
            sm.create_secret(Name=name, SecretString=canary())
        source: Any = make_sm(endpoint_url=moto_proxy.url)
        operation = SM + "BatchGetSecretValue"
    else:
        for name in names:
            ssm.put_parameter(Name=f"/{run}/{name}", Value=canary(), Type="SecureString")
        source = make_ssm(path_prefix=f"/{run}", endpoint_url=moto_proxy.url)
        operation = SSM + "GetParameters"
    with Chain([source], cache_ttl=0) as chain:
        chain.resolve_many(names[:1])  # the client exists and has its credentials
        moto_proxy.clear()
        moto_proxy.latency = 1.0
        got = chain.resolve_many(names)
    moto_proxy.latency = 0
    assert len(got) == len(names)
    arrivals = sorted(request.arrived for request in calls(moto_proxy, operation))
    assert len(arrivals) == (3 if service == "aws-sm" else 5)  # chunks of 20 / of 10
    at_once = arrivals[:CHUNK_WORKERS]
    assert at_once[-1] - at_once[0] < 0.9, "the first chunks were all on the wire before any answer"
    if len(arrivals) > CHUNK_WORKERS:
        assert arrivals[CHUNK_WORKERS] - arrivals[0] >= 0.9, "no more than CHUNK_WORKERS at a time"


def test_batch_reads_other_stages_one_by_one(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto_proxy: TCPProxy
) -> None:
    for name in ("A", "B", "C"):
        sm.create_secret(Name=name, SecretString=canary())
        sm.put_secret_value(SecretId=name, SecretString=canary())
    moto_proxy.clear()
    source = make_sm(endpoint_url=moto_proxy.url)
    with Chain([source], cache_ttl=0) as chain:
        chain.resolve_many(["A", "B", "aws-sm://C?stage=AWSPREVIOUS"])
    assert moto_proxy.count(header=target(SM + "BatchGetSecretValue")) == 1
    assert moto_proxy.count(header=target(SM + "GetSecretValue")) == 1


def test_batch_without_permission_falls_back_to_single_reads(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto: MotoServer, moto_proxy: TCPProxy
) -> None:
    values = {f"FALLBACK_{i}": canary() for i in range(4)}
    for name, value in values.items():
        sm.create_secret(Name=name, SecretString=value)
    keys = moto.iam_user(["secretsmanager:GetSecretValue"])  # no secretsmanager:BatchGetSecretValue
    moto.enforce_iam()
    moto_proxy.clear()
    source = make_sm(endpoint_url=moto_proxy.url, credentials="AWS_CREDENTIALS")
    with chain_with_keys(source, keys) as chain:
        got = chain.resolve_many(list(values))
        assert {name: v.get_secret_value() for name, v in got.items()} == values
        assert moto_proxy.count(header=target(SM + "BatchGetSecretValue")) == 1
        assert moto_proxy.count(header=target(SM + "GetSecretValue")) == 4
        chain.resolve_many(list(values))  # the source remembers: no second batch attempt
    assert moto_proxy.count(header=target(SM + "BatchGetSecretValue")) == 1
    assert moto_proxy.count(header=target(SM + "GetSecretValue")) == 8


# -- credentials ------------------------------------------------------------------------------------


def test_credentials_come_through_the_chain(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto: MotoServer, moto_proxy: TCPProxy
) -> None:
    value = canary()
    sm.create_secret(Name="VIA_CHAIN", SecretString=value)
    keys = moto.iam_user(["secretsmanager:GetSecretValue"])
    moto.enforce_iam()  # the session's made-up keys would now be rejected
    source = make_sm(endpoint_url=moto_proxy.url, credentials="AWS_CREDENTIALS")
    with chain_with_keys(source, keys) as chain:
        assert chain.resolve("VIA_CHAIN").get_secret_value() == value
    authorization = calls(moto_proxy, SM + "GetSecretValue")[0].header("Authorization") or ""
    assert f"Credential={keys['aws_access_key_id']}/" in authorization


def test_boto3_key_names_and_a_session_token_are_accepted(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto_proxy: TCPProxy
) -> None:
    sm.create_secret(Name="BOTO_SHAPE", SecretString=canary())
    token = canary("token")
    credential = {
        "aws_access_key_id": "AKIABOTO3SHAPE000000",
        "aws_secret_access_key": canary(),
        "aws_session_token": token,
    }
    source = make_sm(endpoint_url=moto_proxy.url, credentials="env://CREDS_JSON")
    with Chain([source, EnvSource(environ={"CREDS_JSON": json.dumps(credential)})], cache_ttl=0) as chain:
        assert isinstance(chain.resolve("BOTO_SHAPE").get_secret_value(), str)
    request = calls(moto_proxy, SM + "GetSecretValue")[0]
    assert "Credential=AKIABOTO3SHAPE000000/" in (request.header("Authorization") or "")
    assert request.header("X-Amz-Security-Token") == token


@pytest.mark.parametrize(
    "credential",
    [
        '{"user": "x", "password": "y"}',
        '{"ACCESS_KEY": "AKIAONLYHALF0000000"}',
        '["not", "an", "object"]',
        "not json at all",
    ],
)
def test_wrong_credential_shape_names_the_expected_keys(
    make_sm: Callable[..., AWSSecretsManagerSource], credential: str
) -> None:
    planted = canary()
    text = credential.replace('"y"', json.dumps(planted)).replace("all", planted)
    source = make_sm(credentials="AWS_CREDENTIALS")
    with (
        Chain([source, EnvSource(environ={"AWS_CREDENTIALS": text})], cache_ttl=0) as chain,
        pytest.raises(ConfigError, match="ACCESS_KEY and SECRET_ACCESS_KEY") as caught,
    ):
        chain.resolve("ANYTHING")
    assert "AWS_CREDENTIALS" in str(caught.value)
    assert_not_leaked(planted, str(caught.value), "ConfigError")


def test_missing_credential_is_a_config_error(make_sm: Callable[..., AWSSecretsManagerSource]) -> None:
    source = make_sm(credentials="AWS_CREDENTIALS")  # configured, but nothing has it
    with (
        Chain([source, EnvSource(environ={})], cache_ttl=0) as chain,
        pytest.raises(ConfigError, match="credentials 'AWS_CREDENTIALS' were not found by any other source"),
    ):
        chain.resolve("ANYTHING")


def test_without_credentials_boto3_finds_its_own(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any
) -> None:
    value = canary()
    sm.create_secret(Name="DEFAULT_KEYS", SecretString=value)
    source = make_sm()  # boto3's provider chain: the session's made-up AWS_ACCESS_KEY_ID
    with Chain([source], cache_ttl=0) as chain:
        assert chain.resolve("DEFAULT_KEYS").get_secret_value() == value
        assert "authenticated with boto3 (env)" in chain.check()[0].detail


def test_rejected_credentials_are_resolved_again_next_time(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto: MotoServer
) -> None:
    value = canary()
    sm.create_secret(Name="ROTATING_KEYS", SecretString=value)
    good = moto.iam_user(["secretsmanager:GetSecretValue"])
    stale = {**good, "aws_access_key_id": "AKIAEXPIREDKEY000000"}
    environ = {"AWS_CREDENTIALS": json.dumps(stale)}
    moto.enforce_iam()
    source = make_sm(credentials="AWS_CREDENTIALS")
    with Chain([source, EnvSource(environ=environ)], cache_ttl=0) as chain:
        with pytest.raises(BackendError, match="credentials were rejected"):
            chain.resolve("ROTATING_KEYS")
        environ["AWS_CREDENTIALS"] = json.dumps(good)  # the credential was rotated where it lives
        assert chain.resolve("ROTATING_KEYS").get_secret_value() == value


class CountingEnviron(dict[str, str]):
    """A plain mapping that counts reads: the env source's ``environ`` seam."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads = 0
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            self.reads += 1
        time.sleep(0.02)  # widen the window in which a second client could be built
        return super().get(key, default)


def test_one_client_per_source_built_once_under_concurrency(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto: MotoServer
) -> None:
    names = [f"CONCURRENT_{i}" for i in range(8)]
    for name in names:
        sm.create_secret(Name=name, SecretString=canary())
    keys = moto.iam_user(["secretsmanager:GetSecretValue"])
    environ = CountingEnviron({"AWS_CREDENTIALS": json.dumps(keys)})
    source = make_sm(credentials="AWS_CREDENTIALS")
    Chain([source, EnvSource(environ=environ)], cache_ttl=0)  # binds the source to its chain
    built: list[Any] = []
    new_client = source._new_client

    def counting_new_client(*args: Any) -> Any:
        built.append(new_client(*args))
        return built[-1]

    source._new_client = counting_new_client  # type: ignore[method-assign]
    results: list[Any] = []
    barrier = threading.Barrier(len(names))

    def read(name: str) -> None:
        barrier.wait()
        results.append(source.get(source.key_for(name)))

    threads = [threading.Thread(target=read, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(isinstance(result, Found) for result in results)
    assert len(results) == len(names)
    assert len(built) == 1, "one client was built"
    # The keys are resolved with no lock held (a lock held while resolving
    # deadlocked two sources bootstrapping through each other: see
    # tests/hardening/test_lock_order.py), so callers racing on a cold source
    # may each read them; the chain's single flight still shares remote lookups.
    assert 1 <= environ.reads <= len(names)


def test_pickle_holds_no_client_and_no_credentials(
    make_sm: Callable[..., AWSSecretsManagerSource],
    sm: Any,
    moto: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = canary()
    sm.create_secret(Name="PICKLED", SecretString=value)
    keys = moto.iam_user([])
    source = make_sm(credentials="AWS_CREDENTIALS")
    with chain_with_keys(source, keys) as chain:
        assert chain.resolve("PICKLED").get_secret_value() == value
        data = pickle.dumps(source)
    assert_not_leaked(keys["aws_secret_access_key"], data, "pickle.dumps(source)")
    assert_not_leaked(value, data, "pickle.dumps(source)")
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    # Where it is unpickled (a worker), the credential is resolved again from that
    # process's chain: here the env source now reads the real environment.
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps(keys))
    result = clone.get(clone.key_for("PICKLED"))
    assert isinstance(result, Found)
    clone.close()


# -- access denied (moto's IAM) -------------------------------------------------------------------------


def test_access_denied_is_a_backend_error_and_never_retried(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto: MotoServer, moto_proxy: TCPProxy
) -> None:
    sm.create_secret(Name="FORBIDDEN", SecretString=canary())
    keys = moto.iam_user(["ssm:GetParameter"])  # nothing in Secrets Manager
    moto.enforce_iam()
    source = make_sm(endpoint_url=moto_proxy.url, credentials="AWS_CREDENTIALS")
    with (
        chain_with_keys(source, keys, retries=3, sleep=no_sleep) as chain,
        pytest.raises(BackendError, match=r"access denied to FORBIDDEN \(AccessDenied") as caught,
    ):
        chain.resolve("FORBIDDEN")
    assert caught.value.access_denied
    assert not caught.value.retryable
    assert caught.value.source == source.name
    assert moto_proxy.count(header=target(SM + "GetSecretValue")) == 1


def test_rejected_credentials_are_access_denied(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto: MotoServer
) -> None:
    sm.create_secret(Name="ANY", SecretString=canary())
    moto.enforce_iam()  # the session's made-up keys are unknown to moto's IAM
    source = make_sm()
    with pytest.raises(BackendError, match=r"credentials were rejected .InvalidClientTokenId") as caught:
        source.get(source.key_for("ANY"))
    assert caught.value.access_denied
    assert source.check().status == "unauthenticated"


def test_check_reports_ok_unauthenticated_unreachable(
    make_sm: Callable[..., AWSSecretsManagerSource],
    make_ssm: Callable[..., AWSParameterStoreSource],
    moto: MotoServer,
) -> None:
    keys = moto.iam_user(["secretsmanager:GetSecretValue", "ssm:GetParameter"])
    moto.enforce_iam()
    allowed = make_sm(credentials="AWS_CREDENTIALS")
    allowed_ssm = make_ssm(credentials="AWS_CREDENTIALS")
    env = EnvSource(environ={"AWS_CREDENTIALS": json.dumps(keys)})
    with Chain([allowed, allowed_ssm, env]) as chain:
        sm_report, ssm_report, _ = chain.check()
    assert sm_report.status == ssm_report.status == "ok"
    assert "credentials accepted (AccessDenied" in sm_report.detail  # ListSecrets is not needed to read
    assert make_sm(name="bad-keys").check().status == "unauthenticated"
    down = make_sm(endpoint_url=dead_endpoint(), timeout=1).check()
    assert (down.status, down.source) == ("unreachable", "aws-sm")
    assert make_sm(profile="no-such-profile").check().status == "misconfigured"


# -- faults the server cannot show (through the proxy) ---------------------------------------------


def test_server_down_fails_fast_with_a_retryable_backend_error(
    make_sm: Callable[..., AWSSecretsManagerSource],
) -> None:
    source = make_sm(endpoint_url=dead_endpoint(), timeout=1)
    started = time.monotonic()
    with (
        Chain([source], cache_ttl=0, retries=2, backoff=0.01) as chain,
        pytest.raises(BackendError, match=r"cannot read DB_PASSWORD: EndpointConnectionError") as caught,
    ):
        chain.resolve("DB_PASSWORD")
    assert time.monotonic() - started < 5
    assert caught.value.retryable
    assert "after 3 attempts" in str(caught.value)


def test_hanging_server_is_bounded_by_the_timeout(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto_proxy: TCPProxy
) -> None:
    sm.create_secret(Name="SLOW", SecretString=canary())
    moto_proxy.fail("hang")
    source = make_sm(endpoint_url=moto_proxy.url, timeout=0.5)
    started = time.monotonic()
    with (
        Chain([source], cache_ttl=0, retries=1, backoff=0.01) as chain,
        pytest.raises(BackendError, match="ReadTimeoutError") as caught,
    ):
        chain.resolve("SLOW")
    elapsed = time.monotonic() - started
    moto_proxy.heal()
    assert caught.value.retryable
    assert 1.0 <= elapsed < 4, "two attempts of one 0.5 s read each, and nothing more"
    assert moto_proxy.count(header=target(SM + "GetSecretValue")) == 2  # botocore itself never retried


def test_latency_below_the_timeout_is_fine(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto_proxy: TCPProxy
) -> None:
    value = canary()
    sm.create_secret(Name="LAGGY", SecretString=value)
    moto_proxy.latency = 0.2
    source = make_sm(endpoint_url=moto_proxy.url, timeout=2)
    result = source.get(source.key_for("LAGGY"))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value


def test_connection_reset_is_retried_by_the_chain(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto_proxy: TCPProxy
) -> None:
    value = canary()
    sm.create_secret(Name="RESET", SecretString=value)
    source = make_sm(endpoint_url=moto_proxy.url)
    moto_proxy.fail("reset", times=1)
    with Chain([source], cache_ttl=0, retries=2, sleep=no_sleep) as chain:
        assert chain.resolve("RESET").get_secret_value() == value
    assert moto_proxy.count(header=target(SM + "GetSecretValue")) == 2


def aws_error(status: int, code: str) -> dict[str, Any]:
    body = json.dumps({"__type": code, "message": f"injected {code}"}).encode()
    return {"status": status, "body": body, "headers": {"Content-Type": "application/x-amz-json-1.1"}}


@pytest.mark.parametrize(
    ("status", "code", "retryable", "denied"),
    [
        (400, "ThrottlingException", True, False),
        (500, "InternalServiceError", True, False),
        (503, "ServiceUnavailable", True, False),
        (400, "ExpiredTokenException", False, True),
        (400, "UnrecognizedClientException", False, True),
        (400, "AccessDeniedException", False, True),
        (400, "DecryptionFailure", False, False),
    ],
)
def test_error_answers_map_to_outcomes(
    make_sm: Callable[..., AWSSecretsManagerSource],
    moto_proxy: TCPProxy,
    status: int,
    code: str,
    retryable: bool,
    denied: bool,
) -> None:
    moto_proxy.fail("respond", **aws_error(status, code))
    source = make_sm(endpoint_url=moto_proxy.url)
    with (
        Chain([source], cache_ttl=0, retries=2, sleep=no_sleep) as chain,
        pytest.raises(BackendError, match=code) as caught,
    ):
        chain.resolve("DB_PASSWORD")
    assert (caught.value.retryable, caught.value.access_denied) == (retryable, denied)
    # Retryable: the chain's 1 + 2 attempts and no botocore retries on top; otherwise exactly one.
    assert moto_proxy.count(header=target(SM + "GetSecretValue")) == (3 if retryable else 1)


def test_throttled_batch_is_retried_whole(
    make_sm: Callable[..., AWSSecretsManagerSource], sm: Any, moto_proxy: TCPProxy
) -> None:
    values = {f"T_{i}": canary() for i in range(3)}
    for name, value in values.items():
        sm.create_secret(Name=name, SecretString=value)
    moto_proxy.fail("respond", times=1, **aws_error(400, "ThrottlingException"))
    with Chain([make_sm(endpoint_url=moto_proxy.url)], cache_ttl=0, retries=2, sleep=no_sleep) as chain:
        got = chain.resolve_many(list(values))
    assert {name: v.get_secret_value() for name, v in got.items()} == values
    assert moto_proxy.count(header=target(SM + "BatchGetSecretValue")) == 2


# -- a chain aws-sm → env ---------------------------------------------------------------------------------


def test_chain_aws_sm_then_env(make_sm: Callable[..., AWSSecretsManagerSource], sm: Any) -> None:
    in_aws, in_env, shadowed = canary(), canary(), canary()
    sm.create_secret(Name="app/BOTH", SecretString=in_aws)
    environ = {"ENV_ONLY": in_env, "BOTH": shadowed}
    with Chain([make_sm(prefix="app/"), EnvSource(environ=environ)], cache_ttl=0) as chain:
        assert chain.resolve("BOTH").get_secret_value() == in_aws
        assert chain.resolve("ENV_ONLY").get_secret_value() == in_env
        explanation = chain.explain("ENV_ONLY")
        assert [(a.source, a.outcome) for a in explanation.attempts[1:]] == [
            ("aws-sm", "not_found"),
            ("env", "found"),
        ]
        assert "no secret app/ENV_ONLY" in str(explanation)
        both = chain.explain("BOTH")
        assert both.winner is not None
        assert both.winner.source == "aws-sm"
        assert [a.source for a in both.shadowed] == ["env"]
        text = str(both)
    for value in (in_aws, in_env, shadowed):
        assert_not_leaked(value, text, "explain()")


def test_chain_stops_at_an_aws_error_unless_skipped(make_sm: Callable[..., AWSSecretsManagerSource]) -> None:
    in_env = canary()
    environ = {"DB_PASSWORD": in_env}
    down = make_sm(endpoint_url=dead_endpoint(), timeout=1)
    with (
        Chain([down, EnvSource(environ=environ)], cache_ttl=0, retries=0) as chain,
        pytest.raises(BackendError, match="aws-sm: cannot read DB_PASSWORD"),
    ):
        chain.resolve("DB_PASSWORD")  # never silently falls through to env
    skipping = make_sm(name="aws-skip", endpoint_url=dead_endpoint(), timeout=1, on_error="skip")
    with Chain([skipping, EnvSource(environ=environ)], cache_ttl=0, retries=0) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == in_env
        attempt = chain.explain("DB_PASSWORD").attempts[1]
    assert attempt.outcome == "error"
    assert "EndpointConnectionError" in attempt.detail


# -- SSM Parameter Store ------------------------------------------------------------------------------------


def test_secure_string_is_decrypted(make_ssm: Callable[..., AWSParameterStoreSource], ssm: Any) -> None:
    value = canary()
    ssm.put_parameter(Name="/app/DB_PASSWORD", Value=value, Type="SecureString")
    decrypting = make_ssm(path_prefix="/app")
    result = decrypting.get(decrypting.key_for("DB_PASSWORD"))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value
    assert result.detail == "parameter /app/DB_PASSWORD (version 1, SecureString)"
    raw = make_ssm(path_prefix="/app", with_decryption=False)
    encrypted = raw.get(raw.key_for("DB_PASSWORD"))
    assert isinstance(encrypted, Found)
    assert encrypted.value.get_secret_value() != value


def test_plain_and_list_parameters(make_ssm: Callable[..., AWSParameterStoreSource], ssm: Any) -> None:
    plain, items = canary(), [canary(), canary()]
    ssm.put_parameter(Name="PLAIN", Value=plain, Type="String")
    ssm.put_parameter(Name="LIST", Value=",".join(items), Type="StringList")
    with Chain([make_ssm()], cache_ttl=0) as chain:
        got = chain.resolve_many(["PLAIN", "LIST", "aws-ssm://PLAIN"])
    assert got["PLAIN"].get_secret_value() == got["aws-ssm://PLAIN"].get_secret_value() == plain
    assert got["LIST"].get_secret_value().split(",") == items


def test_parameter_not_found_names_it(make_ssm: Callable[..., AWSParameterStoreSource]) -> None:
    source = make_ssm(path_prefix="/app")
    assert source.get(source.key_for("NOPE")) == NotFound("no parameter /app/NOPE")
    assert source.get(ParameterKey("/app/bad name")) == NotFound(
        "/app/bad name is not a valid parameter name, so no parameter has it"
    )


def test_versions_and_labels(make_ssm: Callable[..., AWSParameterStoreSource], ssm: Any) -> None:
    first, second = canary("v1"), canary("v2")
    ssm.put_parameter(Name="/app/TOKEN", Value=first, Type="SecureString")
    ssm.put_parameter(Name="/app/TOKEN", Value=second, Type="SecureString", Overwrite=True)
    ssm.label_parameter_version(Name="/app/TOKEN", ParameterVersion=1, Labels=["blue"])
    with Chain([make_ssm(path_prefix="/app")], cache_ttl=0) as chain:
        assert chain.resolve("TOKEN").get_secret_value() == second
        for ref in (
            "aws-ssm:///app/TOKEN:1",
            "aws-ssm:///app/TOKEN?version=1",
            "aws-ssm:///app/TOKEN?label=blue",
        ):
            assert chain.resolve(ref).get_secret_value() == first, ref
        many = chain.resolve_many(["TOKEN", "aws-ssm:///app/TOKEN:1"])
        assert [v.get_secret_value() for v in many.values()] == [second, first]
        with pytest.raises(SecretNotFound, match="no parameter /app/TOKEN:9"):
            chain.resolve("aws-ssm:///app/TOKEN:9")


def test_ssm_batch_of_25_makes_3_get_parameters_requests(
    make_ssm: Callable[..., AWSParameterStoreSource], ssm: Any, moto_proxy: TCPProxy
) -> None:
    names = [f"P_{i:02d}" for i in range(25)]
    values = {name: canary() for name in names[:-2]}
    for name, value in values.items():
        ssm.put_parameter(Name=f"/batch/{name}", Value=value, Type="SecureString")
    moto_proxy.clear()
    with Chain([make_ssm(path_prefix="/batch", endpoint_url=moto_proxy.url)], cache_ttl=0) as chain:
        got = chain.resolve_many(names, default=None)
    requests = calls(moto_proxy, SSM + "GetParameters")
    assert sorted((len(json.loads(r.body)["Names"]) for r in requests), reverse=True) == [10, 10, 5]
    assert moto_proxy.count(header=target(SSM + "GetParameter")) == 0
    assert {name: v.get_secret_value() for name, v in got.items() if v is not None} == values
    assert [name for name, v in got.items() if v is None] == names[-2:]


def test_ssm_batch_without_permission_asks_one_by_one(
    make_ssm: Callable[..., AWSParameterStoreSource], ssm: Any, moto: MotoServer, moto_proxy: TCPProxy
) -> None:
    values = {f"S_{i}": canary() for i in range(3)}
    for name, value in values.items():
        ssm.put_parameter(Name=f"/p/{name}", Value=value, Type="SecureString")
    keys = moto.iam_user(["ssm:GetParameter"])  # no ssm:GetParameters
    moto.enforce_iam()
    source = make_ssm(path_prefix="/p", endpoint_url=moto_proxy.url, credentials="AWS_CREDENTIALS")
    with chain_with_keys(source, keys) as chain:
        got = chain.resolve_many(list(values))
    assert {name: v.get_secret_value() for name, v in got.items()} == values
    assert moto_proxy.count(header=target(SSM + "GetParameters")) == 1
    assert moto_proxy.count(header=target(SSM + "GetParameter")) == 3


class FakeClock:
    """The ``clock`` seam: a time that moves only when told (and pickles)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_load_path_reads_the_path_once(ssm: Any, moto: MotoServer, moto_proxy: TCPProxy) -> None:
    values = {f"L_{i:02d}": canary() for i in range(11)}
    values["nested/DEEP"] = canary()
    for name, value in values.items():
        ssm.put_parameter(Name=f"/svc/{name}", Value=value, Type="SecureString")
    outside = canary()
    ssm.put_parameter(Name="/elsewhere/X", Value=outside, Type="String")
    clock = FakeClock()
    source = AWSParameterStoreSource(
        region=REGION,
        endpoint_url=moto_proxy.url,
        path_prefix="/svc",
        load_path=True,
        load_path_ttl=30,
        clock=clock,
    )
    moto_proxy.clear()
    by_path = target(SSM + "GetParametersByPath")
    with Chain([source], cache_ttl=0) as chain:
        got = chain.resolve_many([*values, "ABSENT"], default=None)
        assert {name: v.get_secret_value() for name, v in got.items() if v is not None} == values
        assert got["ABSENT"] is None
        assert moto_proxy.count(header=by_path) == 2  # 12 parameters, pages of 10
        assert chain.resolve("L_03").get_secret_value() == values["L_03"]
        with pytest.raises(SecretNotFound, match=r"no parameter /svc/ABSENT under /svc \(load_path\)"):
            chain.resolve("ABSENT")
        assert moto_proxy.count(header=by_path) == 2  # served from the snapshot
        assert moto_proxy.count(header=target(SSM + "GetParameters")) == 0
        assert moto_proxy.count(header=target(SSM + "GetParameter")) == 0
        # Outside the path, and versions, are read as usual.
        assert chain.resolve("aws-ssm:///elsewhere/X").get_secret_value() == outside
        assert chain.resolve("aws-ssm:///svc/L_00:1").get_secret_value() == values["L_00"]
        assert moto_proxy.count(header=target(SSM + "GetParameter")) == 2
        clock.now += 31  # the snapshot is stale now
        changed = canary()
        ssm.put_parameter(Name="/svc/L_00", Value=changed, Type="SecureString", Overwrite=True)
        assert chain.resolve("L_00").get_secret_value() == changed
    assert moto_proxy.count(header=by_path) == 4
    assert_not_leaked(changed, pickle.dumps(source), "pickle.dumps(source)")
    source.close()


def test_the_credentials_setting_refuses_pasted_keys_without_echoing_them() -> None:
    secret = canary()
    pasted = json.dumps({"ACCESS_KEY": "AKIDEXAMPLE", "SECRET_ACCESS_KEY": secret})
    with pytest.raises(ConfigError, match="must be a secret name") as caught:
        AWSSecretsManagerSource(region=REGION, credentials=pasted)
    assert_not_leaked(secret, str(caught.value), "the ConfigError")


def test_one_malformed_entry_of_a_batch_is_that_secrets_error_only(moto: MotoServer, sm: Any) -> None:
    """An answer without SecretString or SecretBinary (which moto cannot be made to send)
    fails its own name; the other names of the batch still resolve."""
    run = uuid.uuid4().hex[:8]
    values = {f"B_{run}_{i}": canary() for i in range(3)}
    for name, value in values.items():
        sm.create_secret(Name=name, SecretString=value)
    broken = f"B_{run}_1"

    class DropsOnePayload(AWSSecretsManagerSource):
        def _batch_call(self, region: str | None, ids: list[str]) -> Any:
            found, errors = super()._batch_call(region, ids)
            for entry in found:
                if entry.get("Name") == broken:
                    entry.pop("SecretString", None)
            return found, errors

    source = DropsOnePayload(region=REGION, endpoint_url=moto.url, timeout=5.0)
    try:
        outcomes = source.get_many([source.key_for(name) for name in values])
    finally:
        source.close()
    by_name = {key.secret_id: outcome for key, outcome in outcomes.items()}
    assert isinstance(by_name[broken], BackendError)
    assert "neither SecretString nor SecretBinary" in str(by_name[broken])
    for name in values.keys() - {broken}:
        outcome = by_name[name]
        assert isinstance(outcome, Found)
        assert outcome.value == SecretValue(values[name])
