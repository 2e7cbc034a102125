"""gcp_credentials / gcp_secret_manager_client against the gRPC fake, and keyring_backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain, ConfigError
from authchain.backends.env.source import EnvSource
from authchain.clients import (
    clear,
    explain_client,
    gcp_credentials,
    gcp_secret_manager_client,
    keyring_backend,
)
from authchain.testing import canary
from authchain.testing.gcp import FakeSecretManager


@pytest.fixture(autouse=True)
def _fresh_client_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def no_adc(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a test must never look for Application Default Credentials")

    monkeypatch.setattr("google.auth.default", no_adc)
    clear()
    yield
    clear()


def made_up_service_account(project: str = "clients-project") -> dict[str, str]:
    """A service-account key that google-auth accepts: a real RSA key, a made-up identity."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": canary("kid"),
        "private_key": pem,
        "client_email": f"authchain-test@{project}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.example.invalid/token",
    }


def test_credentials_from_the_chain(gcp_fake: FakeSecretManager) -> None:
    account = made_up_service_account()
    chain = Chain([EnvSource(environ={"GCP_CREDENTIALS": json.dumps(account)})], cache_ttl=0)
    credentials = gcp_credentials(chain=chain)
    assert credentials.service_account_email == account["client_email"]
    assert gcp_credentials(chain=chain) is credentials
    origins = explain_client("gcp", endpoint=gcp_fake.endpoint, chain=chain).origins
    assert origins["credentials"] == "chain: env (GCP_CREDENTIALS)"
    assert account["private_key"] not in str(explain_client("gcp", chain=chain))


def test_secret_manager_client_reads_from_the_fake(gcp_fake: FakeSecretManager) -> None:
    value = canary()
    gcp_fake.set_secret("clients-secret", value, project="clients-project")
    chain = Chain(
        [EnvSource(environ={"GCP_CREDENTIALS": json.dumps(made_up_service_account())})], cache_ttl=0
    )
    client = gcp_secret_manager_client(endpoint=gcp_fake.endpoint, chain=chain)
    response = client.access_secret_version(
        name="projects/clients-project/secrets/clients-secret/versions/latest", retry=None, timeout=5
    )
    assert response.payload.data.decode() == value
    assert gcp_secret_manager_client(endpoint=gcp_fake.endpoint, chain=chain) is client


def test_explicit_and_wrong_shaped_credentials() -> None:
    chain = Chain([EnvSource(environ={})], cache_ttl=0)
    account = made_up_service_account()
    assert gcp_credentials(account, chain=chain).service_account_email == account["client_email"]
    secret = canary()
    with pytest.raises(ConfigError, match="do not hold a service-account key") as caught:
        gcp_credentials({"type": "authorized_user", "refresh_token": secret}, chain=chain)
    assert secret not in str(caught.value)


def test_keyring_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    chain = Chain([EnvSource(environ={})], cache_ttl=0)
    backend = keyring_backend("keyrings.alt.file.PlaintextKeyring", chain=chain)
    assert type(backend).__name__ == "PlaintextKeyring"
    assert keyring_backend("keyrings.alt.file.PlaintextKeyring", chain=chain) is backend
    value = canary()
    backend.set_password("clients", "user", value)
    assert backend.get_password("clients", "user") == value
    assert explain_client("keyring", backend="keyrings.alt.file.PlaintextKeyring", chain=chain).origins == {
        "backend": "explicit"
    }
