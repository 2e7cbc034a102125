"""A server that answers with a redirect to another origin never gets a credential sent there.

The attack: whatever answers at the configured address (a server, or anything on
a shared network in front of a plain-http address) replies ``307 Location:
http://other-host:port/...``. requests strips only ``Authorization`` on a
cross-host redirect, so hvac's ``X-Vault-Token`` (and an AppRole login's body,
re-posted on 307/308) would follow to the other host. Each test here points a
backend at a redirecting listener on 127.0.0.1 whose target is a second listener
on another port (another origin), plants fresh canaries as the credentials, and
asserts that nothing reaches the second listener, and that the error says where
the server tried to send the request without quoting any credential.

Per backend: Vault (hvac over requests) and Azure Key Vault (azure-core's pipeline)
refuse any redirect to another origin (scheme, host and port), https → http
included, before the hop is sent; a redirect on the same origin is still followed
(against the real OpenBao, and the HTTPS Key Vault fake). The Entra token endpoint
(azure-identity's pipeline follows no redirect), AWS (botocore follows none) and
Prefect (httpx drops ``Authorization``, where the API key travels, off-origin) are
held to the same rule. GCP speaks gRPC, which has no redirects.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authchain import AuthChainError, BackendError, Chain
from authchain.backends.env.source import EnvSource
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.servers.redirect import Answer, Arrived, Listener, TestCA, json_answer, redirect_to

pytestmark = pytest.mark.timeout(60)

STATUSES = (301, 302, 303, 307, 308)
Start = Callable[..., Listener]


def assert_nothing_arrived(target: Listener, *planted: str) -> None:
    """The other origin saw no request at all (and so none of the planted values)."""
    seen = target.seen()
    for request in seen:
        for value in planted:
            assert_not_leaked(value, request.wire(), f"a request to the other origin ({request.path})")
    assert seen == [], f"{len(seen)} request(s) reached the other origin"


def assert_says_where(error: BaseException, target: Listener, *planted: str) -> None:
    text = str(error)
    for value in planted:
        assert_not_leaked(value, text, "the error message")
    assert target.origin in text, text


# -- Vault ---------------------------------------------------------------------------------------


def vault_chain(url: str, *, auth: str = "token", **settings: Any) -> tuple[Chain, dict[str, str]]:
    from authchain.backends.vault.source import VaultSource

    creds = {
        "VAULT_TOKEN": canary("token"),
        "VAULT_ROLE_ID": canary("role"),
        "VAULT_SECRET_ID": canary("sid"),
    }
    source = VaultSource(url=url, auth=auth, timeout=5.0, name="vault", **settings)
    return Chain([source, EnvSource(environ=dict(creds), name="creds")], retries=0, cache_ttl=0), creds


@pytest.mark.parametrize("auth", ["token", "approle"])
@pytest.mark.parametrize("status", STATUSES)
def test_vault_redirect_to_another_origin_sends_no_credential(
    listener: Start, status: int, auth: str
) -> None:
    other = listener(json_answer())
    front = listener(redirect_to(status, lambda: other.origin))
    namespace = canary("ns")
    chain, creds = vault_chain(front.url, auth=auth, namespace=namespace)
    with pytest.raises(BackendError) as raised:
        chain.resolve("DB_PASSWORD")
    assert front.seen(), "the configured address was never asked"
    planted = (*creds.values(), namespace)
    assert_nothing_arrived(other, *planted)
    assert_says_where(raised.value, other, *planted)
    assert "active node" in str(raised.value)
    assert not raised.value.retryable


def test_vault_https_to_http_downgrade_is_refused(listener: Start, tls_ca: TestCA) -> None:
    other = listener(json_answer())
    front = listener(redirect_to(307, lambda: other.origin), tls=tls_ca.context())
    chain, creds = vault_chain(front.url, ca_cert=str(tls_ca.ca_file))
    with pytest.raises(BackendError) as raised:
        chain.resolve("DB_PASSWORD")
    assert front.seen(), "the configured address was never asked"
    assert_nothing_arrived(other, *creds.values())
    assert_says_where(raised.value, other, *creds.values())


def test_vault_https_redirect_to_another_port_is_refused(listener: Start, tls_ca: TestCA) -> None:
    """Another port of the same host over https is another origin: another service may answer there."""
    other = listener(json_answer(), tls=tls_ca.context())
    front = listener(redirect_to(307, lambda: other.origin), tls=tls_ca.context())
    chain, creds = vault_chain(front.url, ca_cert=str(tls_ca.ca_file))
    with pytest.raises(BackendError):
        chain.resolve("DB_PASSWORD")
    assert front.seen()
    assert_nothing_arrived(other, *creds.values())


def test_vault_client_refuses_the_redirect_too(listener: Start) -> None:
    """``vault_client()`` hands out the source's hvac client: its session has the same guard."""
    from authchain.clients import clear, vault_client

    other = listener(json_answer())
    front = listener(redirect_to(307, lambda: other.origin))
    token = canary("token")
    chain = Chain([EnvSource(environ={"VAULT_TOKEN": token}, name="creds")], retries=0)
    clear()
    try:
        client = vault_client(url=front.url, chain=chain)
        with pytest.raises(BackendError):
            client.secrets.kv.v2.read_secret_version(
                path="app", mount_point="secret", raise_on_deleted_version=True
            )
    finally:
        clear()
    assert front.seen()
    assert_nothing_arrived(other, token)


