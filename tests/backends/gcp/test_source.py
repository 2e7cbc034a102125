"""GCPSecretManagerSource against the in-process gRPC Secret Manager (real wire protocol).

Every test talks to ``gcp_fake`` (tests/servers/gcp_fake.py) on 127.0.0.1, so
no request can reach Google; ``_no_adc`` fails any test that would look for
Application Default Credentials (which may query a metadata server).
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("google.cloud.secretmanager_v1", reason="needs the gcp extra")

import grpc
from google.api_core import exceptions as api
from google.api_core.retry import Retry

from authchain import BackendError, Chain, ConfigError
from authchain._registry import load_source_class
from authchain.backends.env.source import EnvSource
from authchain.backends.gcp.source import GCPSecretManagerSource, SecretVersionKey, classify
from authchain.sources.base import Found, NotFound
from authchain.testing import MemorySource, canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked, unique_name
from authchain.testing.gcp import FakeSecretManager
from tests.servers.gcp_fake import GCP_TEST_PROJECT as PROJECT

ACCESS = "AccessSecretVersion"


@pytest.fixture(autouse=True)
def _no_adc(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    def refuse(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("a test looked for Application Default Credentials")

    monkeypatch.setattr(google.auth, "default", refuse)


_made: list[GCPSecretManagerSource] = []


@pytest.fixture(autouse=True)
def _close_made_sources() -> Iterator[None]:
    """Every source make_source built is closed after its test (its gRPC channel with it)."""
    yield
    while _made:
        _made.pop().close()


def make_source(fake: FakeSecretManager, **settings: Any) -> GCPSecretManagerSource:
    settings.setdefault("project", PROJECT)
    settings.setdefault("environ", {})
    settings.setdefault("timeout", 5.0)
    made = GCPSecretManagerSource(endpoint=fake.endpoint, **settings)
    _made.append(made)
    return made


def resource(secret: str, version: str = "latest", project: str = PROJECT) -> str:
    return f"projects/{project}/secrets/{secret}/versions/{version}"


@pytest.fixture
def source(gcp_fake: FakeSecretManager) -> Iterator[GCPSecretManagerSource]:
    made = make_source(gcp_fake)
    yield made
    made.close()


def fast_chain(*sources: Any, **settings: Any) -> Chain:
    """No cache, tiny backoff: every resolve reaches the server, and retries cost no time."""
    settings.setdefault("cache_ttl", 0)
    settings.setdefault("backoff", 0.0)
    return Chain(list(sources), **settings)


# -- the contract ---------------------------------------------------------------------


class TestGCPContract(SourceContractTests):
    @pytest.fixture
    def source(self, gcp_fake: FakeSecretManager) -> Iterator[GCPSecretManagerSource]:
        made = make_source(gcp_fake)
        yield made
        made.close()

    @pytest.fixture
    def seed(self, gcp_fake: FakeSecretManager) -> Seed:
        def put(name: str, value: str) -> None:
            gcp_fake.set_secret(name, value)

        return put


class TestPrefixedKebabContract(TestGCPContract):
    @pytest.fixture
    def source(self, gcp_fake: FakeSecretManager) -> Iterator[GCPSecretManagerSource]:
        made = make_source(gcp_fake, name="gcp-kebab", prefix="app_", name_transform="kebab")
        yield made
        made.close()

    @pytest.fixture
    def seed(self, gcp_fake: FakeSecretManager) -> Seed:
        def put(name: str, value: str) -> None:
            gcp_fake.set_secret("app-" + name.lower().replace("_", "-"), value)

        return put


# -- found ----------------------------------------------------------------------------


def test_latest_is_the_newest_version_and_the_detail_names_it(
    gcp_fake: FakeSecretManager, source: GCPSecretManagerSource
) -> None:
    name, old, new = unique_name(), canary(), canary()
    gcp_fake.set_secret(name, old)
    gcp_fake.set_secret(name, new)
    result = source.get(source.key_for(name))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == new
    assert result.detail == f"{resource(name)} (version 2)"
    assert gcp_fake.calls(ACCESS, match=resource(name)) == 1


def test_numbered_version_by_setting_and_by_reference(gcp_fake: FakeSecretManager) -> None:
    name, first, second = unique_name(), canary(), canary()
    gcp_fake.set_secret(name, first)
    gcp_fake.set_secret(name, second)
    pinned = make_source(gcp_fake, version="1")
    assert pinned.key_for(name) == SecretVersionKey(PROJECT, name, "1")
    with fast_chain(pinned) as chain:
        assert chain.resolve(name).get_secret_value() == first
        assert chain.resolve(f"gcp-sm://{resource(name, '2')}").get_secret_value() == second
        assert chain.resolve(f"gcp-sm://{name}/versions/1").get_secret_value() == first
        assert chain.resolve(f"gcp-sm://{name}").get_secret_value() == second  # a reference means latest


def test_json_field_from_a_reference(gcp_fake: FakeSecretManager, source: GCPSecretManagerSource) -> None:
    name, password = unique_name(), canary()
    gcp_fake.set_secret(name, json.dumps({"user": "app", "password": password, "port": 5432}))
    with fast_chain(source) as chain:
        assert chain.resolve(f"gcp-sm://{name}#password").get_secret_value() == password
        assert chain.resolve(f"gcp-sm://{resource(name)}#port").get_secret_value() == "5432"
        explanation = chain.explain(f"gcp-sm://{name}#missing")
    assert explanation.winner is None
    assert "has no field 'missing'" in explanation.attempts[-1].detail


def test_binary_payload_stays_bytes_and_utf8_becomes_str(
    gcp_fake: FakeSecretManager, source: GCPSecretManagerSource
) -> None:
    binary, text = unique_name(), unique_name()
    data = b"\xff\xfe" + os.urandom(30)  # never valid UTF-8
    accented = canary("mot-de-passe-é-ß-密码")
    gcp_fake.set_secret(binary, data)
    gcp_fake.set_secret(text, accented)
    found_bytes = source.get(source.key_for(binary))
    found_text = source.get(source.key_for(text))
    assert isinstance(found_bytes, Found)
    assert isinstance(found_text, Found)
    assert found_bytes.value.get_secret_value() == data
    assert found_text.value.get_secret_value() == accented


# -- not found and errors ----------------------------------------------------------------


def test_secret_without_versions_is_not_found(
    gcp_fake: FakeSecretManager, source: GCPSecretManagerSource
) -> None:
    name = unique_name()
    client = gcp_fake.client()
    try:
        client.create_secret(parent=f"projects/{PROJECT}", secret_id=name, secret={})
    finally:
        client.transport.close()
    assert source.get(source.key_for(name)) == NotFound(f"{resource(name)} does not exist")


def test_permission_denied_is_not_retried(gcp_fake: FakeSecretManager) -> None:
    name = unique_name()
    gcp_fake.set_secret(name, canary())
    gcp_fake.fail(ACCESS, grpc.StatusCode.PERMISSION_DENIED, match=resource(name))
    behind = MemorySource({name: canary()})
    chain = fast_chain(make_source(gcp_fake, name="gcp-prod"), behind, retries=3)
    with chain, pytest.raises(BackendError) as caught:
        chain.resolve(name)
    assert caught.value.access_denied
    assert not caught.value.retryable
    assert str(caught.value).startswith("gcp-prod (gcp-sm): access denied to ")
    assert gcp_fake.calls(ACCESS, match=resource(name)) == 1
    assert behind.calls == 0, "an error must not fall through to a weaker source"


def test_unauthenticated_is_access_denied(
    gcp_fake: FakeSecretManager, source: GCPSecretManagerSource
) -> None:
    name = unique_name()
    gcp_fake.fail(ACCESS, grpc.StatusCode.UNAUTHENTICATED, match=resource(name))
    with pytest.raises(BackendError) as caught:
        source.get(source.key_for(name))
    assert caught.value.access_denied
    assert "UNAUTHENTICATED" in caught.value.message


def test_unavailable_twice_then_success_takes_three_calls(gcp_fake: FakeSecretManager) -> None:
    name, value = unique_name(), canary()
    gcp_fake.set_secret(name, value)
    gcp_fake.fail(ACCESS, grpc.StatusCode.UNAVAILABLE, times=2, match=resource(name))
    with fast_chain(make_source(gcp_fake), retries=2) as chain:
        assert chain.resolve(name).get_secret_value() == value
    assert gcp_fake.calls(ACCESS, match=resource(name)) == 3


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_always_failing_is_bounded_and_names_the_source(
    gcp_fake: FakeSecretManager, code: grpc.StatusCode
) -> None:
    name = unique_name()
    gcp_fake.fail(ACCESS, code, match=resource(name))
    source = make_source(gcp_fake, name="gcp-prod", retries=2, backoff=0.01)
    started = time.monotonic()
    with Chain([source], cache_ttl=0) as chain, pytest.raises(BackendError) as caught:
        chain.resolve(name)
    assert time.monotonic() - started < 3.0
    assert caught.value.source == "gcp-prod"
    assert str(caught.value).startswith("gcp-prod (gcp-sm): ")
    assert caught.value.retryable
    assert code.name in str(caught.value)
    assert "(after 3 attempts)" in str(caught.value)
    assert gcp_fake.calls(ACCESS, match=resource(name)) == 3


def test_slow_server_is_cut_off_by_timeout(gcp_fake: FakeSecretManager) -> None:
    name = unique_name()
    gcp_fake.set_secret(name, canary())
    gcp_fake.delay(ACCESS, 30.0, match=resource(name))
    source = make_source(gcp_fake, timeout=0.2)
    started = time.monotonic()
    with fast_chain(source, retries=1) as chain, pytest.raises(BackendError) as caught:
        chain.resolve(name)
    elapsed = time.monotonic() - started
    assert 0.35 < elapsed < 3.0, "two calls of 0.2 s each, not the server's 30 s"
    assert "timed out after 0.2s" in str(caught.value)
    assert caught.value.retryable
    assert gcp_fake.calls(ACCESS, match=resource(name)) == 2


def test_crc_mismatch_is_an_error_and_a_clean_retry_heals_it(gcp_fake: FakeSecretManager) -> None:
    name, value = unique_name(), canary()
    gcp_fake.set_secret(name, value)
    gcp_fake.corrupt_crc(match=resource(name))
    with fast_chain(make_source(gcp_fake), retries=1) as chain:
        with pytest.raises(BackendError, match="payload corrupted in transit") as caught:
            chain.resolve(name)
        assert_not_leaked(value, str(caught.value), "the CRC error")
        gcp_fake.clear_faults()
        gcp_fake.corrupt_crc(times=1, match=resource(name))
        assert chain.resolve(name).get_secret_value() == value
    assert gcp_fake.calls(ACCESS, match=resource(name)) == 4


@pytest.mark.parametrize("state", ["DISABLED", "DESTROYED"])
def test_disabled_or_destroyed_version_is_a_clear_error(
    gcp_fake: FakeSecretManager, source: GCPSecretManagerSource, state: str
) -> None:
    name = unique_name()
    gcp_fake.set_secret(name, canary())
    gcp_fake.set_secret(name, canary())
    gcp_fake.set_version_state(name, 2, state)
    with fast_chain(source, retries=2) as chain, pytest.raises(BackendError) as caught:
        chain.resolve(name)
    assert str(caught.value) == (
        f"gcp-sm: {resource(name)} (version 2) is {state.lower()}; enable it or read another version"
    )
    assert not caught.value.retryable
    assert gcp_fake.calls(ACCESS, match=resource(name)) == 1
    older = source.get(SecretVersionKey(PROJECT, name, "1"))
    assert isinstance(older, Found), "an older enabled version can still be read"


def test_invalid_secret_id_is_a_config_error_without_a_request(
    gcp_fake: FakeSecretManager, source: GCPSecretManagerSource
) -> None:
    with pytest.raises(
        ConfigError, match=r"'db\.password' gives the secret id 'db\.password'.*name_transform"
    ):
        source.key_for("db.password")
    with fast_chain(source, MemorySource({"db.password": canary()})) as chain, pytest.raises(ConfigError):
        chain.resolve("db.password")
    with pytest.raises(ConfigError, match="1-255"):
        source.key_for("A" * 256)
    assert gcp_fake.calls() == 0


def test_name_transforms(gcp_fake: FakeSecretManager) -> None:
    value = canary()
    gcp_fake.set_secret("svc_db_password", value)
    sanitize = make_source(gcp_fake, prefix="svc_", name_transform="sanitize")
    assert sanitize.key_for("db.password").secret == "svc_db_password"
    assert sanitize.key_for("db/pass word").secret == "svc_db_pass_word"
    kebab = make_source(gcp_fake, prefix="svc_", name_transform="kebab")
    assert kebab.key_for("DB_PASSWORD").secret == "svc-db-password"
    assert kebab.key_for("db..password").secret == "svc-db-password"
    with fast_chain(sanitize) as chain:
        assert chain.resolve("db.password").get_secret_value() == value


def test_resolve_many_of_twenty_names_runs_concurrently(gcp_fake: FakeSecretManager) -> None:
    label = unique_name("MANY")
    values = {f"{label}_{index}": canary() for index in range(20)}
    for name, value in values.items():
        gcp_fake.set_secret(name, value)
    gcp_fake.delay(ACCESS, 0.15, match=f"projects/{PROJECT}/secrets/{label}_")
    started = time.monotonic()
    with fast_chain(make_source(gcp_fake), max_workers=8) as chain:
        resolved = chain.resolve_many(list(values))
    elapsed = time.monotonic() - started
    assert {name: value.get_secret_value() for name, value in resolved.items()} == values
    assert gcp_fake.calls(ACCESS) == 20
    assert gcp_fake.max_in_flight(ACCESS) >= 4, "lookups must overlap"
    # About 3 rounds of 0.15 s, not 20; the bound leaves room for a loaded CI machine
    # (the overlap itself is counted at the server, above).
    assert elapsed < 20 * 0.15, "20 slow lookups on 8 threads take less than one after another"


def test_gcp_sm_shadows_env_in_a_configured_chain(
    gcp_fake: FakeSecretManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, stored, in_env = unique_name(), canary(), canary()
    gcp_fake.set_secret(name, stored)
    monkeypatch.setenv(name, in_env)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    config = tmp_path / "authchain.toml"
    config.write_text(
        "cache_ttl = 0\n"
        "[sources.env]\n"
        'type = "env"\n'
        "[sources.gcp]\n"
        'type = "gcp-sm"\n'
        f'project = "{PROJECT}"\n'
        f'endpoint = "{gcp_fake.endpoint}"\n'
        "timeout = 2.5\n"
        "retries = 0\n",
        encoding="utf-8",
    )
    with Chain.from_config(config) as chain:
        assert [source.name for source in chain.sources] == ["gcp", "env"], "stores come before env"
        assert chain.resolve(name).get_secret_value() == stored
        explanation = chain.explain(name)
    assert explanation.winner is not None
    assert explanation.winner.source == "gcp"
    assert [attempt.source for attempt in explanation.shadowed] == ["env"]
    assert_not_leaked(stored, str(explanation), "explain()")
    assert_not_leaked(in_env, str(explanation), "explain()")


# -- the library's RetryError --------------------------------------------------------------


def test_library_retry_error_is_unwrapped_to_its_cause(gcp_fake: FakeSecretManager) -> None:
    """With the library's own retry the same outage arrives as RetryError; its cause decides."""
    name = unique_name()
    gcp_fake.fail(ACCESS, grpc.StatusCode.UNAVAILABLE, match=resource(name))
    client = gcp_fake.client()
    try:
        retry = Retry(initial=0.01, maximum=0.02, timeout=0.3, predicate=lambda e: True)
        with pytest.raises(api.RetryError) as caught:
            client.access_secret_version(name=resource(name), retry=retry, timeout=1.0)
    finally:
        client.transport.close()
    assert isinstance(caught.value.cause, api.ServiceUnavailable)
    problem = classify(caught.value, resource(name))
    assert problem is not None
    assert problem.retryable
    assert "UNAVAILABLE" in problem.message
    denied = classify(api.RetryError("gave up", cause=api.PermissionDenied("no")), resource(name))
    assert denied is not None
    assert denied.access_denied
    assert classify(api.RetryError("gave up", cause=api.NotFound("gone")), resource(name)) is None


