"""Shared pieces of the hardening suite: every backend, on its real server, behind one shape.

``make_backend(kind, request)`` gives a :class:`Backend`: a configured source
on a fresh prefix (so tests never see each other's secrets), ``put(name,
value)`` to store a secret where ``source.key_for(name)`` finds it, ``chain()``
to wrap the source in a chain (with the source's credentials in a small env
source after it), and ``calls(name)`` to count what reached the real server
for that name. Servers are only started for the backends a test asks for.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain
from authchain.backends.env.source import EnvSource
from authchain.sources.base import Source

BACKENDS = ("vault", "aws-sm", "aws-ssm", "gcp-sm", "azure-kv", "keyring", "prefect", "env", "dotenv")
REMOTE = ("vault", "aws-sm", "aws-ssm", "gcp-sm")
GCP_PROJECT = "authchain-test"


@dataclass
class Backend:
    kind: str
    source: Source
    put: Callable[[str, str], None]
    calls: Callable[[str], int]
    """Requests for ``name`` that reached the server (or the backend object)."""
    creds: dict[str, str] = field(default_factory=dict)
    reference: Callable[[str], str] | None = None
    """The reference that names ``name`` in this backend, where one exists."""
    requested: Callable[[], list[str]] = list
    """Every backend-side resource asked for so far (paths, secret ids)."""
    extras: dict[str, Any] = field(default_factory=dict)

    def chain(self, *more: Source, **options: Any) -> Chain:
        """A chain of this source, then ``more``, then its credentials (env)."""
        sources: list[Source] = [self.source, *more]
        if self.creds:
            sources.append(EnvSource(environ=dict(self.creds), name="creds"))
        options.setdefault("backoff", 0.01)
        return Chain(sources, **options)


@pytest.fixture
def fine_grained_switching() -> Iterator[None]:
    """The interpreter switches threads every microsecond: races show up at once."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def token() -> str:
    return secrets.token_hex(4)


def make_backend(kind: str, request: pytest.FixtureRequest, **settings: Any) -> Backend:
    """Build one backend on a fresh prefix; ``settings`` go to its source."""
    return _MAKERS[kind](request, settings)


def _vault(request: pytest.FixtureRequest, settings: dict[str, Any]) -> Backend:
    from authchain.backends.vault.source import VaultSource
    from tests.servers.openbao import OpenBao

    openbao: OpenBao = request.getfixturevalue("openbao")
    prefix = f"t/{token()}"
    settings.setdefault("url", openbao.url)
    settings.setdefault("timeout", 5.0)
    source = VaultSource(path_prefix=prefix, name="vault", **settings)
    mark = openbao.audit_mark()

    def requested() -> list[str]:
        return openbao.requests_since(mark)

    def reads(name: str) -> int:
        """Reads of the secret the server logged (the test's own writes are not counted)."""
        wanted = f"secret/data/{prefix}/{name}"
        with openbao.audit_log.open("rb") as handle:
            handle.seek(mark)
            entries = [json.loads(line) for line in handle.read().splitlines()]
        return sum(
            1
            for entry in entries
            if entry.get("type") == "request"
            and entry["request"]["path"] == wanted
            and entry["request"]["operation"] == "read"
        )

    return Backend(
        "vault",
        source,
        put=lambda name, value: openbao.put(f"{prefix}/{name}", {name: value}),
        calls=reads,
        creds={"VAULT_TOKEN": openbao.tokens["reader"]},
        reference=lambda name: f"vault://secret/{prefix}/{name}#{name}",
        requested=requested,
        extras={"server": openbao, "prefix": prefix},
    )


