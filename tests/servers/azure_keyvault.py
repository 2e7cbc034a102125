"""An in-process HTTPS Azure Key Vault (secrets) and Entra token endpoint on 127.0.0.1.

It speaks the REST API ``azure-keyvault-secrets`` uses, over TLS from a
throwaway CA (``trustme``): a client trusts it through azure-core's
``connection_verify`` (the CA file, :attr:`FakeKeyVault.ca_file`). What it
answers, as Key Vault does:

- any request without a valid bearer token: 401 with the challenge the SDK's
  challenge-auth policy starts with
  (``WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"``);
- ``GET /secrets/{name}[/{version}]``: the secret bundle (``value``, ``id``,
  ``attributes``), 404 ``SecretNotFound``, 403 ``Forbidden`` for a name the
  caller may not read, 403 ``Forbidden`` with inner error ``SecretDisabled``
  ("Operation get is not allowed on a disabled secret.") for a disabled version;
- ``GET /secrets``: one page of secret items (what ``check`` lists);
- armed faults: 429 with ``Retry-After``, 5xx, for the next N requests;
- an armed redirect (:attr:`FakeKeyVault.redirects`): the next token request, or
  the next authenticated secret request, answered with a 3xx to another origin.

And, on the same port, the two things azure-identity's ``ClientSecretCredential``
asks of its authority (``authority="https://127.0.0.1:PORT"``,
``disable_instance_discovery=True``): the OpenID configuration document and
the token endpoint (client-credentials grant), which checks the client id and
secret registered with :meth:`FakeKeyVault.add_client` and issues random
access tokens the vault then accepts.

The fixture ``azure_vault`` hands one test the session's server with its
secrets, clients, faults and counts reset; it is stopped at the end of the
session whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

__all__ = ["FakeKeyVault", "azure_vault"]

TENANT = "00000000-0000-4000-8000-00000000a2c1"
RESOURCE = "https://vault.azure.net"


@dataclass
class _Version:
    version: str
    value: str
    enabled: bool = True
    content_type: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: float | str | None  # a str is sent as it is (an HTTP date, garbage)
    name: str | None  # None: any secret request


class FakeKeyVault:
    """The fake vault and authority. Thread-safe; every request is counted."""

    def __init__(self, *, tenant: str = TENANT) -> None:
        self.tenant = tenant
        self._lock = threading.Lock()
        self._secrets: dict[str, list[_Version]] = {}
        self._clients: dict[str, str] = {}  # client id -> client secret
        self._tokens: set[str] = set()
        self._cert_clients: set[str] = set()
        self._denied: set[str] = set()
        self.listing_denied = False
        self._faults: list[_Fault] = []
        self._in_flight = 0
        self.max_in_flight = 0
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, authorization scheme)
        self.latency = 0.0
        self.challenge: str | None = None  # another WWW-Authenticate challenge (a hostile vault)
        self.token_faults: list[
            tuple[int, str | None]
        ] = []  # (status, Retry-After) for the next token requests
        self.token_latency = 0.0
        self.echo = ""  # text put into every error body (a server that quotes what it was sent)
        # "token" / "secrets" -> (status, origin): the next such request is answered with that
        # status and Location = origin + its path (once; then the redirect is disarmed)
        self.redirects: dict[str, tuple[int, str]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file = ""

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> FakeKeyVault:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._tmp = tempfile.TemporaryDirectory(prefix="azure-kv-fake-")
        ca_path = Path(self._tmp.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        self.ca_file = str(ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        server = _TLSServer(("127.0.0.1", 0), _handler(self))
        server.context = context
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="azure-kv-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        if self._tmp is not None:
            self._tmp.cleanup()
        self._server = self._thread = self._tmp = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The vault URL (and the authority host: the same server)."""
        return f"https://127.0.0.1:{self.port}"

    authority = url

    # -- state -------------------------------------------------------------------

    def set_secret(
        self, name: str, value: str, *, enabled: bool = True, content_type: str | None = None
    ) -> str:
        """Add a version of ``name`` (it becomes the latest); returns its version id."""
        version = secrets.token_hex(16)
        with self._lock:  # names are compared without regard to case, as Key Vault does
            self._secrets.setdefault(name.lower(), []).append(_Version(version, value, enabled, content_type))
        return version

    def set_enabled(self, name: str, enabled: bool, version: str | None = None) -> None:
        with self._lock:
            versions = self._secrets[name.lower()]
            target = versions[-1] if version is None else next(v for v in versions if v.version == version)
            target.enabled = enabled

    def deny(self, name: str) -> None:
        """The caller's identity may not read ``name``: 403 Forbidden."""
        with self._lock:
            self._denied.add(name.lower())

    def add_client(self, client_id: str, client_secret: str) -> None:
        """An app registration the token endpoint accepts (client-credentials grant)."""
        with self._lock:
            self._clients[client_id] = client_secret

    def add_certificate_client(self, client_id: str) -> None:
        """An app registration that signs a client assertion with its certificate (the signature is
        not checked: this fake proves which grant the client used, not the cryptography)."""
        with self._lock:
            self._cert_clients.add(client_id)

    def issue_token(self) -> str:
        """A token the vault accepts, as if the authority had issued it."""
        token = "fake-at-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return token

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        name: str | None = None,
    ) -> None:
        """The next ``times`` secret requests (for ``name``, or any) answer ``status``."""
        with self._lock:
            self._faults.append(_Fault(status, times, retry_after, name))

    def reset(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._clients.clear()
            self._cert_clients.clear()
            self._tokens.clear()
            self._denied.clear()
            self._faults.clear()
            self.requests.clear()
            self.max_in_flight = 0
        self.latency = 0.0
        self.listing_denied = False
        self.challenge = None
        self.echo = ""
        self.redirects.clear()
        self.token_faults.clear()
        self.token_latency = 0.0
        with contextlib.suppress(ImportError):  # the SDK caches each vault's challenge process-wide
            from azure.keyvault.secrets._shared import http_challenge_cache

            http_challenge_cache.clear()

    def count(self, method: str = "GET", prefix: str = "/secrets/") -> int:
        """Requests so far whose path starts with ``prefix``."""
        with self._lock:
            return sum(1 for m, path, _ in self.requests if m == method and path.startswith(prefix))

    # -- what the handler asks -----------------------------------------------------

    def _take_fault(self, name: str | None) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.name is None or fault.name == name:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


class _TLSServer(ThreadingHTTPServer):
    """TLS per connection, in that connection's own thread: wrapping the listening socket would
    make ``accept()`` do the handshake, so one client that never sends it stalls every other."""

    daemon_threads = True
    context: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a client that went away or spoke no TLS
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-request is normal here (timeouts under test)


def _handler(fake: FakeKeyVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK hold the body back ~40 ms on every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            authorization = self.headers.get("Authorization")
            with fake._lock:
                fake.requests.append((method, path, authorization.split(" ")[0] if authorization else None))
            if path.endswith("/v2.0/.well-known/openid-configuration"):
                return self._openid(path)
            if path.endswith("/oauth2/v2.0/token") and method == "POST":
                return self._token(body)
            if path == "/secrets" or path.startswith("/secrets/"):
                return self._secret(method, path, parse_qs(parts.query), authorization)
            self._json(404, {"error": {"code": "NotFound", "message": f"no route {path}"}})

        # -- the authority ---------------------------------------------------------

        def _openid(self, path: str) -> None:
            tenant = path.split("/")[1]
            base = f"{fake.url}/{tenant}"
            self._json(
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "issuer": f"{base}/v2.0",
                    "tenant_region_scope": None,
                },
            )

        def _redirect(self, kind: str) -> bool:
            with fake._lock:
                armed = fake.redirects.pop(kind, None)
            if armed is None:
                return False
            status, origin = armed
            self.send_response(status)
            self.send_header("Location", origin + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def _token(self, body: bytes) -> None:
            if self._redirect("token"):
                return
            if fake.token_latency:
                time.sleep(fake.token_latency)
            with fake._lock:
                fault = fake.token_faults.pop(0) if fake.token_faults else None
            if fault is not None:
                status, after = fault
                extra = {} if after is None else {"Retry-After": after}
                payload = {"error": "temporarily_unavailable", "error_description": "AADSTS50196: slow down"}
                return self._json(status, payload, extra)
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            with fake._lock:
                known = client_id is not None and fake._clients.get(client_id) == client_secret
                assertion = form.get("client_assertion_type", "").endswith("jwt-bearer")
                known = known or (
                    assertion and client_id in fake._cert_clients and "client_assertion" in form
                )
            if form.get("grant_type") != "client_credentials" or not known:
                return self._json(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided." + fake.echo,
                    },
                )
            self._json(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": fake.issue_token(),
                },
            )

        # -- the vault -------------------------------------------------------------

        def _secret(
            self, method: str, path: str, query: dict[str, list[str]], authorization: str | None
        ) -> None:
            if "api-version" not in query:
                return self._json(
                    400, {"error": {"code": "BadParameter", "message": "api-version is missing"}}
                )
            token = (
                authorization[len("Bearer ") :]
                if authorization and authorization.startswith("Bearer ")
                else None
            )
            with fake._lock:
                valid = token in fake._tokens
            if valid and self._redirect("secrets"):
                return
            if not valid:
                challenge = (
                    fake.challenge
                    or f'Bearer authorization="{fake.url}/{fake.tenant}", resource="{RESOURCE}"'
                )
                return self._json(
                    401,
                    {
                        "error": {
                            "code": "Unauthorized",
                            "message": "AKV10000: Request is missing a Bearer token.",
                        }
                    },
                    {"WWW-Authenticate": challenge},
                )
            with fake._lock:
                fake._in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
            try:
                self._answer(method, path, query)
            finally:
                with fake._lock:
                    fake._in_flight -= 1

        def _answer(self, method: str, path: str, query: dict[str, list[str]]) -> None:
            if fake.latency:
                time.sleep(fake.latency)
            segments = [unquote(s) for s in path.split("/")[2:] if s]
            name = segments[0] if segments else None
            fault = fake._take_fault(name)
            if fault is not None:
                after = fault.retry_after
                extra = (
                    {}
                    if after is None
                    else {"Retry-After": after if isinstance(after, str) else f"{after:g}"}
                )
                code = "Throttled" if fault.status == 429 else "ServiceUnavailable"
                return self._json(
                    fault.status, {"error": {"code": code, "message": "try again" + fake.echo}}, extra
                )
            if method != "GET":
                return self._json(405, {"error": {"code": "BadParameter", "message": "method"}})
            if name is None:
                if fake.listing_denied:
                    return self._json(
                        403, {"error": {"code": "Forbidden", "message": "no secrets list permission"}}
                    )
                return self._list(query)
            return self._get(name, segments[1] if len(segments) > 1 else None)

        def _list(self, query: dict[str, list[str]]) -> None:
            limit = int(query.get("maxresults", ["25"])[0])
            start = int(query.get("$skiptoken", ["0"])[0])
            with fake._lock:
                names = sorted(fake._secrets)
                items = [
                    {
                        "id": f"{fake.url}/secrets/{n}",
                        "attributes": {"enabled": fake._secrets[n][-1].enabled},
                    }
                    for n in names[start : start + limit]
                ]
            more = start + limit < len(names)
            next_link = (
                f"{fake.url}/secrets?api-version=7.6&maxresults={limit}&$skiptoken={start + limit}"
                if more
                else None
            )
            self._json(200, {"value": items, "nextLink": next_link})

        def _get(self, name: str, version: str | None) -> None:
            with fake._lock:
                denied = name.lower() in fake._denied
                versions = list(fake._secrets.get(name.lower(), ()))
            if denied:
                message = (
                    "The user, group or application does not have secrets get permission on key vault "
                    "'fake;location=local'." + fake.echo
                )
                return self._json(
                    403,
                    {
                        "error": {
                            "code": "Forbidden",
                            "message": message,
                            "innererror": {"code": "AccessDenied"},
                        }
                    },
                )
            found = versions[-1] if versions and not version else None
            if version:
                found = next((v for v in versions if v.version == version), None)
            if found is None:
                what = f"{name}/{version}" if version else name
                message = f"A secret with (name/id) {what} was not found in this key vault."
                return self._json(404, {"error": {"code": "SecretNotFound", "message": message}})
            if not found.enabled:
                return self._json(
                    403,
                    {
                        "error": {
                            "code": "Forbidden",
                            "message": "Operation get is not allowed on a disabled secret.",
                            "innererror": {"code": "SecretDisabled"},
                        }
                    },
                )
            bundle: dict[str, Any] = {
                "value": found.value,
                "id": f"{fake.url}/secrets/{name}/{found.version}",
                "attributes": {
                    "enabled": True,
                    "created": found.created,
                    "updated": found.created,
                    "recoveryLevel": "Recoverable+Purgeable",
                },
                "tags": {},
            }
            if found.content_type:
                bundle["contentType"] = found.content_type
            self._json(200, bundle)

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data)

    return Handler


@pytest.fixture(scope="session")
def azure_vault_server() -> Iterator[FakeKeyVault]:
    pytest.importorskip("trustme", reason="needs trustme (the test extra)")
    fake = FakeKeyVault()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def azure_vault(azure_vault_server: FakeKeyVault) -> Iterator[FakeKeyVault]:
    azure_vault_server.reset()
    try:
        yield azure_vault_server
    finally:
        azure_vault_server.reset()