# -- settings, project and credentials ---------------------------------------------------


def test_settings_from_toml_are_validated() -> None:
    where = "authchain.toml: sources.gcp"
    source = GCPSecretManagerSource.from_settings(
        "gcp",
        {
            "project": "my-project",
            "prefix": "app_",
            "version": "3",
            "timeout": "2",
            "reconnect_backoff_max": 1,
            "endpoint": "x.test:443",
        },
        where=where,
    )
    assert isinstance(source, GCPSecretManagerSource)
    assert source.settings() == {
        "on_error": "raise",
        "retries": None,
        "backoff": None,
        "project": "my-project",
        "prefix": "app_",
        "version": "3",
        "location": None,
        "credentials": None,
        "endpoint": "x.test:443",
        "timeout": 2.0,
        "reconnect_backoff_max": 1.0,
        "name_transform": "none",
    }
    with pytest.raises(ConfigError, match=r"unknown setting 'projcet'.*did you mean 'project'"):
        GCPSecretManagerSource.from_settings("gcp", {"projcet": "p"}, where=where)
    with pytest.raises(ConfigError, match=r"name_transform must be one of"):
        GCPSecretManagerSource.from_settings("gcp", {"name_transform": "upper"}, where=where)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"project": "Not_A_Project"}, "project must be a project id"),
        ({"prefix": "app."}, "prefix may only hold"),
        ({"version": "v/1"}, "version must be"),
        ({"endpoint": "https://secretmanager.googleapis.com"}, "endpoint must be host"),
        ({"timeout": 0}, "timeout must be more than 0"),
        ({"credentials": '{"type": "service_account"}'}, "not the key itself"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GCPSecretManagerSource(**settings)


def test_type_is_registered_and_ranked_with_the_stores() -> None:
    cls = load_source_class("gcp-sm")
    assert cls is GCPSecretManagerSource
    assert (cls.type, cls.rank, cls.extra, cls.concurrent, cls.batches) == ("gcp-sm", 100, "gcp", True, False)


def test_project_from_google_cloud_project(gcp_fake: FakeSecretManager) -> None:
    name, value = unique_name(), canary()
    gcp_fake.set_secret(name, value, project="from-env-project")
    source = make_source(gcp_fake, project=None, environ={"GOOGLE_CLOUD_PROJECT": "from-env-project"})
    assert source.key_for(name) == SecretVersionKey("from-env-project", name, "latest")
    result = source.get(source.key_for(name))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value


def test_no_project_anywhere_is_a_config_error_without_a_request(gcp_fake: FakeSecretManager) -> None:
    source = make_source(gcp_fake, project=None)
    key = source.key_for(unique_name())
    assert source.describe_key(key).startswith("projects/<project>/secrets/")
    with pytest.raises(ConfigError, match="no GCP project"):
        source.get(key)
    assert source.check().status == "misconfigured"
    assert gcp_fake.calls() == 0


@pytest.fixture(scope="module")
def service_account_json() -> str:
    """A service-account key made here (never a real one), with its own project."""
    crypto: Any = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    from cryptography.hazmat.primitives import serialization

    key = crypto.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "sa-project",
            "private_key_id": "0" * 40,
            "private_key": pem,
            "client_email": "reader@sa-project.iam.gserviceaccount.com",
            "client_id": "1" * 21,
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def test_credentials_are_resolved_through_the_chain_and_give_the_project(
    gcp_fake: FakeSecretManager, service_account_json: str
) -> None:
    name, value = unique_name(), canary()
    gcp_fake.set_secret(name, value, project="sa-project")
    memory = MemorySource({"GCP_SA": service_account_json})
    source = make_source(gcp_fake, project=None, credentials="GCP_SA")
    with fast_chain(source, memory) as chain:
        assert chain.resolve(name).get_secret_value() == value
        assert chain.resolve(name).get_secret_value() == value
        assert source.describe_key(source.key_for(name)) == resource(name, project="sa-project")
    assert memory.calls == 1, "credentials are resolved once per client, without asking gcp-sm itself"
    data = pickle.dumps(source)
    assert_not_leaked("PRIVATE KEY", data, "a pickled source")


def test_tls_client_for_a_remote_endpoint_uses_the_resolved_credentials(service_account_json: str) -> None:
    """Built, never called: a non-loopback endpoint gets TLS and our credentials (no network here)."""
    from google.oauth2 import service_account

    source = GCPSecretManagerSource(
        project="sa-project", credentials="env://GCP_SA", endpoint="secretmanager.example.invalid:443"
    )
    with Chain([EnvSource(environ={"GCP_SA": service_account_json}), source]):
        client = source._get_client()
        assert client.transport.host == "secretmanager.example.invalid:443"
        credentials = client.transport._credentials
        assert isinstance(credentials, service_account.Credentials)
        assert credentials.service_account_email == "reader@sa-project.iam.gserviceaccount.com"
        source.close()
        assert source._clients == {}


def test_missing_credentials_are_a_config_error(gcp_fake: FakeSecretManager) -> None:
    missing = make_source(gcp_fake, project=None, credentials="NO_SUCH_CREDENTIAL")
    expected = "'NO_SUCH_CREDENTIAL' were not found by any other source"
    with fast_chain(missing, MemorySource({})), pytest.raises(ConfigError, match=expected):
        missing.get(missing.key_for(unique_name()))
    assert gcp_fake.calls() == 0


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("{planted}", r"do not hold a service-account key \(JSON\)$"),
        ('{{"type": "external_account", "note": "{planted}"}}', "leave `credentials` unset and use ADC"),
        ('{{"type": "service_account", "private_key": "{planted}"}}', "missing fields"),
    ],
)
def test_malformed_credentials_are_config_errors_without_values(
    gcp_fake: FakeSecretManager, stored: str, message: str
) -> None:
    planted = canary()
    malformed = make_source(gcp_fake, project=None, credentials="GCP_SA")
    chain = fast_chain(malformed, MemorySource({"GCP_SA": stored.format(planted=planted)}))
    with chain, pytest.raises(ConfigError, match=message) as caught:
        malformed.get(malformed.key_for(unique_name()))
    assert_not_leaked(planted, str(caught.value), "the credentials error")
    assert gcp_fake.calls() == 0