def _aws(kind: str, request: pytest.FixtureRequest, settings: dict[str, Any]) -> Backend:
    from authchain.backends.aws.source import AWSParameterStoreSource, AWSSecretsManagerSource
    from tests.servers.moto_server import REGION, MotoServer
    from tests.servers.proxy import TCPProxy

    moto: MotoServer = request.getfixturevalue("moto")
    proxy: TCPProxy = request.getfixturevalue("moto_proxy")
    settings.setdefault("region", REGION)
    settings.setdefault("endpoint_url", proxy.url)
    settings.setdefault("timeout", 5.0)
    tag = token()
    if kind == "aws-sm":
        client = moto.client("secretsmanager")
        prefix = f"t{tag}/"
        source: Source = AWSSecretsManagerSource(prefix=prefix, name="aws-sm", **settings)

        def put(name: str, value: str) -> None:
            client.create_secret(Name=prefix + name, SecretString=value)

        def reference(name: str) -> str:
            return f"aws-sm://{prefix}{name}"

        field_name = "SecretId"
    else:
        client = moto.client("ssm")
        prefix = f"/t{tag}/"
        source = AWSParameterStoreSource(path_prefix=prefix.rstrip("/"), name="aws-ssm", **settings)

        def put(name: str, value: str) -> None:
            client.put_parameter(Name=prefix + name, Value=value, Type="SecureString")

        def reference(name: str) -> str:
            return f"aws-ssm://{prefix}{name}"

        field_name = "Name"

    def requested() -> list[str]:
        asked: list[str] = []
        for item in list(proxy.requests):
            try:
                body = json.loads(item.body or b"{}")
            except ValueError:
                continue
            for key in (field_name, "SecretIdList", "Names"):
                found = body.get(key)
                if isinstance(found, str):
                    asked.append(found)
                elif isinstance(found, list):
                    asked.extend(str(entry) for entry in found)
        return asked

    return Backend(
        kind,
        source,
        put=put,
        calls=lambda name: requested().count(prefix + name),
        reference=reference,
        requested=requested,
        extras={"proxy": proxy, "moto": moto, "prefix": prefix, "client": client},
    )


def _gcp(request: pytest.FixtureRequest, settings: dict[str, Any]) -> Backend:
    from authchain.backends.gcp.source import GCPSecretManagerSource
    from authchain.testing.gcp import FakeSecretManager

    fake: FakeSecretManager = request.getfixturevalue("gcp_fake")
    prefix = f"t{token()}_"
    settings.setdefault("endpoint", fake.endpoint)
    settings.setdefault("timeout", 5.0)
    source = GCPSecretManagerSource(project=GCP_PROJECT, prefix=prefix, environ={}, name="gcp-sm", **settings)
    request.addfinalizer(source.close)
    resources = f"projects/{GCP_PROJECT}/secrets/"

    def requested() -> list[str]:
        with fake._lock:  # the fake's own counter: every call, failed ones too
            return [
                resource
                for (method, resource), number in fake._calls.items()
                for _ in range(number)
                if method == "AccessSecretVersion"
            ]

    return Backend(
        "gcp-sm",
        source,
        put=lambda name, value: fake.set_secret(prefix + name, value, project=GCP_PROJECT),
        calls=lambda name: fake.calls("AccessSecretVersion", match=f"{resources}{prefix}{name}/"),
        reference=lambda name: f"gcp-sm://{resources}{prefix}{name}/versions/latest",
        requested=requested,
        extras={"fake": fake, "prefix": prefix},
    )


