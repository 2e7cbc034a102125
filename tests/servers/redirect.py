"""HTTP(S) listeners on 127.0.0.1 that redirect, or record what arrives: for the redirect attacks.

A :class:`Listener` answers every request with what its ``answer`` function
returns, and keeps every request it read (method, path, headers, body), so a
test can ask whether a credential ever reached it. Two answers come ready:
:func:`redirect_to` (a status such as 307 with ``Location`` on another origin:
a server, or anything answering at the configured address, sending the client
elsewhere) and :func:`json_answer`.

The fixture ``listener`` is a factory: ``listener(answer, tls=...)`` starts
one, stopped at the end of the test. ``tls_ca`` is a throwaway CA (``trustme``)
with its certificate file, for HTTPS listeners the client is told to trust.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Arrived", "Listener", "TestCA", "json_answer", "listener", "redirect_to", "tls_ca"]

Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Arrived:
    """One request a listener read."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(default=b"", repr=False)  # may hold a secret: never in a repr

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def wire(self) -> bytes:
        """The request as text: every header and the body, to search for a planted value."""
        lines = [f"{self.method} {self.path}", *(f"{key}: {value}" for key, value in self.headers)]
        return "\n".join(lines).encode() + b"\n\n" + self.body


def redirect_to(status: int, origin: Callable[[], str]) -> Callable[[Arrived], Answer]:
    """Answer ``status`` with ``Location: <origin()><the same path and query>``."""

    def answer(request: Arrived) -> Answer:
        return status, {"Location": origin() + request.path}, b""

    return answer


def json_answer(status: int = 200, payload: Any = None) -> Callable[[Arrived], Answer]:
    body = json.dumps({} if payload is None else payload).encode()
    return lambda request: (status, {"Content-Type": "application/json"}, body)


class Listener:
    """A threaded HTTP server on 127.0.0.1 (HTTPS with ``tls``) that records every request."""

    def __init__(self, answer: Callable[[Arrived], Answer], *, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.requests: list[Arrived] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Listener:
        server = _Server(("127.0.0.1", 0), _handler(self))
        server.tls = self.tls
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="redirect-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    url = origin

    def seen(self) -> list[Arrived]:
        with self._lock:
            return list(self.requests)

    def _record(self, request: Arrived) -> None:
        with self._lock:
            self.requests.append(request)


class _Server(ThreadingHTTPServer):
    """TLS (when asked) per connection, in that connection's own thread."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a client that refused our certificate, or spoke no TLS
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-request is normal here


def _handler(owner: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Arrived(self.command, self.path, tuple(self.headers.items()), body)
            owner._record(request)
            status, headers, payload = owner.answer(request)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _serve

    return Handler


@dataclass(frozen=True)
class TestCA:
    """A throwaway CA: ``context()`` serves a 127.0.0.1 certificate it signed; ``ca_file`` trusts it."""

    ca: Any
    ca_file: Path

    __test__ = False  # not a test class, whatever its name

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context


@pytest.fixture
def tls_ca(tmp_path: Path) -> TestCA:
    trustme = pytest.importorskip("trustme", reason="needs trustme (the test extra)")
    ca = trustme.CA()
    path = tmp_path / "redirect-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return TestCA(ca, path)


@pytest.fixture
def listener() -> Iterator[Callable[..., Listener]]:
    started: list[Listener] = []

    def start(answer: Callable[[Arrived], Answer], *, tls: ssl.SSLContext | None = None) -> Listener:
        server = Listener(answer, tls=tls).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