def test_no_application_default_credentials_is_access_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_adc(*args: Any, **kwargs: Any) -> Any:  # the fault: a machine with no ADC at all
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_adc)
    source = GCPSecretManagerSource(project="my-project", endpoint="secretmanager.example.invalid:443")
    with pytest.raises(BackendError, match="no Google credentials") as caught:
        source.get(source.key_for("DB_PASSWORD"))
    assert caught.value.access_denied
    assert source.check().status == "unauthenticated"


# -- the source as an object ---------------------------------------------------------------


def test_check_reports_ok_unauthenticated_and_unreachable(
    gcp_fake: FakeSecretManager, source: GCPSecretManagerSource
) -> None:
    assert source.check().status == "ok"
    gcp_fake.fail("ListSecrets", grpc.StatusCode.PERMISSION_DENIED, times=1)
    report = source.check()
    assert (report.status, "not allowed to list" in report.detail) == ("ok", True)
    gcp_fake.fail("ListSecrets", grpc.StatusCode.UNAUTHENTICATED, times=1)
    assert source.check().status == "unauthenticated"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    nowhere = GCPSecretManagerSource(project=PROJECT, endpoint=f"127.0.0.1:{closed}", timeout=2)
    started = time.monotonic()
    assert nowhere.check().status == "unreachable"
    assert time.monotonic() - started < 3
    nowhere.close()