def _azure(request: pytest.FixtureRequest, settings: dict[str, Any]) -> Backend:
    """The HTTPS Key Vault fake; the service principal comes from AZURE_* (the source's
    environ seam), its token from the fake's authority."""
    pytest.importorskip("azure.keyvault.secrets")
    from authchain.backends.azure.source import AzureKeyVaultSource
    from authchain.testing import canary
    from tests.servers.azure_keyvault import FakeKeyVault

    fake: FakeKeyVault = request.getfixturevalue("azure_vault")
    client_id, client_secret = "44444444-5555-4666-8777-888888888888", canary("azure-sp")
    fake.add_client(client_id, client_secret)
    environ = {
        "AZURE_TENANT_ID": fake.tenant,
        "AZURE_CLIENT_ID": client_id,
        "AZURE_CLIENT_SECRET": client_secret,
    }
    prefix = f"t{token()}-"
    settings.setdefault("timeout", 5.0)
    settings.setdefault("vault_url", fake.url)  # a proxy in front of it, for faults
    source = AzureKeyVaultSource(
        vault_name="hardening-vault",
        authority=fake.url,
        ca_bundle=fake.ca_file,
        prefix=prefix,
        environ=environ,
        name="azure-kv",
        **settings,
    )
    request.addfinalizer(source.close)

    def requested() -> list[str]:
        with fake._lock:
            paths = [path for method, path, auth in fake.requests if auth and path.startswith("/secrets/")]
        return [path.split("/")[2] for path in paths]

    def calls(name: str) -> int:
        secret = source.secret_name(name).lower()
        return sum(1 for asked in requested() if asked.lower() == secret)

    return Backend(
        "azure-kv",
        source,
        put=lambda name, value: fake.set_secret(source.secret_name(name), value),
        calls=calls,
        reference=lambda name: f"azure-kv://hardening-vault/{source.secret_name(name)}",
        requested=requested,
        extras={"fake": fake, "prefix": prefix, "client_secret": client_secret},
    )


class CountingKeyring:
    """keyrings.alt's real file keyring (a file in the test's folder), counting reads."""

    def __init__(self, path: Path) -> None:
        from keyrings.alt.file import PlaintextKeyring

        self.backend = PlaintextKeyring()
        self.backend.file_path = str(path)
        self.reads: list[tuple[str, str]] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.reads.append((service, username))
        value: str | None = self.backend.get_password(service, username)
        return value

    def set_password(self, service: str, username: str, value: str) -> None:
        self.backend.set_password(service, username, value)


def _keyring(request: pytest.FixtureRequest, settings: dict[str, Any]) -> Backend:
    pytest.importorskip("keyrings.alt")
    from authchain.backends.keyring.source import KeyringSource

    tmp_path: Path = request.getfixturevalue("tmp_path")
    keyring = CountingKeyring(tmp_path / f"keyring-{token()}.cfg")
    service = f"svc-{token()}"
    source = KeyringSource(service=service, backend=keyring, name="keyring", **settings)
    return Backend(
        "keyring",
        source,
        put=lambda name, value: keyring.set_password(service, name, value),
        calls=lambda name: keyring.reads.count((service, name)),
        reference=lambda name: f"keyring://{service}/{name}",
        requested=lambda: [f"{s}/{u}" for s, u in keyring.reads],
        extras={"keyring": keyring},
    )


def _prefect(request: pytest.FixtureRequest, settings: dict[str, Any]) -> Backend:
    from authchain.backends.prefect.source import block_name_for

    request.getfixturevalue("prefect_api")
    from prefect.blocks.system import Secret

    prefix = f"t{token()}-"
    source = counting_prefect_source(
        block_prefix=prefix, only_in_run=False, legacy_env=False, name="prefect", **settings
    )

    def put(name: str, value: str) -> None:
        Secret(value=value).save(prefix + block_name_for(name), overwrite=True)

    return Backend(
        "prefect",
        source,
        put=put,
        calls=lambda name: source.loads.count(prefix + block_name_for(name)),
        reference=lambda name: f"prefect://{prefix}{block_name_for(name)}",
        requested=lambda: list(source.loads),
    )


def counting_prefect_source(**settings: Any) -> Any:
    """A PrefectSource that counts the Secret blocks it loads from the API."""
    from authchain.backends.prefect.source import PrefectSource

    global CountingPrefectSource
    if CountingPrefectSource is None:

        class Counting(PrefectSource):
            def __init__(self, **options: Any) -> None:
                super().__init__(**options)
                self.loads: list[str] = []

            def _load_block(self, block: str) -> Any:
                self.loads.append(block)
                return super()._load_block(block)

        Counting.__qualname__ = Counting.__name__ = "CountingPrefectSource"
        CountingPrefectSource = Counting
    return CountingPrefectSource(**settings)


