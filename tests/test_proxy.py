"""The test proxy itself (tests/servers/proxy.py): counting, raw forwarding, faults, clean stop."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers.proxy import TCPProxy


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def http_upstream() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def raw_upstream() -> Iterator[tuple[str, int]]:
    """A TCP echo server that speaks no HTTP at all."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield ("127.0.0.1", listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    listener.close()


def post(proxy: TCPProxy, conn: http.client.HTTPConnection | None = None, body: bytes = b"ping") -> bytes:
    conn = conn or http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("POST", "/echo", body=body, headers={"X-Op": "Echo"})
    return conn.getresponse().read()


def test_counts_http_requests_on_a_kept_alive_connection(http_upstream: tuple[str, int]) -> None:
    with TCPProxy(http_upstream) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        assert [post(proxy, conn, b"one"), post(proxy, conn, b"two")] == [b"one", b"two"]
        conn.close()
        assert proxy.connections == 1
        assert proxy.count(header=("x-op", "Echo")) == 2
        assert [r.body for r in proxy.requests] == [b"one", b"two"]
        assert "two" not in repr(proxy.requests[1])  # bodies stay out of reprs
        proxy.clear()
        assert (proxy.connections, proxy.count()) == (0, 0)


def test_faults_respond_reset_hang_and_latency(http_upstream: tuple[str, int]) -> None:
    with TCPProxy(http_upstream) as proxy:
        proxy.fail("respond", times=1, status=503, body=b"busy")
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("POST", "/echo", body=b"x")
        answer = conn.getresponse()
        assert (answer.status, answer.read()) == (503, b"busy")
        assert post(proxy, conn) == b"ping"  # times=1: forwarding again, same connection
        proxy.fail("reset", times=1)
        with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
            post(proxy)
        proxy.latency = 0.2
        started = time.monotonic()
        assert post(proxy) == b"ping"
        assert time.monotonic() - started >= 0.2
        proxy.latency = 0
        proxy.fail("hang")
        hung = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=0.3)
        with pytest.raises(TimeoutError):
            post(proxy, hung)
        proxy.heal()
        assert post(proxy) == b"ping"
        assert proxy.count() == 6  # every request is counted, faulted or not


def test_raw_traffic_is_forwarded_byte_for_byte(raw_upstream: tuple[str, int]) -> None:
    with (
        TCPProxy(raw_upstream) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock,
    ):
        sock.sendall(b"\x16\x03\x01 not http")
        assert sock.recv(100) == b"\x16\x03\x01 not http"
        assert proxy.connections == 1
        assert proxy.count() == 0


def test_stop_joins_every_thread(http_upstream: tuple[str, int]) -> None:
    before = set(threading.enumerate())
    proxy = TCPProxy(http_upstream).start()
    post(proxy)
    proxy.fail("hang")
    with pytest.raises(TimeoutError):
        post(proxy, http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=0.2))
    proxy.stop()
    left = [t for t in set(threading.enumerate()) - before if t.name.startswith("tcp-proxy")]
    assert left == []