def test_client_is_lazy_shared_between_threads_and_reopens_after_close(
    gcp_fake: FakeSecretManager,
) -> None:
    name, value = unique_name(), canary()
    gcp_fake.set_secret(name, value)
    source = make_source(gcp_fake)
    assert source._clients == {}, "the constructor makes no client"
    clients: list[Any] = []
    barrier = threading.Barrier(6)

    def grab() -> None:
        barrier.wait()
        clients.append(source._get_client())

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in clients}) == 1
    source.close()
    source.close()  # twice is fine
    result = source.get(source.key_for(name))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value
    source.close()


def test_pickled_source_carries_no_client_and_works_again(gcp_fake: FakeSecretManager) -> None:
    name, value = unique_name(), canary()
    gcp_fake.set_secret(name, value)
    source = make_source(gcp_fake, environ={"GOOGLE_CLOUD_PROJECT": canary()})
    assert isinstance(source.get(source.key_for(name)), Found)
    clone = pickle.loads(pickle.dumps(source))  # noqa: S301 - our own bytes
    assert clone._clients == {}
    assert clone._environ is None, "the environ seam does not travel"
    result = clone.get(clone.key_for(name))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value
    source.close()
    clone.close()


def test_missing_sdk_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.secretmanager_v1", None)  # the fault: extra not installed
    source = GCPSecretManagerSource(project="my-project", endpoint="127.0.0.1:9")
    with pytest.raises(ConfigError, match=r"pip install 'authchain\[gcp\]'"):
        source.get(source.key_for("DB_PASSWORD"))
    assert source.check().status == "misconfigured"