CountingPrefectSource: Any = None  # built on first use: prefect's source module is imported lazily


class CountingEnviron(dict[str, str]):
    """An environment mapping that counts look-ups per variable."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.reads.append(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key)


def _env(request: pytest.FixtureRequest, settings: dict[str, Any]) -> Backend:
    environ = CountingEnviron()
    prefix = f"T{token().upper()}_"
    source = EnvSource(prefix=prefix, environ=environ, name="env", **settings)
    return Backend(
        "env",
        source,
        put=lambda name, value: environ.__setitem__(prefix + name, value),
        calls=lambda name: environ.reads.count(prefix + name),
        reference=lambda name: f"env://{prefix}{name}",
        requested=lambda: list(environ.reads),
    )


def _dotenv(request: pytest.FixtureRequest, settings: dict[str, Any]) -> Backend:
    from authchain.backends.dotenv.source import DotenvSource

    tmp_path: Path = request.getfixturevalue("tmp_path")
    path = tmp_path / f"{token()}.env"
    path.write_text("", encoding="utf-8")
    source = DotenvSource(path=path, name="dotenv", **settings)

    def put(name: str, value: str) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{name}='{value}'\n")

    return Backend(
        "dotenv",
        source,
        put=put,
        calls=lambda name: 0,
        reference=lambda name: f"dotenv://{path}#{name}",
    )


_MAKERS: dict[str, Callable[[pytest.FixtureRequest, dict[str, Any]], Backend]] = {
    "vault": _vault,
    "aws-sm": lambda request, settings: _aws("aws-sm", request, settings),
    "aws-ssm": lambda request, settings: _aws("aws-ssm", request, settings),
    "gcp-sm": _gcp,
    "azure-kv": _azure,
    "keyring": _keyring,
    "prefect": _prefect,
    "env": _env,
    "dotenv": _dotenv,
}


@pytest.fixture
def debug_sdk_logging() -> Iterator[list[logging.LogRecord]]:
    """Every log record at DEBUG, with the SDKs' own debug logging on; restored afterwards.

    The records are collected by a handler on the root logger *and* on
    ``google`` (google-api-core stops that logger from propagating once a
    client has set up its logging).
    """
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.DEBUG)
    names = (
        *("", "boto3", "botocore", "hvac", "urllib3", "requests", "grpc", "google", "prefect", "httpx"),
        *("azure", "msal"),
    )
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).propagate) for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger("google").propagate = True
    logging.getLogger().addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger().removeHandler(handler)
        # Undo only what is still this fixture's doing: a library that configured its own
        # logging during the test (Prefect's server start-up sets the ``prefect`` logger to
        # INFO, once per process) keeps that; putting back the NOTSET seen before would leave
        # ``prefect`` inheriting the root's WARNING for every later test, so a later test's
        # INFO run logs never reached Prefect's API (the "masking-order flake").
        for name, (level, propagate) in saved.items():
            logger = logging.getLogger(name)
            if logger.level == logging.DEBUG:
                logger.setLevel(level)
            logger.propagate = propagate


@pytest.fixture(autouse=True)
def _handler_filters_restored() -> Iterator[None]:
    """``install_log_masking()`` (and the CLI's ``main``) put a filter on the root logger's
    handlers, pytest's own capture handlers among them, which live for the whole session:
    take those filters off again after each test so later tests see the handlers as they were."""
    loggers = [logging.getLogger()] + [
        known for known in logging.root.manager.loggerDict.values() if isinstance(known, logging.Logger)
    ]
    handlers = {id(handler): handler for logger in loggers for handler in logger.handlers}
    saved = {key: list(handler.filters) for key, handler in handlers.items()}
    yield
    for key, handler in handlers.items():
        handler.filters[:] = saved[key]
