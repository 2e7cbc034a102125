"""AzureKeyVaultSource against the in-process HTTPS Key Vault (tests/servers/azure_keyvault.py).

Real protocol end to end: azure-keyvault-secrets' challenge-auth policy gets
the 401 bearer challenge, azure-identity's ``ClientSecretCredential`` fetches
the OpenID configuration and a token from the fake's authority on 127.0.0.1
over TLS (the fake's CA is the source's ``ca_bundle``), then the secret.
Nothing here reaches Microsoft: the authority is loopback, so instance
discovery is off, and the network guard fails any other address.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.keyvault.secrets", reason="needs the azure extra")
pytest.importorskip("azure.identity", reason="needs the azure extra")

from authchain import BackendError, Chain, ConfigError, SecretRef, masking
from authchain._registry import load_source_class
from authchain.backends.azure.source import (
    AzureKeyVaultSource,
    AzureSecretKey,
    MaskingCredential,
    azure_credential_from,
)
from authchain.backends.env.source import EnvSource
from authchain.sources.base import Found, NotFound
from authchain.testing import canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked
from authchain.values import SecretValue
from tests.servers.azure_keyvault import FakeKeyVault

VAULT = "test-vault"
CLIENT_ID = "11111111-2222-4333-8444-555555555555"
TOKEN = "/oauth2/v2.0/token"

_made: list[AzureKeyVaultSource] = []


@pytest.fixture(autouse=True)
def _close_made_sources() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def environ_for(fake: FakeKeyVault, secret: str) -> dict[str, str]:
    """AZURE_* as a service principal's environment would hold them (a seam: not os.environ)."""
    return {"AZURE_TENANT_ID": fake.tenant, "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": secret}


def make_source(fake: FakeKeyVault, **settings: Any) -> AzureKeyVaultSource:
    """A source of the fake vault whose service principal comes from AZURE_* (the environ seam)."""
    if "environ" not in settings and "credentials" not in settings:
        secret = canary("sp")
        fake.add_client(CLIENT_ID, secret)
        settings["environ"] = environ_for(fake, secret)
    settings.setdefault("environ", {})
    settings.setdefault("vault_url", fake.url)
    settings.setdefault("vault_name", VAULT)
    settings.setdefault("timeout", 5.0)
    made = AzureKeyVaultSource(authority=fake.url, ca_bundle=fake.ca_file, **settings)
    _made.append(made)
    return made


def fast_chain(*sources: Any, **settings: Any) -> Chain:
    """No cache, no backoff: every resolve reaches the vault and a retry costs no time."""
    settings.setdefault("cache_ttl", 0)
    settings.setdefault("backoff", 0.0)
    return Chain(list(sources), **settings)


def reads(fake: FakeKeyVault, prefix: str) -> int:
    """Authenticated requests for paths under ``prefix`` (the SDK sends its unauthenticated
    challenge probe once per vault per process, so that one is not counted)."""
    with fake._lock:
        return sum(1 for _, path, auth in fake.requests if path.startswith(prefix) and auth == "Bearer")


def sp_json(fake: FakeKeyVault, secret: str, **extra: str) -> str:
    return json.dumps({"tenant_id": fake.tenant, "client_id": CLIENT_ID, "client_secret": secret, **extra})


# -- the contract ---------------------------------------------------------------------


class TestAzureContract(SourceContractTests):
    @pytest.fixture
    def source(self, azure_vault: FakeKeyVault) -> AzureKeyVaultSource:
        return make_source(azure_vault)

    @pytest.fixture
    def seed(self, azure_vault: FakeKeyVault) -> Seed:
        def put(name: str, value: str) -> None:
            azure_vault.set_secret(name.replace("_", "-"), value)

        return put


class TestPrefixedKebabContract(TestAzureContract):
    @pytest.fixture
    def source(self, azure_vault: FakeKeyVault) -> AzureKeyVaultSource:
        return make_source(azure_vault, name="azure-kebab", prefix="app-", name_transform="kebab")

    @pytest.fixture
    def seed(self, azure_vault: FakeKeyVault) -> Seed:
        def put(name: str, value: str) -> None:
            azure_vault.set_secret("app-" + name.lower().replace("_", "-"), value)

        return put


# -- registration, settings and names ------------------------------------------------------


def test_registered_under_its_type() -> None:
    assert load_source_class("azure-kv") is AzureKeyVaultSource


