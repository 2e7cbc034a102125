"""The vault source's requests on the event loop (``aget``, authchain/backends/vault/_native.py).

What test_source_on_the_loop.py cannot show by re-running the sync tests: when the loop
path is taken (not with a proxy to honour, not without h11), where a redirect may take
the token, TLS as requests verifies it, and that nothing (connection, task, timer)
outlives a burst or the loop. Real OpenBao throughout; a tiny HTTP server on 127.0.0.1
only where a redirect must be shown (OpenBao does not redirect a dev server's reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from authchain import BackendError, Chain
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultSource
from authchain.testing import canary
from tests.servers.openbao import OpenBao
from tests.servers.redirect import Arrived, TestCA, json_answer, redirect_to

pytest.importorskip("hvac", reason="needs the vault extra")
pytest.importorskip("h11", reason="needs the vault extra")

ROOT = Path(__file__).parents[3]


def chain_for(url: str, token: str, **settings: Any) -> tuple[Chain, VaultSource]:
    source = VaultSource(url=url, **settings)
    return Chain([source, EnvSource(environ={"VAULT_TOKEN": token}, name="creds")], cache_ttl=60), source


def test_the_loop_path_is_taken_unless_a_proxy_applies(
    openbao: OpenBao, tcp_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy requests would use (HTTP_PROXY, not bypassed by NO_PROXY) keeps the lookups on
    requests, on the pool: the loop path would go around it. The counting proxy plays the
    HTTP proxy here (it forwards bytes; OpenBao reads the absolute-form request target)."""
    prefix = f"t/native-{canary()[-8:]}"
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    host, port = openbao.url.removeprefix("http://").split(":")
    proxy = tcp_proxy((host, int(port)))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    direct, source = chain_for(openbao.url, openbao.tokens["reader"], path_prefix=prefix)
    assert source.has_native_async()

    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    proxied, source = chain_for(openbao.url, openbao.tokens["reader"], path_prefix=prefix)
    assert not source.has_native_async(), "a proxy applies: requests makes the calls"
    assert asyncio.run(proxied.aresolve("X")).get_secret_value() == value
    assert proxy.count(lambda request: request.target.endswith(f"{prefix}/X")) == 1, "through the proxy"

    monkeypatch.setenv("NO_PROXY", host)
    bypassed, source = chain_for(openbao.url, openbao.tokens["reader"], path_prefix=prefix)
    assert source.has_native_async(), "NO_PROXY names the server: no proxy applies"
    for chain in (direct, proxied, bypassed):
        chain.close()