def test_module_and_keys_import_no_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from authchain.backends.gcp.source import GCPSecretManagerSource\n"
        "s = GCPSecretManagerSource(project='p1-project')\n"
        "s.key_for('DB_PASSWORD'); s.key_for_ref(__import__('authchain').SecretRef.parse('gcp-sm://X'))\n"
        "import authchain.testing.gcp\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('google', 'grpc')))\n"
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


# -- reconnecting after an outage ---------------------------------------------------------


def _outage_then_recovery(
    gcp_fake: FakeSecretManager, tcp_proxy: Any, seconds: float, **settings: Any
) -> tuple[int, float]:
    """Connections the source's channel opened during an outage of ``seconds`` (asked
    every 0.05 s), and how long after the end of the outage the first lookup succeeded."""
    name = unique_name("BACK")
    gcp_fake.set_secret(name, canary())
    proxy = tcp_proxy(("127.0.0.1", gcp_fake.port))
    source = GCPSecretManagerSource(
        project=PROJECT, endpoint=f"127.0.0.1:{proxy.port}", environ={}, timeout=1.0, **settings
    )
    _made.append(source)
    key = source.key_for(name)
    assert isinstance(source.get(key), Found)
    proxy.fail("reset")
    proxy.clear()
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        with pytest.raises(BackendError):
            source.get(key)
        time.sleep(0.05)
    attempts = proxy.connections
    proxy.heal()
    healed = time.monotonic()
    while True:
        try:
            found = source.get(key)
        except BackendError:
            assert time.monotonic() - healed < 30, "the channel never came back"
            time.sleep(0.02)
            continue
        assert isinstance(found, Found)
        return attempts, time.monotonic() - healed