def _forward_to(upstream: str) -> Callable[[Arrived, str], Answer]:
    """Pass a request on to ``upstream`` (``host:port``) as it came, and its answer back."""

    def forward(request: Arrived, path: str) -> Answer:
        connection = http.client.HTTPConnection(upstream, timeout=10)
        try:
            headers = {key: value for key, value in request.headers if key.lower() != "host"}
            connection.request(request.method, path, body=request.body or None, headers=headers)
            response = connection.getresponse()
            kept = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "location")}
            return response.status, kept, response.read()
        finally:
            connection.close()

    return forward


def test_vault_redirect_on_the_same_origin_is_followed(listener: Start, openbao: Any) -> None:
    """A redirect to another path of the configured address (a proxy's rewrite) still works,
    token and all, against the real OpenBao."""
    value = canary("value")
    openbao.put("t/redirect/DB_PASSWORD", {"DB_PASSWORD": value})
    forward = _forward_to(openbao.url.removeprefix("http://"))
    front: Listener

    def answer(request: Arrived) -> Answer:
        if request.path.startswith("/moved/"):
            return forward(request, request.path.removeprefix("/moved"))
        return 307, {"Location": f"{front.origin}/moved{request.path}"}, b""

    front = listener(answer)
    from authchain.backends.vault.source import VaultSource

    source = VaultSource(url=front.url, path_prefix="t/redirect", timeout=5.0, name="vault")
    creds = EnvSource(environ={"VAULT_TOKEN": openbao.tokens["reader"]}, name="creds")
    chain = Chain([source, creds], retries=0, cache_ttl=0)
    assert chain.resolve("DB_PASSWORD").get_secret_value() == value
    paths = [request.path for request in front.seen()]
    assert any(path.startswith("/moved/v1/secret/data/t/redirect/") for path in paths), paths


# -- Azure Key Vault and its Entra token endpoint ---------------------------------------------------


def _azure_source(fake: Any, ca_file: str, tmp_path: Any, **settings: Any) -> tuple[Any, str]:
    """A source of the fake vault whose service principal's secret is a fresh canary; the CA
    file trusts the fake and the test's own CA (the other origin's certificate)."""
    pytest.importorskip("azure.keyvault.secrets", reason="needs the azure extra")
    from authchain.backends.azure.source import AzureKeyVaultSource

    bundle = tmp_path / "both-cas.pem"
    bundle.write_bytes(Path(fake.ca_file).read_bytes() + Path(ca_file).read_bytes())
    client_id, secret = "44444444-5555-4666-8777-999999999999", canary("azure-sp")
    fake.add_client(client_id, secret)
    environ = {"AZURE_TENANT_ID": fake.tenant, "AZURE_CLIENT_ID": client_id, "AZURE_CLIENT_SECRET": secret}
    source = AzureKeyVaultSource(
        vault_url=fake.url,
        vault_name="redirect-vault",
        authority=fake.url,
        ca_bundle=str(bundle),
        environ=environ,
        timeout=5.0,
        name="azure-kv",
        **settings,
    )
    return source, secret