def test_importing_the_source_imports_no_sdk() -> None:
    probe = (
        "import sys; import authchain.backends.azure.source as s; "
        "s.AzureKeyVaultSource(vault_name='my-vault').key_for('DB_PASSWORD'); "
        "print([m for m in sys.modules if m.split('.')[0] in ('azure', 'msal')])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_vault_name_alone_is_the_public_cloud_url() -> None:
    source = AzureKeyVaultSource(vault_name="My-Vault")
    assert source.vault_url == "https://my-vault.vault.azure.net"
    assert source.key_for("DB_PASSWORD") == AzureSecretKey(source.vault_url, "DB-PASSWORD")


def test_vault_url_gives_the_name_references_use() -> None:
    source = AzureKeyVaultSource(vault_url="https://prod-kv.vault.azure.cn/")
    assert (source.vault_url, source.vault_name) == ("https://prod-kv.vault.azure.cn", "prod-kv")
    # Another vault of the same cloud: same DNS suffix.
    key, _ = source.key_for_ref(SecretRef.parse("azure-kv://other-kv/db"))
    assert key == AzureSecretKey("https://other-kv.vault.azure.cn", "db")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"vault_url": "http://x.vault.azure.net"}, "https URL"),
        ({"vault_url": "https://x.vault.azure.net/secrets"}, "no path"),
        ({"vault_url": "https://user:pw@x.vault.azure.net"}, "user or password"),
        ({"vault_name": "a"}, "vault name"),
        ({"vault_name": "has--double"}, "vault name"),
        ({"vault_name": "ok-vault", "version": "not/a/version"}, "version"),
        ({"vault_name": "ok-vault", "prefix": "app_"}, "prefix"),
        ({"vault_name": "ok-vault", "timeout": 0}, "timeout"),
        ({"vault_name": "ok-vault", "credentials": "a pasted secret value!"}, "not the key itself"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AzureKeyVaultSource(**settings)


def test_a_name_needs_a_vault_but_a_reference_does_not() -> None:
    source = AzureKeyVaultSource()
    with pytest.raises(ConfigError, match="no vault"):
        source.key_for("DB_PASSWORD")
    key, field = source.key_for_ref(SecretRef.parse("azure-kv://my-vault/db-password/abc123#user"))
    assert key == AzureSecretKey("https://my-vault.vault.azure.net", "db-password", "abc123")
    assert field == "user"


@pytest.mark.parametrize(
    ("transform", "name", "secret"),
    [
        ("dashes", "DB_PASSWORD", "DB-PASSWORD"),
        ("dashes", "db-password", "db-password"),
        ("kebab", "DB_PASSWORD", "db-password"),
        ("kebab", "app.db__password", "app-db-password"),
        ("none", "DB-PASSWORD", "DB-PASSWORD"),
    ],
)
def test_name_mapping(transform: str, name: str, secret: str) -> None:
    source = AzureKeyVaultSource(vault_name="my-vault", name_transform=transform)
    assert source.key_for(name).name == secret


@pytest.mark.parametrize(
    ("transform", "name", "hint"),
    [
        ("none", "DB_PASSWORD", "name_transform = 'kebab'"),
        ("dashes", "db.password", "name_transform = 'kebab'"),
        ("dashes", "X" * 128, "1-127 characters"),
    ],
)
def test_a_name_key_vault_cannot_hold_is_a_config_error_with_the_way_out(
    transform: str, name: str, hint: str
) -> None:
    source = AzureKeyVaultSource(vault_name="my-vault", name_transform=transform)
    with pytest.raises(ConfigError, match="not a Key Vault secret name") as caught:
        source.key_for(name)
    assert hint in str(caught.value)
    assert "pin the name to a reference" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("azure-kv://my-vault", "expected VAULT/SECRET"),
        ("azure-kv://my-vault/a/b/c", "expected VAULT/SECRET"),
        ("azure-kv://x/db", "not a vault name"),
        ("azure-kv://my-vault/db_password", "not a secret name"),
        ("azure-kv://my-vault/db/ver-sion", "not a version id"),
    ],
)
def test_malformed_references(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SecretRef.parse(text)


def test_config_file_builds_the_source(tmp_path: Path) -> None:
    path = tmp_path / "authchain.toml"
    path.write_text(
        '[sources.kv]\ntype = "azure-kv"\nvault_name = "prod-kv"\nprefix = "app-"\nmax_concurrency = 4\n'
    )
    chain = Chain.from_config(path, environ={})
    (source,) = [s for s in chain.sources if s.type == "azure-kv"]
    assert isinstance(source, AzureKeyVaultSource)
    assert source.describe_key(source.key_for("DB_PASSWORD")) == (
        "https://prod-kv.vault.azure.net/secrets/app-DB-PASSWORD"
    )
    path.write_text('[sources.kv]\ntype = "azure-kv"\nvault = "prod-kv"\n')
    with pytest.raises(ConfigError, match="unknown setting 'vault'"):
        Chain.from_config(path, environ={})


# -- reading: the latest, versions, references ---------------------------------------------


def test_reads_the_latest_and_pinned_versions(azure_vault: FakeKeyVault) -> None:
    old, new = canary("old"), canary("new")
    first = azure_vault.set_secret("DB-PASSWORD", old)
    second = azure_vault.set_secret("DB-PASSWORD", new)
    latest = make_source(azure_vault).get(AzureSecretKey(azure_vault.url, "DB-PASSWORD"))
    assert isinstance(latest, Found)
    assert latest.value.get_secret_value() == new
    assert latest.detail.endswith(f"(version {second})")
    pinned = make_source(azure_vault, version=first)
    found = pinned.get(pinned.key_for("DB_PASSWORD"))
    assert isinstance(found, Found)
    assert found.value.get_secret_value() == old
    assert_not_leaked(old, found.detail, "Found.detail")


def test_reference_with_version_and_json_field(azure_vault: FakeKeyVault) -> None:
    password = canary()
    version = azure_vault.set_secret("db", json.dumps({"user": "app", "password": password}))
    azure_vault.set_secret("db", json.dumps({"user": "app", "password": canary()}))
    with fast_chain(make_source(azure_vault)) as chain:
        value = chain.resolve(f"azure-kv://{VAULT}/db/{version}#password")
    assert value.get_secret_value() == password


def test_a_missing_version_is_not_found(azure_vault: FakeKeyVault) -> None:
    azure_vault.set_secret("db", canary())
    source = make_source(azure_vault)
    result = source.get(AzureSecretKey(azure_vault.url, "db", "0" * 32))
    assert isinstance(result, NotFound)
    assert f"/secrets/db/{'0' * 32}" in result.reason


def test_the_challenge_comes_first_then_one_token_serves_every_request(azure_vault: FakeKeyVault) -> None:
    from azure.keyvault.secrets._shared import http_challenge_cache

    # The SDK remembers a vault's challenge for the whole process: forget what earlier tests taught it.
    http_challenge_cache.clear()
    for name in ("a", "b", "c"):
        azure_vault.set_secret(name, canary())
    source = make_source(azure_vault)
    for name in ("a", "b", "c"):
        assert isinstance(source.get(AzureSecretKey(azure_vault.url, name)), Found)
    schemes = [auth for _, path, auth in azure_vault.requests if path.startswith("/secrets/")]
    assert schemes == [None, "Bearer", "Bearer", "Bearer"]  # the unauthenticated probe gets the 401
    assert azure_vault.count("POST", f"/{azure_vault.tenant}{TOKEN}") == 1


# -- outcomes -----------------------------------------------------------------------------


def test_forbidden_is_access_denied_and_never_retried(azure_vault: FakeKeyVault) -> None:
    azure_vault.set_secret("DB-PASSWORD", canary())
    azure_vault.deny("DB-PASSWORD")
    source = make_source(azure_vault)
    with fast_chain(source, retries=3) as chain, pytest.raises(BackendError) as caught:
        chain.resolve("DB_PASSWORD")
    assert caught.value.access_denied
    assert "access denied" in str(caught.value)
    assert "403 Forbidden" in str(caught.value)
    assert reads(azure_vault, "/secrets/DB-PASSWORD") == 1


def test_a_token_the_vault_no_longer_accepts_is_access_denied(azure_vault: FakeKeyVault) -> None:
    azure_vault.set_secret("DB-PASSWORD", canary())
    source = make_source(azure_vault)
    source.get(source.key_for("DB_PASSWORD"))
    azure_vault.revoke_tokens()  # the credential still holds its (now refused) token
    with fast_chain(source, retries=3) as chain, pytest.raises(BackendError) as caught:
        chain.resolve("DB_PASSWORD")
    assert caught.value.access_denied
    assert "401" in str(caught.value)


def test_a_disabled_secret_says_so(azure_vault: FakeKeyVault) -> None:
    azure_vault.set_secret("DB-PASSWORD", canary())
    azure_vault.set_enabled("DB-PASSWORD", False)
    with fast_chain(make_source(azure_vault), retries=3) as chain, pytest.raises(BackendError) as caught:
        chain.resolve("DB_PASSWORD")
    assert "is disabled" in str(caught.value)
    assert not caught.value.access_denied
    assert not caught.value.retryable


def test_throttling_waits_for_retry_after_then_succeeds(azure_vault: FakeKeyVault) -> None:
    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    source = make_source(azure_vault)
    source.get(source.key_for("DB_PASSWORD"))  # token and challenge out of the way
    azure_vault.fail(429, retry_after=0.4, times=1)
    with fast_chain(source, retries=2) as chain:
        started = time.monotonic()
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value
        waited = time.monotonic() - started
    assert waited >= 0.4, "the retry came before Retry-After"
    assert reads(azure_vault, "/secrets/DB-PASSWORD") == 3  # warm-up, throttled, success


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(azure_vault: FakeKeyVault) -> None:
    azure_vault.set_secret("DB-PASSWORD", canary())
    source = make_source(azure_vault)
    source.get(source.key_for("DB_PASSWORD"))
    azure_vault.fail(429, retry_after=30, times=5)
    started = time.monotonic()
    with fast_chain(source, retries=5, deadline=3) as chain, pytest.raises(BackendError) as caught:
        chain.resolve("DB_PASSWORD")
    assert time.monotonic() - started < 1.5, "given up at once, not slept until the deadline (3 s)"
    assert "Retry-After 30s" in str(caught.value)
    assert caught.value.retryable


def test_server_errors_are_retried(azure_vault: FakeKeyVault) -> None:
    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    source = make_source(azure_vault)
    source.get(source.key_for("DB_PASSWORD"))
    azure_vault.fail(503, times=2)
    with fast_chain(source, retries=2) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value
    azure_vault.fail(500, times=10)
    with fast_chain(source, retries=1) as chain, pytest.raises(BackendError, match="500") as caught:
        chain.resolve("DB_PASSWORD")
    assert caught.value.retryable


def test_an_unreachable_vault_is_a_retryable_error(azure_vault: FakeKeyVault) -> None:
    source = make_source(azure_vault, vault_url="https://127.0.0.1:9", timeout=2)
    with pytest.raises(BackendError, match="cannot reach") as caught:
        source.get(source.key_for("DB_PASSWORD"))
    assert caught.value.retryable


def test_a_vault_that_never_answers_costs_timeout_per_attempt_then_recovers(
    azure_vault: FakeKeyVault, tcp_proxy: Any
) -> None:
    """A TCP proxy in front of the fake (TLS passes through it byte for byte) stops answering:
    each attempt ends at the source's ``timeout``, the error is retryable, and the deadline
    bounds the whole lookup; once the vault answers again, so does the chain."""
    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    proxy = tcp_proxy(("127.0.0.1", azure_vault.port))
    source = make_source(azure_vault, vault_url=f"https://127.0.0.1:{proxy.port}", timeout=0.5)
    source.get(source.key_for("DB_PASSWORD"))  # token and connection first: the fault is the read
    proxy.fail("hang")
    started = time.monotonic()
    with fast_chain(source, retries=1) as chain, pytest.raises(BackendError, match="cannot reach") as caught:
        chain.resolve("DB_PASSWORD")
    assert time.monotonic() - started < 2 * 0.5 + 1.5
    assert caught.value.retryable
    assert "after 2 attempts" in str(caught.value)
    started = time.monotonic()
    with fast_chain(source, retries=10, deadline=1.2) as chain, pytest.raises(BackendError):
        chain.resolve("DB_PASSWORD")
    assert time.monotonic() - started < 1.2 + 1.0, "the deadline bounds the retries"
    proxy.heal()
    with fast_chain(source, retries=1) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value


def test_get_many_runs_requests_concurrently_within_the_bound(azure_vault: FakeKeyVault) -> None:
    values = {f"S{n}": canary() for n in range(12)}
    for name, value in values.items():
        azure_vault.set_secret(name, value)
    source = make_source(azure_vault, max_concurrency=4)
    source.get(source.key_for("S0"))
    azure_vault.latency = 0.2
    keys = [source.key_for(name) for name in values]
    started = time.monotonic()
    results = source.get_many([*keys, source.key_for("ABSENT")])
    elapsed = time.monotonic() - started
    assert {k.name: r.value.get_secret_value() for k, r in results.items() if isinstance(r, Found)} == values
    assert isinstance(results[source.key_for("ABSENT")], NotFound)
    assert azure_vault.max_in_flight == 4
    assert elapsed < 13 * 0.2 * 0.75, "get_many was not concurrent"


# -- credentials --------------------------------------------------------------------------


def test_named_credentials_come_through_the_chain(azure_vault: FakeKeyVault) -> None:
    secret, value = canary("sp"), canary()
    azure_vault.add_client(CLIENT_ID, secret)
    azure_vault.set_secret("DB-PASSWORD", value)
    # AZURE_* for another identity are set too: a named credential wins over them.
    source = make_source(azure_vault, credentials="AZ_SP", environ=environ_for(azure_vault, "not-this-one"))
    holder = EnvSource(name="sp-env", environ={"AZ_SP": sp_json(azure_vault, secret)})
    with fast_chain(source, holder) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value
        assert source._credential_origin == "chain (AZ_SP)"
    assert masking.default_masker.mask(f"x {secret} y") == f"x {masking.REPLACEMENT} y"


def test_a_named_credential_nothing_has_is_an_error_never_another_identity(azure_vault: FakeKeyVault) -> None:
    secret = canary("sp")
    azure_vault.add_client(CLIENT_ID, secret)
    source = make_source(azure_vault, credentials="AZ_SP", environ=environ_for(azure_vault, secret))
    with fast_chain(source) as chain, pytest.raises(ConfigError, match="'AZ_SP' were not found"):
        chain.resolve("DB_PASSWORD")
    assert azure_vault.count("POST", "/") == 0, "a token was asked for another identity"


def test_credentials_that_are_not_a_service_principal_are_refused_without_quoting(
    azure_vault: FakeKeyVault,
) -> None:
    planted = canary("sp")
    for text, message in [
        (planted, "do not hold JSON"),
        (json.dumps({"tenant_id": "t", "client_id": "c"}), "exactly one of client_secret"),
        (json.dumps({"client_id": "c", "client_secret": planted}), "lack tenant_id"),
        (json.dumps({"tenant_id": "t", "client_id": "c", "password": planted}), "unknown fields"),
    ]:
        with pytest.raises(ConfigError, match=message) as caught:
            azure_credential_from(SecretValue(text), "explicit credentials")
        assert_not_leaked(planted, str(caught.value), "ConfigError")


def test_a_wrong_client_secret_is_access_denied_and_not_shown(azure_vault: FakeKeyVault) -> None:
    wrong = canary("wrong")
    azure_vault.add_client(CLIENT_ID, canary("right"))
    source = make_source(azure_vault, environ=environ_for(azure_vault, wrong))
    with fast_chain(source, retries=2) as chain, pytest.raises(BackendError) as caught:
        chain.resolve("DB_PASSWORD")
    assert caught.value.access_denied
    assert "cannot get an access token" in str(caught.value)
    assert_not_leaked(wrong, str(caught.value), "BackendError")
    assert azure_vault.count("POST", "/") == 1, "a refused client secret was retried"


def test_access_tokens_and_client_secrets_are_masked_and_never_pickled(azure_vault: FakeKeyVault) -> None:
    secret, value = canary("sp"), canary()
    azure_vault.add_client(CLIENT_ID, secret)
    azure_vault.set_secret("DB-PASSWORD", value)
    source = make_source(azure_vault, environ=environ_for(azure_vault, secret))
    assert isinstance(source.get(source.key_for("DB_PASSWORD")), Found)
    (token,) = azure_vault._tokens
    for credential in (token, secret):
        assert masking.default_masker.mask(f"<{credential}>") == f"<{masking.REPLACEMENT}>"
    data = pickle.dumps(source)
    for planted in (token, secret, value):
        assert_not_leaked(planted, data, "pickle.dumps(source)")


def test_a_certificate_service_principal_signs_a_client_assertion(
    azure_vault: FakeKeyVault, tmp_path: Path
) -> None:
    import trustme

    pem = tmp_path / "sp.pem"
    rsa = trustme.KeyType.RSA  # azure-identity signs its client assertion with RS256
    issued = trustme.CA(key_type=rsa).issue_cert("sp.example", key_type=rsa)
    pem.write_bytes(issued.private_key_pem.bytes() + issued.cert_chain_pems[0].bytes())
    azure_vault.add_certificate_client(CLIENT_ID)
    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    info = {"tenant_id": azure_vault.tenant, "client_id": CLIENT_ID, "certificate_path": str(pem)}
    source = make_source(azure_vault, credentials="AZ_SP")
    holder = EnvSource(name="sp-env", environ={"AZ_SP": json.dumps(info)})
    with fast_chain(source, holder) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value
        assert isinstance(source._credential, MaskingCredential)
        assert type(source._credential.inner).__name__ == "CertificateCredential"


def test_without_credentials_or_azure_variables_it_is_default_azure_credential(
    azure_vault: FakeKeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Managed identity is probed at AZURE_POD_IDENTITY_AUTHORITY_HOST (a closed loopback port,
    tests/_offline.py); no Azure CLI here: DefaultAzureCredential finds nothing, which is
    access denied saying where credentials could come from."""
    for variable in [v for v in os.environ if v.startswith("AZURE_") and "POD_IDENTITY" not in v]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no az, azd or pwsh to run
    source = make_source(azure_vault, environ={})
    with pytest.raises(BackendError, match="no Azure credentials") as caught:
        source.get(source.key_for("DB_PASSWORD"))
    assert caught.value.access_denied
    assert source._credential_origin == "DefaultAzureCredential"


def test_the_sdk_default_is_refused_under_a_test_override(
    azure_vault: FakeKeyVault, authchain_secrets: Any
) -> None:
    secret = canary("sp")
    azure_vault.add_client(CLIENT_ID, secret)
    source = make_source(azure_vault, environ=environ_for(azure_vault, secret))
    with pytest.raises(ConfigError, match="would read the real environment"):
        source.get(source.key_for("DB_PASSWORD"))
    assert azure_vault.count("POST", "/") == 0


def test_restricted_credentials_send_no_token(azure_vault: FakeKeyVault) -> None:
    secret = canary("sp")
    azure_vault.add_client(CLIENT_ID, secret)
    source = make_source(azure_vault, environ=environ_for(azure_vault, secret))
    source.restrict_credentials("untrusted config names the vault")
    with pytest.raises(ConfigError, match="untrusted config"):
        source.get(source.key_for("DB_PASSWORD"))
    assert azure_vault.count("POST", "/") == 0


# -- check ---------------------------------------------------------------------------------


def test_check_ok_when_the_vault_has_secrets(azure_vault: FakeKeyVault) -> None:
    azure_vault.set_secret("DB-PASSWORD", canary())
    report = make_source(azure_vault).check()
    assert (report.status, report.type) == ("ok", "azure-kv")


def test_check_says_every_lookup_would_miss_in_an_empty_vault(azure_vault: FakeKeyVault) -> None:
    report = make_source(azure_vault).check()
    assert report.status == "misconfigured"
    assert "every lookup would miss" in report.detail


def test_check_says_so_when_no_secret_has_the_prefix(azure_vault: FakeKeyVault) -> None:
    azure_vault.set_secret("other-thing", canary())
    report = make_source(azure_vault, prefix="app-").check()
    assert report.status == "misconfigured"
    assert "starts with 'app-'" in report.detail
    azure_vault.set_secret("APP-DB", canary())
    assert make_source(azure_vault, prefix="app-").check().status == "ok"


def test_check_reports_unreachable_unauthenticated_and_unlistable(azure_vault: FakeKeyVault) -> None:
    assert make_source(azure_vault, vault_url="https://127.0.0.1:9", timeout=2).check().status == (
        "unreachable"
    )
    azure_vault.add_client(CLIENT_ID, canary("right"))
    wrong = make_source(azure_vault, environ=environ_for(azure_vault, canary("wrong")))
    assert wrong.check().status == "unauthenticated"
    azure_vault.listing_denied = True
    report = make_source(azure_vault).check()
    assert report.status == "ok"
    assert "not allowed to list" in report.detail


def test_authchain_check_flags_a_wrong_vault(azure_vault: FakeKeyVault, tmp_path: Path) -> None:
    """The CLI, as a user runs it: a config naming the (empty, so wrong) vault."""
    secret = canary("sp")
    azure_vault.add_client(CLIENT_ID, secret)
    config = tmp_path / "authchain.toml"
    config.write_text(
        "[sources.kv]\n"
        'type = "azure-kv"\n'
        f'vault_url = "{azure_vault.url}"\n'
        f'authority = "{azure_vault.url}"\n'
        f"ca_bundle = {json.dumps(azure_vault.ca_file)}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHCHAIN_", "AZURE_CLIENT"))}
    env.update(environ_for(azure_vault, secret), AUTHCHAIN_CONFIG=str(config))
    result = subprocess.run(
        [sys.executable, "-m", "authchain.cli", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "misconfigured" in result.stdout
    assert "every lookup would miss" in result.stdout
    assert_not_leaked(secret, result.stdout + result.stderr, "authchain check output")