def test_after_an_outage_the_channel_reconnects_within_reconnect_backoff_max(
    gcp_fake: FakeSecretManager, tcp_proxy: Any
) -> None:
    """gRPC's own backoff between reconnection attempts grows to 120 s (1, 1.6, 2.6, 4.1 s ...
    over a 5 s outage: 3 to 7 attempts here), failing every call meanwhile; capped at 0.3 s
    the channel keeps trying (about 25 attempts here), and is back right after the server."""
    attempts, recovered = _outage_then_recovery(gcp_fake, tcp_proxy, 5.0, reconnect_backoff_max=0.3)
    assert attempts >= 12, f"{attempts} connection attempts in 5 s: the backoff was not capped"
    assert recovered < 1.0


def test_reconnect_backoff_max_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"reconnect_backoff_max must be at least 0\.1 seconds"):
        GCPSecretManagerSource(project=PROJECT, reconnect_backoff_max=0)


def test_a_client_for_a_real_endpoint_is_built_with_the_sdks_own_channel_setup() -> None:
    """Off loopback the SDK builds the TLS channel with its credentials and scopes; the
    source only adds its channel options. Building makes no request."""
    from google.auth.credentials import AnonymousCredentials

    source = GCPSecretManagerSource(project=PROJECT, endpoint="secretmanager.example.invalid:443", environ={})
    _made.append(source)
    source._auth = (AnonymousCredentials(), None)  # what `credentials` would have resolved to
    client = source._get_client()
    assert client.transport._host == "secretmanager.example.invalid:443"
    assert type(client.transport).__name__ == "SecretManagerServiceGrpcTransport"