def _hostile_vault(fake: Any) -> Callable[[Arrived], Answer]:
    """The other origin plays Key Vault: a request without a token gets the challenge that
    would make the SDK fetch one (from the real authority) and send it again."""

    def answer(request: Arrived) -> Answer:
        if not any(key.lower() == "authorization" for key, _ in request.headers):
            challenge = f'Bearer authorization="{fake.url}/{fake.tenant}", resource="https://vault.azure.net"'
            return 401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"}, b"{}"
        return json_answer(200, {"value": "from-the-other-origin", "id": "x"})(request)

    return answer


@pytest.mark.parametrize("tls", [True, False], ids=["https", "downgrade-to-http"])
@pytest.mark.parametrize("status", STATUSES)
def test_azure_vault_redirect_to_another_origin_is_refused(
    listener: Start, tls_ca: TestCA, azure_vault: Any, tmp_path: Any, status: int, tls: bool
) -> None:
    """azure-core alone would drop the bearer token off-domain (and refuse plain http), but still
    send the hop, naming the secret, and report the answer as access denied or an unreachable
    vault (retried). The source's redirect policy refuses the hop before it is sent."""
    other = listener(_hostile_vault(azure_vault), tls=tls_ca.context() if tls else None)
    source, secret = _azure_source(azure_vault, str(tls_ca.ca_file), tmp_path)
    azure_vault.redirects["secrets"] = (status, other.origin)
    try:
        with pytest.raises(BackendError) as raised:
            Chain([source], retries=0, cache_ttl=0).resolve("DB_PASSWORD")
    finally:
        source.close()
    with azure_vault._lock:
        tokens = list(azure_vault._tokens)
    assert tokens, "the source never got a token, so the redirect was never reached"
    assert_nothing_arrived(other, secret, *tokens)
    assert_says_where(raised.value, other, secret, *tokens)
    assert not raised.value.retryable
    assert not raised.value.access_denied


def test_azure_redirect_on_the_same_origin_is_followed(
    azure_vault: Any, tls_ca: TestCA, tmp_path: Any
) -> None:
    """The fake redirects a read to the same path on itself, once: followed, token and all."""
    source, _ = _azure_source(azure_vault, str(tls_ca.ca_file), tmp_path)
    value = canary("value")
    azure_vault.set_secret("DB-PASSWORD", value)
    azure_vault.redirects["secrets"] = (307, azure_vault.url)  # answered once
    try:
        assert Chain([source], retries=0, cache_ttl=0).resolve("DB_PASSWORD").get_secret_value() == value
    finally:
        source.close()
    assert "secrets" not in azure_vault.redirects, "the redirect was never answered"
    assert azure_vault.count("GET", "/secrets/DB-PASSWORD") >= 2  # the redirected read and its hop


@pytest.mark.parametrize("status", STATUSES)
def test_entra_token_endpoint_redirect_posts_no_client_secret(
    listener: Start, tls_ca: TestCA, azure_vault: Any, tmp_path: Any, status: int
) -> None:
    """azure-identity's pipeline follows no redirect: the client secret is posted once, to the
    configured authority, and never re-posted where a 307/308 points."""
    other = listener(json_answer(), tls=tls_ca.context())
    source, secret = _azure_source(azure_vault, str(tls_ca.ca_file), tmp_path)
    azure_vault.redirects["token"] = (status, other.origin)
    try:
        with pytest.raises(BackendError) as raised:
            Chain([source], retries=0, cache_ttl=0).resolve("DB_PASSWORD")
    finally:
        source.close()
    assert azure_vault.count("POST", "/"), "the token endpoint was never asked"
    assert_nothing_arrived(other, secret)
    assert_not_leaked(secret, str(raised.value), "the error message")


