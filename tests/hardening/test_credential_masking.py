"""Credentials the library uses but never resolved as a value are masked too (issue 13, items 9-10).

The chain registers what it resolves; these tests are about what it does
not: a Vault token hvac reads itself (``~/.vault-token``, ``VAULT_TOKEN``
behind a prefixed env source), login tokens, the contents of ``jwt_path``,
AWS keys and session tokens boto3 finds (shared credentials file,
``AssumeRole``), Google service-account keys and access tokens. Each test
plants a fresh canary credential on a real server (OpenBao, moto, a
loopback token endpoint), makes the library use it, and then proves that
the process-wide masker hides it and that it is in no exception, log
record, ``explain`` or ``check`` output, in any encoding a program prints.
``--debug`` is run as a real ``python -m authchain.cli`` process.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

import authchain
from authchain import BackendError, Chain, masking
from authchain.backends.env.source import EnvSource
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests import _offline
from tests.hardening.conftest import make_backend, token

pytestmark = pytest.mark.timeout(180)

WORKTREE = Path(__file__).resolve().parents[2]


# -- what "masked and nowhere" means ----------------------------------------------------------


def forms(value: str) -> dict[str, str]:
    """The value as programs print it: raw, base64 (standard, URL-safe), URL-encoded, JSON-escaped."""
    raw = value.encode()
    return {
        "raw": value,
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "urlsafe base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "URL-encoded": quote(value, safe=""),
        "URL-encoded (plus)": quote_plus(value, safe=""),
        "JSON-escaped": json.dumps(value)[1:-1],
    }


def assert_nowhere(value: str, text: str | bytes, where: str) -> None:
    for form, encoded in forms(value).items():
        assert_not_leaked(encoded, text, f"{where} ({form})")


def assert_registered(value: str, what: str) -> None:
    """The process-wide masker hides ``value`` in every form (the test fails without showing it)."""
    for form, encoded in forms(value).items():
        if masking.default_masker.mask(f"<{encoded}>") != "<***>":
            pytest.fail(f"{what} is not registered with the masker ({form})", pytrace=False)


def error_text(error: BaseException) -> str:
    """The error as every reporter prints it: str, repr, args, the traceback with its causes."""
    return "\n".join([str(error), repr(error), repr(error.args), *traceback.format_exception(error)])


def record_texts(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in records)


def check_text(chain: Chain) -> str:
    return "\n".join(f"{r.source} {r.status} {r.detail}" for r in chain.check())


def session_token() -> str:
    """A value shaped like an STS session token: base64 with '+', '/' and '=' (URL-encoding changes it)."""
    while True:
        value = "FwoG" + base64.b64encode(os.urandom(60)).decode()
        if "+" in value and "/" in value:
            return value


@pytest.fixture
def logs(debug_sdk_logging: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """Every DEBUG record (the SDKs' own included), masked as the library promises."""
    authchain.install_log_masking()
    debug_sdk_logging.clear()
    return debug_sdk_logging


# -- Vault / OpenBao ------------------------------------------------------------------------------


def _vault_token(openbao: Any, value: str) -> str:
    """Create a reader token whose id is ``value`` (only a root token may choose an id)."""
    created = openbao.client().auth.token.create(id=value, policies=["reader"], ttl="1h")
    assert created["auth"]["client_token"] == value
    return value


def _echo(proxy: Any, body: dict[str, Any], status: int = 500) -> None:
    proxy.fail(
        "respond", status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


@pytest.mark.parametrize("where", ["~/.vault-token", "VAULT_TOKEN behind a prefixed env source"])
def test_a_token_hvac_reads_itself_is_masked(
    where: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: list[logging.LogRecord],
) -> None:
    """The token never went through the chain: hvac's own fallback read it."""
    openbao = request.getfixturevalue("openbao")
    proxy = request.getfixturevalue("tcp_proxy")(tuple(openbao.url.rsplit("/", 1)[-1].split(":")))
    value = _vault_token(openbao, canary("vault-token"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    if where == "~/.vault-token":
        (home / ".vault-token").write_text(value + "\n", encoding="utf-8")
    else:
        monkeypatch.setenv("VAULT_TOKEN", value)  # the chain asks APP_VAULT_TOKEN: never finds it
    monkeypatch.setenv("VAULT_ADDR", proxy.url)  # the endpoint the environment names
    backend = make_backend("vault", request, url=None)
    secret = canary("stored")
    backend.put("CM_SECRET", secret)
    chain = Chain([backend.source, EnvSource(prefix="APP_", name="env")], cache_ttl=0, retries=0)

    assert chain.resolve("CM_SECRET").get_secret_value() == secret
    assert_registered(value, f"the token hvac read from {where}")

    # The server (or a proxy) echoes the token: bare, and as the header it came in.
    _echo(proxy, {"errors": [f"token {value} is not allowed here", f"X-Vault-Token: {value}"]})
    with pytest.raises(BackendError) as caught:
        chain.resolve("CM_SECRET")
    proxy.heal()
    assert_nowhere(value, error_text(caught.value), "the BackendError of an echoing server")
    assert_nowhere(value, str(chain.explain("CM_SECRET")), "explain")
    assert_nowhere(value, check_text(chain), "check")
    assert_nowhere(value, record_texts(logs), "the DEBUG log records")


@pytest.mark.parametrize("method", ["approle", "jwt", "kubernetes"])
def test_a_login_token_is_masked_whatever_the_login_method(
    method: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    logs: list[logging.LogRecord],
) -> None:
    """Each login method on the real server: the token it returns is registered, and an
    echo of it (or of what the login sent) reaches no error, explain, check or log."""
    openbao = request.getfixturevalue("openbao")
    proxy = request.getfixturevalue("tcp_proxy")(tuple(openbao.url.rsplit("/", 1)[-1].split(":")))
    mount, sign = request.getfixturevalue("jwt_mount")
    if method == "approle":
        role_id, secret_id = openbao.approles["app"]
        settings: dict[str, Any] = {"auth": "approle", "role_id": "CM_ROLE_ID", "secret_id": "CM_SECRET_ID"}
        environ = {"CM_ROLE_ID": role_id, "CM_SECRET_ID": secret_id}
        sent = secret_id
    elif method == "jwt":
        sent = sign()  # what the login sends: a credential as much as the token it returns
        settings = {"auth": "jwt", "role": "ci", "auth_mount": mount, "jwt": "CM_JWT"}
        environ = {"CM_JWT": sent}
    else:  # kubernetes: the same login body, the service-account token read from a file
        sent = sign()
        token_file = tmp_path / "sa-token"
        token_file.write_text(sent, encoding="utf-8")
        settings = {"auth": "kubernetes", "role": "ci", "auth_mount": mount, "jwt_path": str(token_file)}
        environ = {}
    backend = make_backend("vault", request, url=proxy.url, **settings)
    secret = canary("stored")
    backend.put("CM_SECRET", secret)
    credentials = EnvSource(environ=environ, name="creds")
    chain = Chain([backend.source, credentials], cache_ttl=0, retries=0)

    assert chain.resolve("CM_SECRET").get_secret_value() == secret
    login_token = backend.source._session_token  # what the server issued: no source resolved it
    assert login_token
    assert_registered(login_token, f"the {method} login token")

    _echo(proxy, {"errors": [f"upstream refused {login_token}; X-Vault-Token={login_token}"]}, status=502)
    with pytest.raises(BackendError) as caught:
        chain.resolve("CM_SECRET")
    proxy.heal()
    for value, what in ((login_token, "login token"), (sent, f"{method} login credential")):
        assert_nowhere(value, error_text(caught.value), f"the BackendError echoing the {what}")
        assert_nowhere(value, str(chain.explain("CM_SECRET")), f"explain ({what})")
        assert_nowhere(value, check_text(chain), f"check ({what})")
        assert_nowhere(value, record_texts(logs), f"the DEBUG log records ({what})")


@pytest.mark.parametrize("auth", ["jwt", "kubernetes"])
@pytest.mark.parametrize("answer", ["no such auth method", "a server echoing the JWT"])
def test_the_contents_of_jwt_path_are_masked(
    answer: str, auth: str, request: pytest.FixtureRequest, tmp_path: Path, logs: list[logging.LogRecord]
) -> None:
    openbao = request.getfixturevalue("openbao")
    proxy = request.getfixturevalue("tcp_proxy")(tuple(openbao.url.rsplit("/", 1)[-1].split(":")))
    jwt = ".".join(base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=") for _ in range(3))
    jwt_file = tmp_path / "token.jwt"
    jwt_file.write_text(jwt + "\n", encoding="utf-8")
    backend = make_backend(
        "vault",
        request,
        url=proxy.url,
        auth=auth,
        role="cm",
        auth_mount=f"{auth}-{token()}",
        jwt_path=str(jwt_file),
    )
    if answer == "a server echoing the JWT":
        _echo(proxy, {"errors": [f"error validating token {jwt}: bad signature"]}, status=400)
    chain = Chain([backend.source], cache_ttl=0, retries=0)

    with pytest.raises(BackendError) as caught:
        chain.resolve("CM_SECRET")
    proxy.heal()
    assert caught.value.access_denied
    assert_registered(jwt, "the JWT read from jwt_path")
    assert_nowhere(jwt, error_text(caught.value), "the login error")
    assert_nowhere(jwt, record_texts(logs), "the DEBUG log records")


# -- AWS (moto) ---------------------------------------------------------------------------------


def _shared_credentials(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Fresh canary keys in a shared credentials file, and nothing in the environment.

    The moto fixture comes first: starting the session's server sets made-up keys in the environment.
    """
    request.getfixturevalue("moto")
    keys = {
        "aws_access_key_id": "AKIA" + secrets.token_hex(8).upper(),
        "aws_secret_access_key": base64.b64encode(os.urandom(30)).decode(),
        "aws_session_token": session_token(),
    }
    path = tmp_path / "aws-credentials"
    path.write_text("[default]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()), encoding="utf-8")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return keys


@pytest.mark.parametrize("kind", ["aws-sm", "aws-ssm"])
def test_aws_keys_boto3_finds_in_a_shared_credentials_file_are_masked(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: list[logging.LogRecord],
) -> None:
    keys = _shared_credentials(request, tmp_path, monkeypatch)
    backend = make_backend(kind, request)  # no `credentials`: boto3's own provider chain
    secret = canary("stored")
    backend.put("CM_SECRET", secret)
    logs.clear()
    chain = Chain([backend.source], cache_ttl=0, retries=0)

    assert chain.resolve("CM_SECRET").get_secret_value() == secret
    for name, value in keys.items():
        assert_registered(value, f"{name} from the shared credentials file")
    assert any("x-amz-security-token" in r.getMessage().lower() for r in logs), (
        "botocore logged the signed request (the records this test is about)"
    )

    proxy = backend.extras["proxy"]
    token_value = keys["aws_session_token"]
    _echo(
        proxy,
        {
            "__type": "InternalFailure",
            "message": f"bad token {token_value} (X-Amz-Security-Token: {token_value})",
        },
    )
    with pytest.raises(BackendError) as caught:
        chain.resolve("CM_SECRET")
    proxy.heal()
    explained, checked = str(chain.explain("CM_SECRET")), check_text(chain)
    for name, value in keys.items():
        assert_nowhere(value, error_text(caught.value), f"the BackendError echoing the {name}")
        assert_nowhere(value, explained, f"explain ({name})")
        assert_nowhere(value, checked, f"check ({name})")
        assert_nowhere(value, record_texts(logs), f"the DEBUG log records ({name})")


@pytest.mark.parametrize("user", ["aws-sm source", "aws_client factory"])
def test_credentials_from_assume_role_are_masked_before_botocore_logs_them(
    user: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: list[logging.LogRecord],
) -> None:
    """A profile with ``role_arn``: boto3 calls STS AssumeRole itself; the answer is logged at DEBUG.

    Through the factory no chain fetch holds the records back: STS's answer
    is masked only if its credentials were registered before botocore logged it.
    """
    base = _shared_credentials(request, tmp_path, monkeypatch)
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile cm-role]\nrole_arn = arn:aws:iam::123456789012:role/cm-reader\n"
        "source_profile = default\nregion = us-east-1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    backend = make_backend("aws-sm", request, profile="cm-role")
    secret = canary("stored")
    backend.put("CM_SECRET", secret)
    logs.clear()
    chain = Chain([backend.source], cache_ttl=0, retries=0)

    if user == "aws-sm source":
        assert chain.resolve("CM_SECRET").get_secret_value() == secret
        client = backend.source._client()
    else:
        from authchain.clients import aws_client, clear

        clear()
        request.addfinalizer(clear)
        client = aws_client(
            "secretsmanager", profile_name="cm-role", endpoint_url=backend.extras["moto"].url, chain=chain
        )
        secret_id = backend.extras["prefix"] + "CM_SECRET"
        assert client.get_secret_value(SecretId=secret_id)["SecretString"] == secret
    signer = client._request_signer
    assumed = signer._credentials.get_frozen_credentials()
    assert assumed.access_key != base["aws_access_key_id"], "the request was signed with AssumeRole's keys"
    issued = {
        "access key": assumed.access_key,
        "secret key": assumed.secret_key,
        "session token": assumed.token,
    }
    sts_bodies = [r for r in logs if r.name == "botocore.parsers" and "AssumeRole" in r.getMessage()]
    assert sts_bodies, "botocore logged STS's answer (the record this test is about)"
    for what, value in {**issued, **{f"source profile {k}": v for k, v in base.items()}}.items():
        assert_registered(value, f"the {what}")
        assert_nowhere(value, record_texts(logs), f"the DEBUG log records ({what})")
        assert_nowhere(value, str(chain.explain("CM_SECRET")), f"explain ({what})")
        assert_nowhere(value, check_text(chain), f"check ({what})")


@pytest.mark.parametrize("how", ["boto3's provider chain", "explicit credentials"])
def test_credentials_of_aws_client_factories_are_masked(
    how: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: list[logging.LogRecord],
) -> None:
    from authchain.clients import aws_client, clear
    from tests.servers.moto_server import REGION

    moto = request.getfixturevalue("moto")
    keys = _shared_credentials(request, tmp_path, monkeypatch)
    clear()  # a client cached by another test would hold the credentials it found then
    request.addfinalizer(clear)
    explicit = None
    if how == "explicit credentials":
        explicit = {
            "ACCESS_KEY": "AKIA" + secrets.token_hex(8).upper(),
            "SECRET_ACCESS_KEY": base64.b64encode(os.urandom(30)).decode(),
            "SESSION_TOKEN": session_token(),
        }
        keys = dict(zip(keys, explicit.values(), strict=True))
    secret = canary("stored")
    name = f"cm/{token()}"
    moto.client("secretsmanager").create_secret(Name=name, SecretString=secret)
    client = aws_client(
        "secretsmanager",
        credentials=explicit,
        region_name=REGION,
        endpoint_url=moto.url,
        chain=Chain([EnvSource(environ={}, name="empty")]),
    )
    if explicit is not None:  # masked as soon as they are given, before any request
        for key, value in keys.items():
            assert_registered(value, f"explicit {key}")
    assert client.get_secret_value(SecretId=name)["SecretString"] == secret
    for key, value in keys.items():
        assert_registered(value, f"{key} ({how})")
        assert_nowhere(value, record_texts(logs), f"the DEBUG log records ({key})")


def test_header_looking_fragments_in_sdk_error_text_are_scrubbed() -> None:
    """A value the library never saw (a header someone else set) still loses its value in error text."""
    from authchain.backends.aws.source import _clean
    from authchain.backends.gcp.source import _quote
    from authchain.backends.vault.source import _server_says

    unknown = session_token()
    texts = [
        f"x-amz-security-token:{unknown}\nhost:example",
        f"{{'X-Amz-Security-Token': b'{unknown}', 'Host': 'h'}}",
        f"request had X-Vault-Token: {unknown} (denied)",
        f'{{"X-Vault-Token": "{unknown}"}}',
        f"Authorization: Bearer {unknown}",
        f"https://bucket.example/key?X-Amz-Security-Token={quote(unknown, safe='')}&X-Amz-Date=1",
    ]
    for text in texts:
        for scrub, where in ((_clean, "aws"), (_quote, "gcp"), (lambda t: _server_says(_errors(t)), "vault")):
            assert_nowhere(unknown, scrub(text), f"{where} error text")
            assert "***" in scrub(text)


def _errors(text: str) -> Exception:
    error = Exception()
    error.errors = [text]  # type: ignore[attr-defined]
    return error


# -- Google ---------------------------------------------------------------------------------------


class _TokenEndpoint:
    """A loopback OAuth token endpoint: answers every POST with one access token."""

    def __init__(self, access_token: str) -> None:
        self.access_token = access_token
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests += 1
                body = json.dumps(
                    {"access_token": outer.access_token, "expires_in": 3600, "token_type": "Bearer"}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def token_endpoint() -> Iterator[_TokenEndpoint]:
    endpoint = _TokenEndpoint(canary("ya29"))
    try:
        yield endpoint
    finally:
        endpoint.stop()


def _service_account(token_uri: str) -> dict[str, str]:
    """A service-account key made for this test (a fresh RSA key: the private key is the canary)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "authchain-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": "cm@authchain-test.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)),
        "token_uri": token_uri,
    }


def _pem_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and "-----" not in line and len(line) >= 16]


@pytest.mark.parametrize("how", ["gcp-sm source, key through the chain", "gcp_credentials, explicit key"])
def test_google_service_account_keys_and_access_tokens_are_masked(
    how: str,
    request: pytest.FixtureRequest,
    token_endpoint: _TokenEndpoint,
    logs: list[logging.LogRecord],
) -> None:
    pytest.importorskip("google.cloud.secretmanager_v1", reason="needs the gcp extra")
    import google.auth.transport.requests
    from google.oauth2 import service_account

    from authchain.backends.gcp.source import GCPSecretManagerSource
    from authchain.clients import gcp_credentials

    info = _service_account(token_endpoint.url)
    if how.startswith("gcp-sm source"):
        fake = request.getfixturevalue("gcp_fake")
        source = GCPSecretManagerSource(
            credentials="CM_SA_KEY", endpoint=fake.endpoint, environ={}, name="gcp-sm", timeout=5.0
        )
        request.addfinalizer(source.close)
        chain = Chain([source, EnvSource(environ={"CM_SA_KEY": json.dumps(info)}, name="creds")], retries=0)
        secret = canary("stored")
        fake.set_secret("CM_SECRET", secret, project="authchain-test")
        assert chain.resolve("CM_SECRET").get_secret_value() == secret  # project from the key
        credentials = source._credentials()[0]
    else:
        chain = Chain([EnvSource(environ={}, name="empty")])
        credentials = gcp_credentials(credentials=info, chain=chain)  # never went through a source
    assert isinstance(credentials, service_account.Credentials)

    transport = google.auth.transport.requests.Request()
    credentials.refresh(transport)  # what the gRPC transport does before the first call
    assert token_endpoint.requests == 1
    assert credentials.token == token_endpoint.access_token
    # The client library copies the credentials to use self-signed JWTs: the copy registers too.
    self_signed = credentials.with_always_use_jwt_access(True)
    self_signed.refresh(transport)

    planted = {
        "private key": info["private_key"],
        "access token": token_endpoint.access_token,
        "self-signed JWT": self_signed.token,
        **{f"private key line {n}": line for n, line in enumerate(_pem_lines(info["private_key"]))},
    }
    for what, value in planted.items():
        assert_registered(value, f"the {what}")
    for what, value in list(planted.items())[:3]:
        assert_nowhere(value, record_texts(logs), f"the DEBUG log records ({what})")
        assert_nowhere(value, str(chain.explain("CM_SECRET")), f"explain ({what})")


@pytest.mark.parametrize("kind", ["service_account", "authorized_user"])
def test_google_application_default_credentials_are_masked(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    token_endpoint: _TokenEndpoint,
    logs: list[logging.LogRecord],
) -> None:
    """ADC (``google.auth.default()``, never through the chain): the file's secrets and each access token.

    An authorized-user file's token endpoint is always Google's, so that kind is
    never refreshed here (no traffic leaves 127.0.0.1): its refresh token and
    client secret are what it holds.
    """
    pytest.importorskip("google.cloud.secretmanager_v1", reason="needs the gcp extra")
    import google.auth.transport.requests

    from authchain.backends.gcp.source import GCPSecretManagerSource

    if kind == "service_account":
        info: dict[str, str] = _service_account(token_endpoint.url)
        planted = {"private key": info["private_key"]}
    else:
        info = {
            "type": "authorized_user",
            "client_id": f"{secrets.token_hex(6)}.apps.googleusercontent.com",
            "client_secret": canary("client-secret"),
            "refresh_token": canary("refresh-token"),
        }
        planted = {"client secret": info["client_secret"], "refresh token": info["refresh_token"]}
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    source = GCPSecretManagerSource(project="authchain-test", environ={}, name="gcp-sm")
    credentials = source._credentials()[0]
    if kind == "service_account":
        credentials.refresh(google.auth.transport.requests.Request())
        assert credentials.token == token_endpoint.access_token
        planted["access token"] = token_endpoint.access_token
    for what, value in planted.items():
        assert_registered(value, f"the ADC {what}")
        assert_nowhere(value, record_texts(logs), f"the DEBUG log records ({what})")


# -- Prefect --------------------------------------------------------------------------------------


def test_the_prefect_api_key_and_auth_string_are_masked(
    request: pytest.FixtureRequest, logs: list[logging.LogRecord]
) -> None:
    """Prefect's client sends them (Bearer / Basic) from its own settings; the chain never saw them."""
    backend = make_backend("prefect", request)
    import prefect.settings as ps

    secret = canary("stored")
    backend.put("CM_SECRET", secret)
    key, auth = canary("pnu"), f"admin:{canary('pass')}"
    chain = Chain([backend.source], cache_ttl=0, retries=0)
    with ps.temporary_settings(updates={ps.PREFECT_API_KEY: key, ps.PREFECT_API_AUTH_STRING: auth}):
        assert chain.resolve("CM_SECRET").get_secret_value() == secret
        explained, checked = str(chain.explain("CM_SECRET")), check_text(chain)
    for what, value in {"API key": key, "auth string": auth}.items():
        assert_registered(value, f"the Prefect {what}")
        assert_nowhere(value, record_texts(logs), f"the DEBUG log records ({what})")
        assert_nowhere(value, explained + checked, f"explain and check ({what})")


# -- `authchain --debug` in a real process ------------------------------------------------------


@pytest.fixture
def aws_cli_project(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """An aws-sm source on moto whose credentials only boto3's own chain finds (a shared file)."""
    moto = request.getfixturevalue("moto")
    keys = {
        "aws_access_key_id": "AKIA" + secrets.token_hex(8).upper(),
        "aws_secret_access_key": base64.b64encode(os.urandom(30)).decode(),
        "aws_session_token": session_token(),
    }
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[default]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()), encoding="utf-8")
    secret = canary("stored")
    prefix = f"cm{token()}/"
    moto.client("secretsmanager").create_secret(Name=prefix + "CM_SECRET", SecretString=secret)
    config = tmp_path / "authchain.toml"
    config.write_text(
        f'retries = 0\n\n[sources.aws]\ntype = "aws-sm"\nregion = "us-east-1"\n'
        f'endpoint_url = "{moto.url}"\nprefix = "{prefix}"\n',
        encoding="utf-8",
    )
    home = tmp_path / "home"
    home.mkdir()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(WORKTREE),
        "HOME": str(home),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_ENDPOINT_URL": moto.url,
        **_offline.OFFLINE_ENV,  # a bare environment: the SDKs' metadata probes stay on loopback
    }
    return {
        "config": str(config),
        "keys": keys,
        "secret": secret,
        "env": environment,
        "credentials_file": str(credentials),
        "reference": f"aws-sm://{prefix}CM_SECRET",
    }


def _cli(project: dict[str, Any], *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authchain.cli", *argv[:1], "--config", project["config"], *argv[1:]],
        env={**project["env"], **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "mode", ["--debug", "--debug-sdk", "--debug with AUTHCHAIN_DEBUG_SDK=1"], ids=["debug", "sdk", "sdk-env"]
)
@pytest.mark.parametrize(
    "command", [["resolve", "CM_SECRET"], ["explain", "CM_SECRET"], ["check"]], ids=lambda c: c[0]
)
def test_debug_never_prints_a_credential_boto3_found(
    mode: str, command: list[str], aws_cli_project: dict[str, Any]
) -> None:
    flag, _, env_setting = mode.partition(" with ")
    env = dict([env_setting.split("=", 1)]) if env_setting else {}
    result = _cli(aws_cli_project, command[0], flag, *command[1:], **env)
    output = result.stdout + result.stderr
    for name, value in aws_cli_project["keys"].items():
        assert_nowhere(value, output, f"the output of `authchain {mode} {command[0]}` ({name})")
    assert_nowhere(aws_cli_project["secret"], output, f"the output of `authchain {mode} {command[0]}`")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DEBUG authchain" in result.stderr, "debug logging is on"
    wire = [line for line in result.stderr.splitlines() if line.startswith("DEBUG botocore")]
    if mode == "--debug":
        assert not wire, "--debug keeps botocore's wire logs off"
    else:
        assert wire, f"{mode} shows botocore's own DEBUG logs"
        assert "x-amz-security-token:***" in result.stderr.lower(), "the signed request was logged, masked"


def test_run_masks_sdk_found_credentials_in_the_childs_output(aws_cli_project: dict[str, Any]) -> None:
    """The child prints the shared credentials file boto3 read for the parent's lookup."""
    child = "import sys; print(open(sys.argv[1]).read())"
    result = _cli(
        aws_cli_project,
        "run",
        "--",
        sys.executable,
        "-c",
        child,
        aws_cli_project["credentials_file"],
        CM_REFERENCE=aws_cli_project["reference"],
    )
    for name, value in aws_cli_project["keys"].items():
        assert_nowhere(value, result.stdout + result.stderr, f"the output of `authchain run` ({name})")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "aws_session_token = ***" in result.stdout, "the child printed the file, masked"


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """In-process ``--debug`` changes the root logger and the SDK loggers' levels: undo it."""
    from authchain._sdk_logging import sdk_loggers

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = {*sdk_loggers(), *(name.split(".")[0] for name in WIRE_LOGGERS)}
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


WIRE_LOGGERS = (
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.auth",
    "boto3.resources",
    "urllib3.connectionpool",
    "hpack.hpack",
    "h2.connection",
    "httpcore.http11",
    "httpx",
    "grpc._channel",
    "google.auth.transport.requests",
    "google.api_core.grpc_helpers",
    "hvac.adapters",
    "azure.core.pipeline.policies.http_logging_policy",
    "msal.application",
)


@pytest.mark.parametrize("asked", ["no", "--debug-sdk", "AUTHCHAIN_DEBUG_SDK=1"])
def test_debug_logging_keeps_every_sdk_wire_logger_above_debug_unless_asked(
    asked: str, monkeypatch: pytest.MonkeyPatch, logging_restored: None
) -> None:
    from authchain.cli import _debug_logging

    monkeypatch.delenv("AUTHCHAIN_DEBUG_SDK", raising=False)
    if asked == "AUTHCHAIN_DEBUG_SDK=1":
        monkeypatch.setenv("AUTHCHAIN_DEBUG_SDK", "1")
    for name in WIRE_LOGGERS:  # as a library leaves them: unset, inheriting from the root
        logging.getLogger(name.split(".")[0]).setLevel(logging.NOTSET)
    with _debug_logging(True, sdk=asked == "--debug-sdk"):
        assert logging.getLogger("authchain.backends.vault.source").isEnabledFor(logging.DEBUG)
        for name in WIRE_LOGGERS:
            assert logging.getLogger(name).isEnabledFor(logging.DEBUG) == (asked != "no"), name


def test_the_inner_credential_of_impersonated_google_credentials_is_watched(
    token_endpoint: _TokenEndpoint,
) -> None:
    """Impersonation refreshes through a source credential whose access token is sent to
    the IAM credentials API: that token is registered when the inner credential refreshes."""
    pytest.importorskip("google.auth")
    import google.auth.transport.requests
    from google.auth import impersonated_credentials
    from google.oauth2 import service_account

    from authchain._sdk_credentials import watch_google_credentials

    inner = service_account.Credentials.from_service_account_info(
        _service_account(token_endpoint.url), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    outer = impersonated_credentials.Credentials(
        source_credentials=inner,
        target_principal="target@authchain-test.iam.gserviceaccount.com",
        target_scopes=["https://www.googleapis.com/auth/cloud-platform"],
    )
    watch_google_credentials(outer)
    # What outer.refresh() does first (google-auth keeps a copy of the source credential).
    outer._source_credentials.refresh(google.auth.transport.requests.Request())
    assert token_endpoint.requests == 1
    assert_registered(token_endpoint.access_token, "the inner credential's access token")


@pytest.mark.parametrize("as_file", [False, True], ids=["variable", "file"])
def test_the_aws_container_authorization_token_is_masked(
    as_file: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's container provider sends this token to the credentials endpoint (ECS, EKS
    Pod Identity); its DEBUG logs print the request's headers."""
    pytest.importorskip("botocore")
    from authchain.backends.aws.source import _botocore_session

    value = canary("container-token")
    if as_file:
        path = tmp_path / "token"
        path.write_text(value + "\n")
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(path))
    else:
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", value)
    _botocore_session()
    assert_registered(value, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
