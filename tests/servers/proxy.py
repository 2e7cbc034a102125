"""A counting, fault-injecting TCP proxy on 127.0.0.1, to put in front of a real server.

Tests point a client at ``proxy.url`` instead of the server and then ask the
proxy what went over the wire, or make the wire misbehave::

    with TCPProxy(("127.0.0.1", server_port)) as proxy:
        client = make_client(endpoint_url=proxy.url)
        ...
        assert proxy.count(header=("X-Amz-Target", "secretsmanager.BatchGetSecretValue")) == 3
        proxy.latency = 0.2                 # every request waits 0.2 s before it is forwarded
        proxy.fail("reset", times=1)        # the next request's connection is reset (TCP RST)
        proxy.fail("hang")                  # requests are read and never answered ...
        proxy.heal()                        # ... until heal(): back to forwarding
        proxy.fail("respond", status=503, body=b"...")  # answer without asking the server

What it sees:

- ``connections``: TCP connections accepted.
- ``requests``: every HTTP/1.x request read from a client (method, target,
  headers, body), in arrival order, counted *before* any fault applies, so a
  reset or hung request is still counted. ``count()`` filters them.

Traffic that does not start with an HTTP/1.x request line (gRPC's HTTP/2,
TLS) is forwarded byte for byte: connections are counted, requests are not,
and ``latency`` / ``reset`` / ``hang`` apply to each chunk the client sends.
A chunked request body ends the parsing for that connection the same way.

The fixture ``tcp_proxy`` (a factory) builds proxies that are stopped at the
end of the test. Every thread the proxy starts is joined by ``stop()``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import pytest

__all__ = ["ProxiedRequest", "TCPProxy", "tcp_proxy"]

FaultMode = Literal["reset", "hang", "respond"]

_METHOD = re.compile(rb"[A-Z]{1,10}( |$)")
_CHUNK = 65536


@dataclass(frozen=True)
class ProxiedRequest:
    """One HTTP request the proxy read from a client."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(default=b"", repr=False)  # may hold a secret: never in a repr
    arrived: float = field(default_factory=time.monotonic, compare=False)
    """When the proxy had read the whole request (``time.monotonic``)."""

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name`` (case-insensitive)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), default)


@dataclass
class _Fault:
    mode: FaultMode
    times: int | None  # None: until heal()
    response: bytes = b""


class TCPProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream``, counting and optionally misbehaving.

    Args:
        upstream: ``(host, port)`` of the real server.
        host: address to listen on (default ``127.0.0.1``); the port is picked free.
    """

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = 0
        self.latency = 0.0
        """Seconds every request (or raw chunk) waits before it is forwarded."""
        self.connections = 0
        self.requests: list[ProxiedRequest] = []
        self._fault: _Fault | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._healed = threading.Event()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> TCPProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(64)
        listener.settimeout(0.05)  # the accept loop polls so stop() never waits on accept()
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, "accept")
        return self

    def stop(self) -> None:
        """Close every connection and join every thread this proxy started."""
        self._stopping.set()
        self._healed.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> TCPProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- what went over the wire ----------------------------------------------------

    def count(
        self,
        predicate: Callable[[ProxiedRequest], bool] | None = None,
        *,
        header: tuple[str, str] | None = None,
    ) -> int:
        """How many requests match ``predicate`` and/or have ``header == (name, value)``."""
        with self._lock:
            requests = list(self.requests)
        if header is not None:
            requests = [r for r in requests if r.header(header[0]) == header[1]]
        if predicate is not None:
            requests = [r for r in requests if predicate(r)]
        return len(requests)

    def clear(self) -> None:
        """Forget counted connections and requests (faults stay)."""
        with self._lock:
            self.requests.clear()
            self.connections = 0

    # -- faults -------------------------------------------------------------------

    def fail(
        self,
        mode: FaultMode,
        *,
        times: int | None = None,
        status: int = 503,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next ``times`` requests (default: all, until :meth:`heal`) fail.

        ``"reset"`` closes the client connection with a TCP RST; ``"hang"``
        reads the request and never answers (the connection is closed at
        ``heal()`` or ``stop()``); ``"respond"`` answers ``status`` with
        ``body`` and ``headers`` without asking the server.
        """
        response = b""
        if mode == "respond":
            lines = [f"HTTP/1.1 {status} Injected"]
            extra = {"Content-Length": str(len(body)), **(headers or {})}
            lines.extend(f"{key}: {value}" for key, value in extra.items())
            response = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        with self._lock:
            self._healed.clear()
            self._fault = _Fault(mode, times, response)

    def heal(self) -> None:
        """Forward again; hung connections are closed."""
        with self._lock:
            self._fault = None
        self._healed.set()

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            fault = self._fault
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._fault = None
            return fault

    # -- plumbing -----------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=f"tcp-proxy-{name}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._track(client)
            with self._lock:
                self.connections += 1
            self._spawn(self._serve, "conn", client)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        self._track(upstream)
        self._spawn(self._pump, "pump", upstream, client)
        try:
            self._forward_requests(client, upstream)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        """Copy server → client until either side closes."""
        try:
            while chunk := source.recv(_CHUNK):
                self._answered(chunk)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(source)
            _close(target)

    def _answered(self, chunk: bytes) -> None:
        """Each chunk the server sends back, before the client gets it (a hook for subclasses)."""

    def _forward_requests(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer = b""
        while not self._stopping.is_set():
            while b"\r\n\r\n" not in buffer:
                chunk = client.recv(_CHUNK)
                if not chunk:
                    return
                buffer += chunk
                if not _looks_like_http1(buffer):
                    return self._forward_raw(client, upstream, buffer)
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = ([*lines[0].split(" ", 2), "", ""])[:3]
            headers = tuple(
                (key.strip(), value.strip())
                for key, _, value in (line.partition(":") for line in lines[1:] if line)
            )
            request = ProxiedRequest(method, target, headers)
            if (request.header("Transfer-Encoding") or "").lower() == "chunked":
                self._record(request)
                return self._forward_raw(client, upstream, head + b"\r\n\r\n" + buffer)
            length = int(request.header("Content-Length") or 0)
            while len(buffer) < length:
                chunk = client.recv(_CHUNK)
                if not chunk:
                    return
                buffer += chunk
            body, buffer = buffer[:length], buffer[length:]
            self._record(ProxiedRequest(method, target, headers, body))
            if not self._deliver(client, upstream, head + b"\r\n\r\n" + body):
                return

    def _forward_raw(self, client: socket.socket, upstream: socket.socket, first: bytes) -> None:
        data = first
        while data and not self._stopping.is_set():
            if not self._deliver(client, upstream, data):
                return
            data = client.recv(_CHUNK)

    def _deliver(self, client: socket.socket, upstream: socket.socket, data: bytes) -> bool:
        """Apply the current fault, then latency, then forward. False: the connection is done."""
        fault = self._take_fault()
        if fault is not None and fault.mode == "reset":
            # Linger 0 and close without shutdown(): the kernel sends RST, not FIN.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return False
        if fault is not None and fault.mode == "hang":
            while not self._healed.wait(0.05) and not self._stopping.is_set():
                pass
            return False
        if fault is not None and fault.mode == "respond":
            client.sendall(fault.response)
            return True
        if self.latency and self._stopping.wait(self.latency):
            return False
        upstream.sendall(data)
        return True

    def _record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _looks_like_http1(buffer: bytes) -> bool:
    """Could this be the start of an HTTP/1.x request? (HTTP/2 opens with ``PRI * HTTP/2.0``.)"""
    return bool(_METHOD.match(buffer[:11])) and not buffer.startswith(b"PRI ")


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[tuple[str, int]], TCPProxy]]:
    """A factory: ``tcp_proxy((host, port))`` starts a proxy, stopped after the test."""
    started: list[TCPProxy] = []

    def start(upstream: tuple[str, int]) -> TCPProxy:
        proxy = TCPProxy(upstream).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