# -- AWS (botocore) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["aws-sm", "aws-ssm"])
@pytest.mark.parametrize("status", STATUSES)
def test_aws_redirect_is_not_followed(listener: Start, status: int, kind: str) -> None:
    """botocore follows no redirect (only S3's own region redirects, which these services do not
    have): the signed request and its session token go to the configured endpoint only."""
    pytest.importorskip("boto3", reason="needs the aws extra")
    import json

    from authchain.backends.aws.source import AWSParameterStoreSource, AWSSecretsManagerSource

    other = listener(json_answer())
    front = listener(redirect_to(status, lambda: other.origin))
    keys = {
        "aws_access_key_id": "AKIA" + canary("id").upper().replace("-", "")[:16],
        "aws_secret_access_key": canary("secret"),
        "aws_session_token": canary("session"),
    }
    settings: dict[str, Any] = {"endpoint_url": front.url, "region": "eu-west-1", "credentials": "AWS_CREDS"}
    source: Any = (
        AWSSecretsManagerSource(name="aws", **settings)
        if kind == "aws-sm"
        else AWSParameterStoreSource(name="aws", **settings)
    )
    creds = EnvSource(environ={"AWS_CREDS": json.dumps(keys)}, name="creds")
    try:
        with pytest.raises(BackendError) as raised:
            Chain([source, creds], retries=0, cache_ttl=0).resolve("DB_PASSWORD")
    finally:
        source.close()
    assert front.seen(), "the configured endpoint was never asked"
    assert_nothing_arrived(other, *keys.values())
    for value in keys.values():
        assert_not_leaked(value, str(raised.value), "the error message")


# -- Prefect (httpx) --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_prefect_redirect_carries_no_api_key(listener: Start, status: int) -> None:
    """Prefect's client follows redirects (outside its unit-test mode) with httpx, which drops
    ``Authorization`` (where the API key travels) when a redirect leaves the origin."""
    pytest.importorskip("prefect", reason="needs the prefect extra")
    from prefect.settings import (
        PREFECT_API_KEY,
        PREFECT_API_URL,
        PREFECT_TESTING_UNIT_TEST_MODE,
        temporary_settings,
    )

    from authchain.backends.prefect.source import PrefectSource

    other = listener(json_answer(404, {"detail": "not here"}))
    front = listener(redirect_to(status, lambda: other.origin))
    key = canary("pnu")
    source = PrefectSource(only_in_run=False, legacy_env=False, name="prefect")
    updates = {
        PREFECT_API_URL: f"{front.url}/api",
        PREFECT_API_KEY: key,
        PREFECT_TESTING_UNIT_TEST_MODE: False,
    }
    with temporary_settings(updates=updates):
        try:
            Chain([source], retries=0, cache_ttl=0).resolve("DB_PASSWORD")
        except AuthChainError as error:
            assert_not_leaked(key, str(error), "the error message")
    assert front.seen(), "the configured API was never asked"
    assert any(request.header("authorization") for request in front.seen()), "no key was sent at all"
    for request in other.seen():
        assert_not_leaked(key, request.wire(), f"a request to the other origin ({request.path})")
        assert request.header("authorization") is None, request.path


# -- the rule itself --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target", "followed"),
    [
        ("http://vault:8200/v1/a", "http://vault:8200/v1/b", True),
        ("https://Vault.Example/v1/a", "https://vault.example:443/v1/b", True),  # default port, case
        ("http://vault/v1/a", "http://vault:80/x", True),
        ("http://vault:8200/v1/a", "http://vault:8201/v1/a", False),  # another port
        ("http://vault:8200/v1/a", "http://other:8200/v1/a", False),  # another host
        ("https://vault:8200/v1/a", "http://vault:8200/v1/a", False),  # downgrade
        ("http://vault:8200/v1/a", "https://vault:8200/v1/a", False),  # another scheme
        ("https://vault:8200/v1/a", "https://vault:8200@other/v1/a", False),  # userinfo trick
        ("http://[::1]:8200/v1/a", "http://[::1]:8201/v1/a", False),
    ],
)
def test_a_redirect_is_followed_only_on_the_same_origin(current: str, target: str, followed: bool) -> None:
    from authchain.backends._net import refuse_other_origin

    if followed:
        refuse_other_origin(current, target, "server", "advice")
        return
    with pytest.raises(BackendError, match="redirected a request to"):
        refuse_other_origin(current, target, "server", "advice")
