"""moto, the counting TCP proxy and the Azure Key Vault fake, each in a child process of its own.

In the benchmark's own process they would compete with the code being
measured for the GIL: on a 2-core machine the proxy's threads alone took a
quarter of the samples of a profiled ``resolve_many`` run, and they hurt the
concurrent path (many connections at once) more than the naive loop. In a
child process they behave like the remote servers they stand for.

The children are the same classes the tests use (``ThreadedMotoServer``,
``tests.servers.proxy.TCPProxy``), listen on 127.0.0.1 only, take one-line
commands on stdin, answer on stdout, and exit on ``stop`` or when stdin
closes (so they never outlive the benchmark). The parent stops each one it
started through its own ``Popen`` handle.

``python -m benchmarks._servers moto`` / ``... proxy HOST PORT`` / ``... azure`` run a child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["AzureVaultProcess", "MotoProcess", "ProxyProcess"]


class _Child:
    def __init__(self, *arguments: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._servers", *arguments],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        ready = self._line()
        if not ready.startswith("READY "):
            self.stop()
            raise RuntimeError(f"benchmark server {arguments[0]} did not start: {ready!r}")
        self.port = int(ready.split()[1])

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, command: str, argument: Any = None) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command} {json.dumps(argument)}\n")
        self.process.stdin.flush()
        return self._line()

    def stop(self) -> None:
        """Stop the child this object started (and only it)."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("stop null\n")
                self.process.stdin.close()
                self.process.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class MotoProcess(_Child):
    """moto's ``ThreadedMotoServer`` on 127.0.0.1 in a child process."""

    def __init__(self) -> None:
        super().__init__("moto", env=dict(os.environ))
        self.host = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class ProxyProcess(_Child):
    """``TCPProxy`` in front of ``upstream`` in a child process: latency, counting."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__("proxy", upstream[0], str(upstream[1]))
        self.host = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_latency(self, seconds: float) -> None:
        self.ask("latency", seconds)

    def clear(self) -> None:
        self.ask("clear")

    def count(self, *, header: tuple[str, str] | None = None, suffix: str | None = None) -> int:
        """Requests seen since the last ``clear``: all, or with ``header``, or whose target ends so."""
        return int(self.ask("count", {"header": header, "suffix": suffix}))

    def connections(self) -> int:
        return int(self.ask("connections"))


class AzureVaultProcess(_Child):
    """``tests.servers.azure_keyvault.FakeKeyVault`` (HTTPS vault and token endpoint) in a child process.

    Its ``latency`` is added by the server to every vault request (not to the
    token endpoint): TLS traffic cannot be delayed per request by the TCP proxy.
    """

    def __init__(self) -> None:
        super().__init__("azure", env=dict(os.environ))
        info = json.loads(self.ask("info"))
        self.url: str = info["url"]
        self.ca_file: str = info["ca_file"]
        self.tenant: str = info["tenant"]

    def set_secret(self, name: str, value: str) -> None:
        self.ask("secret", {"name": name, "value": value})

    def add_client(self, client_id: str, client_secret: str) -> None:
        self.ask("client", {"id": client_id, "secret": client_secret})

    def set_latency(self, seconds: float) -> None:
        self.ask("latency", seconds)

    def reads(self) -> int:
        """Authenticated secret reads so far."""
        return int(self.ask("reads"))


# -- the children ------------------------------------------------------------------------


def _serve_moto() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        print(f"READY {server.get_host_and_port()[1]}", flush=True)
        for line in sys.stdin:
            if line.split(" ", 1)[0] == "stop":
                break
            print("unknown", flush=True)
    finally:
        server.stop()


def _serve_proxy(host: str, port: int) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.servers.proxy import TCPProxy

    proxy = TCPProxy((host, port)).start()
    try:
        print(f"READY {proxy.port}", flush=True)
        for line in sys.stdin:
            command, _, raw = line.strip().partition(" ")
            argument = json.loads(raw or "null")
            if command == "stop":
                break
            if command == "latency":
                proxy.latency = float(argument)
                print("ok", flush=True)
            elif command == "clear":
                proxy.clear()
                print("ok", flush=True)
            elif command == "connections":
                print(proxy.connections, flush=True)
            elif command == "count":
                header = tuple(argument["header"]) if argument.get("header") else None
                print(proxy.count(_ends_with(argument.get("suffix")), header=header), flush=True)
            else:
                print("unknown", flush=True)
    finally:
        proxy.stop()


def _serve_azure() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.servers.azure_keyvault import FakeKeyVault

    fake = FakeKeyVault().start()
    try:
        print(f"READY {fake.port}", flush=True)
        for line in sys.stdin:
            command, _, raw = line.strip().partition(" ")
            argument = json.loads(raw or "null")
            if command == "stop":
                break
            if command == "info":
                print(
                    json.dumps({"url": fake.url, "ca_file": fake.ca_file, "tenant": fake.tenant}), flush=True
                )
            elif command == "secret":
                fake.set_secret(argument["name"], argument["value"])
                print("ok", flush=True)
            elif command == "client":
                fake.add_client(argument["id"], argument["secret"])
                print("ok", flush=True)
            elif command == "latency":
                fake.latency = float(argument)
                print("ok", flush=True)
            elif command == "reads":
                with fake._lock:
                    reads = sum(1 for _, path, auth in fake.requests if path.startswith("/secrets/") and auth)
                print(reads, flush=True)
            else:
                print("unknown", flush=True)
    finally:
        fake.stop()


def _ends_with(suffix: str | None) -> Any:
    return (lambda request: request.target.endswith(suffix)) if suffix else None


if __name__ == "__main__":
    if sys.argv[1:2] == ["moto"]:
        _serve_moto()
    elif sys.argv[1:2] == ["proxy"] and len(sys.argv) == 4:
        _serve_proxy(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["azure"]:
        _serve_azure()
    else:
        sys.exit("usage: python -m benchmarks._servers moto | proxy HOST PORT | azure")
