"""Regional GCP secrets (issue 16, part 3): ``projects/P/locations/L/secrets/S``.

Regional secrets are a namespace of their own (a regional ``db`` is not the
global ``db``) served only by ``secretmanager.L.rep.googleapis.com``. Read
against the in-process gRPC fake (which keeps regional secrets apart, as the
service does); the regional endpoint a TLS client is built for is checked on
the built client (never called: no network here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("google.cloud.secretmanager_v1", reason="needs the gcp extra")

from authchain import Chain, ConfigError, SecretRef
from authchain.backends.env.source import EnvSource
from authchain.backends.gcp.source import GCPSecretManagerSource, regional_endpoint
from authchain.testing import canary
from authchain.testing.gcp import FakeSecretManager
from secret_tasks import GCPSecretManagerSecret
from tests.backends.gcp.test_source import service_account_json  # noqa: F401 - a fixture
from tests.servers.gcp_fake import GCP_TEST_PROJECT as PROJECT

REGION = "europe-west4"


@pytest.fixture
def sources(gcp_fake: FakeSecretManager) -> Iterator[dict[str, GCPSecretManagerSource]]:
    made = {
        where: GCPSecretManagerSource(
            name=f"gcp-{where}",
            project=PROJECT,
            endpoint=gcp_fake.endpoint,
            environ={},
            timeout=5.0,
            **({"location": REGION} if where == "regional" else {}),
        )
        for where in ("global", "regional")
    }
    yield made
    for source in made.values():
        source.close()


@pytest.fixture
def planted(gcp_fake: FakeSecretManager) -> dict[str, str]:
    """``db`` twice: a global secret and a regional one, with different values."""
    values = {"global": canary("global"), "regional": canary("regional")}
    gcp_fake.set_secret("db", values["global"], project=PROJECT)
    gcp_fake.set_secret("db", values["regional"], project=PROJECT, location=REGION)
    return values


def test_a_location_setting_reads_the_regional_secret_not_the_global_one(
    sources: dict[str, GCPSecretManagerSource], planted: dict[str, str]
) -> None:
    assert Chain([sources["regional"]]).resolve("db").get_secret_value() == planted["regional"]
    assert Chain([sources["global"]]).resolve("db").get_secret_value() == planted["global"]
    key = sources["regional"].key_for("db")
    assert (
        sources["regional"].describe_key(key)
        == f"projects/{PROJECT}/locations/{REGION}/secrets/db/versions/latest"
    )


def test_the_long_reference_form_names_its_own_location(
    sources: dict[str, GCPSecretManagerSource], planted: dict[str, str]
) -> None:
    chain = Chain([sources["global"]])
    regional = f"gcp-sm://projects/{PROJECT}/locations/{REGION}/secrets/db/versions/latest"
    assert chain.resolve(regional).get_secret_value() == planted["regional"]
    assert chain.resolve(f"gcp-sm://projects/{PROJECT}/secrets/db").get_secret_value() == planted["global"]
    # The short form takes the source's project and location.
    assert Chain([sources["regional"]]).resolve("gcp-sm://db").get_secret_value() == planted["regional"]
    # One client per location, each kept.
    assert set(sources["global"]._clients) == {None, REGION}


def test_a_regional_json_field_and_an_explicit_version(
    gcp_fake: FakeSecretManager, sources: dict[str, GCPSecretManagerSource]
) -> None:
    first, second = canary("one"), canary("two")
    gcp_fake.set_secret("creds", json.dumps({"password": first}), project=PROJECT, location=REGION)
    gcp_fake.set_secret("creds", json.dumps({"password": second}), project=PROJECT, location=REGION)
    chain = Chain([sources["global"]])
    base = f"gcp-sm://projects/{PROJECT}/locations/{REGION}/secrets/creds"
    assert chain.resolve(f"{base}/versions/1#password").get_secret_value() == first
    assert chain.resolve(f"{base}#password").get_secret_value() == second


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"gcp-sm://projects/{PROJECT}/locations/Europe_West4/secrets/db", "the location is not a region"),
        (f"gcp-sm://projects/{PROJECT}/locations/{REGION}/secrets", "expected projects/P[/locations/L]"),
        (f"gcp-sm://projects/{PROJECT}/locations/{REGION}/keys/db", "expected projects/P[/locations/L]"),
    ],
)
def test_malformed_regional_references_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        SecretRef.parse(text)


def test_a_bad_location_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="location must be a region id"):
        GCPSecretManagerSource(project=PROJECT, location="europe west4")


def test_a_tls_client_for_a_location_talks_to_its_regional_endpoint(service_account_json: str) -> None:  # noqa: F811
    assert regional_endpoint(REGION) == f"secretmanager.{REGION}.rep.googleapis.com"
    source = GCPSecretManagerSource(project="sa-project", credentials="env://GCP_SA", location=REGION)
    with Chain([EnvSource(environ={"GCP_SA": service_account_json}), source]):
        regional, global_ = source._get_client(REGION), source._get_client(None)
        assert regional.transport.host == f"secretmanager.{REGION}.rep.googleapis.com:443"
        assert global_.transport.host == "secretmanager.googleapis.com:443"
        source.close()


def test_check_lists_the_regional_parent(
    sources: dict[str, GCPSecretManagerSource], planted: dict[str, str]
) -> None:
    result = sources["regional"].check()
    assert result.status == "ok", result
    assert f"projects/{PROJECT}/locations/{REGION}" in result.detail


def test_the_secret_task_takes_a_location(
    gcp_fake: FakeSecretManager, sources: dict[str, GCPSecretManagerSource], planted: dict[str, str]
) -> None:
    chain = Chain([sources["global"]])
    task = GCPSecretManagerSecret("db", project=PROJECT, location=REGION, chain=chain)
    assert task().get_secret_value() == planted["regional"]
    assert (
        GCPSecretManagerSecret("db", project=PROJECT, chain=chain)().get_secret_value() == planted["global"]
    )
    with pytest.raises(ConfigError, match="needs project"):
        GCPSecretManagerSecret("db", location=REGION, chain=chain)()


def test_the_client_factory_takes_a_location_and_clients_gcp_project_is_gone(
    service_account_json: str,  # noqa: F811
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from authchain.clients import clear, gcp_secret_manager_client

    chain = Chain([EnvSource(environ={"GCP_CREDENTIALS": service_account_json})])
    try:
        client = gcp_secret_manager_client(location=REGION, chain=chain)
        assert client.transport.host == f"secretmanager.{REGION}.rep.googleapis.com:443"
        path = tmp_path / "authchain.toml"
        path.write_text('[clients.gcp]\nproject = "my-project"\n')
        configured = Chain.from_config(path)
        with pytest.raises(ConfigError, match="unknown setting 'project'"):
            gcp_secret_manager_client(chain=configured)
    finally:
        clear()