def test_without_h11_the_lookups_run_on_the_pool(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"t/native-{canary()[-8:]}"
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    monkeypatch.setitem(sys.modules, "h11", None)  # import h11 -> ImportError
    chain, source = chain_for(openbao.url, openbao.tokens["reader"], path_prefix=prefix)
    assert not source.has_native_async()
    assert asyncio.run(chain.aresolve("X")).get_secret_value() == value
    chain.close()


# -- redirects ---------------------------------------------------------------------


KV2_MOUNT = {"data": {"type": "kv", "path": "secret/", "options": {"version": "2"}}}


def test_a_redirect_to_another_origin_is_refused_and_the_token_stays_home(listener: Any) -> None:
    """As in sync code (tests/hardening/test_redirects.py): nothing is sent to the other
    origin, and the error is the one the sync path raises."""
    token = canary()
    elsewhere = listener(json_answer())
    server = listener(redirect_to(307, lambda: elsewhere.origin))
    chain, source = chain_for(server.origin, token)
    assert source.has_native_async()
    with pytest.raises(BackendError) as in_async:
        asyncio.run(chain.aresolve("X"))
    sync_chain, _ = chain_for(server.origin, token)
    with pytest.raises(BackendError) as in_sync:
        sync_chain.resolve("X")
    for each in (chain, sync_chain):
        each.close()
    assert elsewhere.seen() == [], "nothing, and so no token, reached the other origin"
    assert f"redirected a request to {elsewhere.origin}" in str(in_async.value)
    assert str(in_async.value) == str(in_sync.value)
    assert not in_async.value.retryable
    assert token not in str(in_async.value)


def test_a_redirect_within_the_server_is_followed(listener: Any) -> None:
    value = canary()
    answers = {
        "/moved/v1/sys/internal/ui/mounts/secret": json_answer(200, KV2_MOUNT),
        "/moved/v1/secret/data/X": json_answer(200, {"data": {"data": {"X": value}, "metadata": {}}}),
    }

    def answer(request: Arrived) -> tuple[int, dict[str, str], bytes]:
        if not request.path.startswith("/moved/"):
            return 307, {"Location": "/moved" + request.path}, b""
        return answers.get(request.path, json_answer(404, {"errors": []}))(request)

    token = canary()
    server = listener(answer)
    chain, _ = chain_for(server.origin, token)
    assert asyncio.run(chain.aresolve("X")).get_secret_value() == value
    chain.close()
    assert [request.path for request in server.seen()] == [
        "/v1/sys/internal/ui/mounts/secret",
        "/moved/v1/sys/internal/ui/mounts/secret",
        "/v1/secret/data/X",
        "/moved/v1/secret/data/X",
    ]
    assert all(request.header("X-Vault-Token") == token for request in server.seen())


# -- TLS ---------------------------------------------------------------------------


@contextlib.contextmanager
def tls_in_front_of(upstream: tuple[str, int], tls_ca: TestCA) -> Iterator[str]:
    """A TLS terminator on 127.0.0.1 (``tls_ca``'s certificate) forwarding to ``upstream``;
    yields its https URL."""
    context = tls_ca.context()
    server = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()
    threads: list[threading.Thread] = []

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve(client: socket.socket) -> None:
        try:
            wrapped = context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()  # a client that does not trust the CA: the handshake fails
            return
        backend = socket.create_connection(upstream)
        back = threading.Thread(target=pipe, args=(backend, wrapped), daemon=True)
        back.start()
        pipe(wrapped, backend)
        back.join(10)
        wrapped.close()
        backend.close()

    def accept() -> None:
        while not stopping.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            thread = threading.Thread(target=serve, args=(client,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"https://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stopping.set()
        server.close()
        acceptor.join(5)
        for thread in threads:
            thread.join(10)


def test_tls_is_verified_as_requests_verifies_it(
    openbao: OpenBao, tls_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ca_cert`` trusted; without it certifi's bundle (requests' default) does not know the
    CA: the same TLS error as the sync path's; ``verify = false`` reads without checking."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "ALL_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    prefix = f"t/native-{canary()[-8:]}"
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    host, port = openbao.url.removeprefix("http://").split(":")
    token = openbao.tokens["reader"]
    ca_file = str(tls_ca.ca_file)
    with tls_in_front_of((host, int(port)), tls_ca) as url:
        trusted, source = chain_for(url, token, path_prefix=prefix, ca_cert=ca_file)
        assert source.has_native_async()
        assert asyncio.run(trusted.aresolve("X")).get_secret_value() == value

        unknown, _ = chain_for(url, token, path_prefix=prefix, retries=0)
        with pytest.raises(BackendError, match=r"TLS error talking to https://127\.0\.0\.1") as in_async:
            asyncio.run(unknown.aresolve("X"))
        sync_chain, _ = chain_for(url, token, path_prefix=prefix, retries=0)
        with pytest.raises(BackendError) as in_sync:
            sync_chain.resolve("X")
        assert str(in_async.value) == str(in_sync.value), "the message sync code gets"

        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)
        from_environment, _ = chain_for(url, token, path_prefix=prefix)
        assert asyncio.run(from_environment.aresolve("X")).get_secret_value() == value
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")

        unchecked, _ = chain_for(url, token, path_prefix=prefix, verify=False)
        assert asyncio.run(unchecked.aresolve("X")).get_secret_value() == value
        for chain in (trusted, unknown, sync_chain, from_environment, unchecked):
            chain.close()


def lookup(chain: Chain, run: str) -> object:
    return chain.resolve("X") if run == "sync" else asyncio.run(chain.aresolve("X"))


# -- what is left behind -------------------------------------------------------------


def test_a_burst_shares_a_few_connections(openbao: OpenBao, tcp_proxy: Any) -> None:
    from authchain.backends.vault._native import MAX_CONNECTIONS

    prefix = f"t/native-{canary()[-8:]}"
    names = [f"B{number}" for number in range(40)]
    for name in names:
        openbao.put(f"{prefix}/{name}", {name: canary()})
    host, port = openbao.url.removeprefix("http://").split(":")
    proxy = tcp_proxy((host, int(port)))
    proxy.latency = 0.01
    chain, _ = chain_for(proxy.url, openbao.tokens["reader"], path_prefix=prefix)

    async def burst() -> None:
        await asyncio.gather(*(chain.aresolve(name) for name in names))

    asyncio.run(burst())
    chain.close()
    assert proxy.count(lambda request: f"{prefix}/B" in request.target) == len(names)
    assert proxy.connections <= MAX_CONNECTIONS + 1, "kept alive for those waiting (the +1: the probe)"


def run_child(
    script: str, openbao: OpenBao, prefix: str, *options: str, **environment: str
) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter (``options`` before ``-c``) that finds OpenBao, the
    test's prefix and a reader token in T_URL, T_PREFIX, T_TOKEN; it must exit 0."""
    environment |= {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    environment |= {"T_URL": openbao.url, "T_PREFIX": prefix}
    done = subprocess.run(
        [sys.executable, *options, "-c", script],
        env=environment | {"T_TOKEN": openbao.tokens["reader"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


LEFTOVERS = """
import asyncio, gc, os, sys
from authchain import Chain
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultSource

def chain():
    source = VaultSource(url=os.environ["T_URL"], path_prefix=os.environ["T_PREFIX"])
    return Chain([source, EnvSource(environ={"VAULT_TOKEN": os.environ["T_TOKEN"]}, name="creds")])

async def burst(chain):
    return await asyncio.gather(*(chain.aresolve(f"L{n}") for n in range(20)))

assert len(asyncio.run(burst(chain()))) == 20            # asyncio.run
loop = asyncio.new_event_loop()                              # a loop run and closed by hand,
assert len(loop.run_until_complete(burst(chain()))) == 20   # nothing cancelled for us
loop.close()
gc.collect()
print("done", flush=True)
"""


def test_nothing_outlives_a_burst_or_its_loop(openbao: OpenBao) -> None:
    """No socket left open (ResourceWarning), no task pending ("Task was destroyed but it is
    pending"), in development mode, after ``asyncio.run`` and after a loop closed by hand."""
    prefix = f"t/native-{canary()[-8:]}"
    for number in range(20):
        openbao.put(f"{prefix}/L{number}", {f"L{number}": canary()})
    done = run_child(LEFTOVERS, openbao, prefix, "-X", "dev", "-W", "error::ResourceWarning")
    assert done.stdout.strip() == "done"
    for trace in ("ResourceWarning", "unclosed", "Task was destroyed", "never awaited", "Traceback"):
        assert trace not in done.stderr, done.stderr[-3000:]


@pytest.mark.parametrize("where", ["token", "namespace"])
def test_a_header_value_with_a_line_break_is_never_sent(openbao: OpenBao, where: str) -> None:
    """A token (or namespace) holding CR/LF would add a header of its own choosing (request
    smuggling): neither requests (sync) nor h11 (the loop's path) sends it, both fail the same
    way, and a token's value is not in the error, its causes or its traceback."""
    import traceback

    planted = canary()
    broken = f"{planted}\r\nX-Injected: yes"
    token = broken if where == "token" else openbao.tokens["reader"]
    settings = {"namespace": broken} if where == "namespace" else {}
    mark = openbao.audit_mark()
    errors = {}

    for run in ("sync", "async"):
        chain, _ = chain_for(openbao.url, token, retries=0, **settings)
        with pytest.raises(BackendError) as caught:
            lookup(chain, run)
        chain.close()
        errors[run] = caught.value
        if where == "token":
            shown = "".join(traceback.format_exception(caught.value))
            assert planted not in shown, f"{run}: the token is in the error's traceback"
    assert str(errors["sync"]) == str(errors["async"])
    assert openbao.requests_since(mark) == [], "no request went out"


def test_an_answer_cut_short_leaves_no_part_of_it_in_the_error_or_its_frames() -> None:
    """The server sends part of a secret's body, then closes: the lookup fails (retryable, as
    in sync), and no frame of the error (locals included, as error reporters show them) nor
    its message holds what had arrived."""
    from tests.hardening.test_frames import assert_frames_clean

    planted = canary()

    class Cut(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/v1/sys/internal/ui/mounts/secret":
                body = json.dumps(KV2_MOUNT).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            part = json.dumps({"data": {"data": {"X": planted}}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(part) + 500))
            self.end_headers()
            self.wfile.write(part)  # then the connection closes, 500 bytes short
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Cut)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for run in ("sync", "async"):
            chain, _ = chain_for(url, canary(), retries=0)
            with pytest.raises(BackendError) as caught:
                lookup(chain, run)
            chain.close()
            assert caught.value.retryable, run
            error = caught.value
            assert error.__traceback__ is not None
            error.__traceback__ = error.__traceback__.tb_next  # not this test's frame: it holds `planted`
            assert_frames_clean(planted, error)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


COLD_START = """
import asyncio, os, sys, threading
imported = {}

def audit(event, args):
    if event == "import" and args[0] in ("hvac", "h11", "requests") and args[0] not in imported:
        imported[args[0]] = threading.get_ident()

sys.addaudithook(audit)
from authchain import Chain
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultSource

source = VaultSource(url=os.environ["T_URL"], path_prefix=os.environ["T_PREFIX"])
chain = Chain([source, EnvSource(environ={"VAULT_TOKEN": os.environ["T_TOKEN"]}, name="creds")])

async def first():
    loop_thread = threading.get_ident()
    value = await chain.aresolve("C")
    return loop_thread, value.get_secret_value()

loop_thread, value = asyncio.run(first())
assert value == os.environ["T_VALUE"]
print(sorted(name for name, thread in imported.items() if thread == loop_thread))
print(sorted(imported))
"""


def test_the_first_aresolve_of_a_process_imports_no_sdk_on_the_loop(openbao: OpenBao) -> None:
    """hvac with requests takes ~300 ms to import: done on the loop, the first lookup of a
    fresh process would stall it that long. The chain warms the source in a thread first."""
    prefix = f"t/native-{canary()[-8:]}"
    value = canary()
    openbao.put(f"{prefix}/C", {"C": value})
    done = run_child(COLD_START, openbao, prefix, T_VALUE=value)
    on_the_loop, imported = done.stdout.strip().splitlines()
    assert imported == "['h11', 'hvac', 'requests']", "the lookup's SDK was imported (by some thread)"
    assert on_the_loop == "[]", f"imported on the event loop's thread: {on_the_loop}"
