"""An in-process GCP Secret Manager that speaks the real gRPC wire protocol.

:class:`FakeSecretManager` serves ``google.cloud.secretmanager.v1.SecretManagerService``
on ``127.0.0.1`` (a free port), built on the client library's own proto-plus
message types, so requests and responses are encoded exactly as Google's are.
Point the real client, or a ``gcp-sm`` source, at :attr:`FakeSecretManager.endpoint`:
a loopback endpoint makes the source use a plaintext channel and no
credentials, so nothing ever reaches Google.

Implemented RPCs: ``CreateSecret``, ``GetSecret``, ``ListSecrets`` (paged; of
the filter language only ``name:TEXT``, secret ids containing TEXT),
``DeleteSecret``, ``AddSecretVersion``, ``GetSecretVersion``,
``ListSecretVersions``, ``AccessSecretVersion`` (numbered versions and
``latest``, the most recently created version whatever its state, as on GCP),
``EnableSecretVersion``, ``DisableSecretVersion`` and ``DestroySecretVersion``.
Others answer ``UNIMPLEMENTED``.

For tests of error handling it counts every call per method and resource
(:meth:`~FakeSecretManager.calls`), and can be told to fail a method with a
``grpc.StatusCode``, to be slow, or to send a payload whose CRC32C does not
match (:meth:`~FakeSecretManager.fail`, :meth:`~FakeSecretManager.delay`,
:meth:`~FakeSecretManager.corrupt_crc`). Faults are checked in the order they
were added and a call takes the first one that applies;
:meth:`~FakeSecretManager.clear_faults` disarms them all.

Needs the ``gcp`` extra (``pip install 'authchain[gcp]'``); grpc and the Google
libraries are imported when a server is started, not when this module is.

Example:
    >>> from authchain import Chain
    >>> from authchain.backends.gcp.source import GCPSecretManagerSource
    >>> with FakeSecretManager(project="demo-project") as fake:
    ...     fake.set_secret("DB_PASSWORD", "example-value")
    ...     source = GCPSecretManagerSource(project="demo-project", endpoint=fake.endpoint)
    ...     with Chain([source]) as chain:
    ...         print(chain.resolve("DB_PASSWORD").get_secret_value())
    ...     print(fake.calls("AccessSecretVersion"))
    'projects/demo-project/secrets/DB_PASSWORD/versions/1'
    example-value
    1

A pytest fixture for your own suite::

    @pytest.fixture(scope="session")
    def secret_manager():
        with FakeSecretManager(project="test-project") as fake:
            yield fake
"""

from __future__ import annotations

import datetime
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authchain.errors import ConfigError

__all__ = ["SERVICE", "FakeSecretManager"]

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
# A project (``P``) or a regional parent (``P/locations/L``) is one owner of secrets:
# regional secrets are a namespace of their own, as on the real service.
_OWNER = r"([^/]+(?:/locations/[^/]+)?)"
_SECRET_NAME = re.compile(rf"projects/{_OWNER}/secrets/([^/]+)")
_VERSION_NAME = re.compile(rf"projects/{_OWNER}/secrets/([^/]+)/versions/([^/]+)")


@dataclass
class _Version:
    number: int
    data: bytes
    crc: int
    state: str = "ENABLED"
    created: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))


@dataclass
class _Secret:
    labels: dict[str, str]
    created: datetime.datetime
    versions: list[_Version] = field(default_factory=list)


@dataclass
class _Fault:
    method: str
    match: str
    code: Any = None
    message: str = ""
    delay: float = 0.0
    corrupt_crc: bool = False
    times: int | None = None

    def applies(self, method: str, resource: str) -> bool:
        return self.method in (method, "*") and resource.startswith(self.match)


class _Abort(Exception):
    """Raised inside a handler to end the call with a status (turned into context.abort)."""

    def __init__(self, code_name: str, message: str) -> None:
        super().__init__(message)
        self.code_name = code_name
        self.message = message


class FakeSecretManager:
    """A Secret Manager gRPC server on ``127.0.0.1``, with state you can seed and faults you can inject.

    Args:
        project: the project :meth:`set_secret` and friends use when given a bare secret id.
        host: the address to listen on; loopback only, so a test never opens a public port.
        max_workers: server threads (concurrent calls it can hold, slow ones included).
    """

    def __init__(self, project: str = "authchain-test", *, host: str = "127.0.0.1", max_workers: int = 32):
        if host not in {"127.0.0.1", "::1", "localhost"}:
            raise ConfigError("FakeSecretManager listens on loopback only (127.0.0.1, ::1 or localhost)")
        self.project = project
        self.host = host
        self.max_workers = max_workers
        self.port: int | None = None
        self._server: Any = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._secrets: dict[tuple[str, str], _Secret] = {}
        self._faults: list[_Fault] = []
        self._calls: Counter[tuple[str, str]] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._max_in_flight: Counter[str] = Counter()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> FakeSecretManager:
        """Start serving on a free port; returns ``self``."""
        import grpc

        if self._server is not None:
            return self
        self._stopping.clear()
        server = grpc.server(ThreadPoolExecutor(self.max_workers, thread_name_prefix="fake-secret-manager"))
        server.add_generic_rpc_handlers((self._handler(),))
        self.port = server.add_insecure_port(f"{self._bind_host()}:0")
        if not self.port:
            raise RuntimeError(f"FakeSecretManager could not bind {self.host}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop the server at once: calls in progress (slow ones too) are cancelled."""
        server, self._server = self._server, None
        self.port = None
        self._stopping.set()
        if server is not None:
            server.stop(grace=None).wait(5)

    def __enter__(self) -> FakeSecretManager:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``host:port`` for a client or a ``gcp-sm`` source's ``endpoint`` setting."""
        if self.port is None:
            raise RuntimeError("the FakeSecretManager is not started")
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def client(self) -> Any:
        """A real ``SecretManagerServiceClient`` connected over a plaintext channel (no credentials)."""
        from authchain.backends.gcp.source import RECONNECT_BACKOFF_MAX, secret_manager_client

        return secret_manager_client(self.endpoint, lambda: None, RECONNECT_BACKOFF_MAX)

    def _bind_host(self) -> str:
        return "[::1]" if self.host == "::1" else self.host

    # -- seeding state directly (no RPC, not counted) -------------------------

    def set_secret(
        self, secret: str, value: str | bytes, *, project: str | None = None, location: str | None = None
    ) -> str:
        """Create ``secret`` if needed and add ``value`` as its newest version; returns the version name.

        ``location``: a regional secret (``projects/P/locations/L/secrets/S``), apart from
        the global secret of the same id, as on the real service.
        """
        project = project or self.project
        if location:
            project = f"{project}/locations/{location}"
        with self._lock:
            if (project, secret) not in self._secrets:
                self._create(project, secret, {})
            version = self._add(project, secret, value.encode() if isinstance(value, str) else value)
        return f"projects/{project}/secrets/{secret}/versions/{version.number}"

    def set_version_state(self, secret: str, version: int, state: str, *, project: str | None = None) -> None:
        """Set a version to ``"ENABLED"``, ``"DISABLED"`` or ``"DESTROYED"`` (destroying drops its data)."""
        if state not in {"ENABLED", "DISABLED", "DESTROYED"}:
            raise ValueError("state must be ENABLED, DISABLED or DESTROYED")
        with self._lock:
            found = self._version(project or self.project, secret, str(version))
            found.state = state
            if state == "DESTROYED":
                found.data = b""

    def reset(self) -> None:
        """Forget every secret, fault and count."""
        with self._lock:
            self._secrets.clear()
        self.clear_faults()
        self.reset_counts()

    # -- faults ----------------------------------------------------------------------

    def fail(
        self, method: str, code: Any, *, times: int | None = None, match: str = "", message: str = ""
    ) -> None:
        """Make ``method`` (``"*"``: every method) end with ``code`` (a ``grpc.StatusCode``).

        Args:
            times: how many calls fail before the method works again (None: all of them).
            match: only calls whose resource name starts with this
                (``"projects/p/secrets/DB_"``).
            message: the status details (default: a message naming the injected code).
        """
        self._inject(_Fault(method, match, code=code, message=message, times=times))

    def delay(self, method: str, seconds: float, *, times: int | None = None, match: str = "") -> None:
        """Make ``method`` wait ``seconds`` before answering (a cancelled call stops waiting)."""
        self._inject(_Fault(method, match, delay=seconds, times=times))

    def corrupt_crc(self, *, times: int | None = None, match: str = "") -> None:
        """Make ``AccessSecretVersion`` send a ``data_crc32c`` that does not match the data."""
        self._inject(_Fault("AccessSecretVersion", match, corrupt_crc=True, times=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _inject(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, resource: str) -> _Fault | None:
        """The first fault that applies to this call, used up by one."""
        with self._lock:
            for fault in self._faults:
                if fault.applies(method, resource) and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    # -- counting -------------------------------------------------------------------------

    def calls(self, method: str | None = None, *, match: str = "") -> int:
        """Calls received (injected failures included) for ``method`` (None: all) on
        resources whose name starts with ``match``."""
        with self._lock:
            return sum(
                count
                for (name, resource), count in self._calls.items()
                if (method is None or name == method) and resource.startswith(match)
            )

    def max_in_flight(self, method: str) -> int:
        """The most calls of ``method`` the server was handling at one time."""
        with self._lock:
            return self._max_in_flight[method]

    def reset_counts(self) -> None:
        with self._lock:
            self._calls.clear()
            self._max_in_flight.clear()

    # -- the gRPC service -------------------------------------------------------------

    def _handler(self) -> Any:
        import grpc
        from google.cloud.secretmanager_v1 import types
        from google.protobuf import empty_pb2

        def serialize_empty(_: object) -> bytes:
            return bytes(empty_pb2.Empty().SerializeToString())

        methods: dict[str, tuple[Callable[[Any], Any], Any, Callable[[Any], bytes]]] = {
            "CreateSecret": (self._create_secret, types.CreateSecretRequest, types.Secret.serialize),
            "GetSecret": (self._get_secret, types.GetSecretRequest, types.Secret.serialize),
            "ListSecrets": (
                self._list_secrets,
                types.ListSecretsRequest,
                types.ListSecretsResponse.serialize,
            ),
            "DeleteSecret": (self._delete_secret, types.DeleteSecretRequest, serialize_empty),
            "AddSecretVersion": (
                self._add_secret_version,
                types.AddSecretVersionRequest,
                types.SecretVersion.serialize,
            ),
            "GetSecretVersion": (
                self._get_secret_version,
                types.GetSecretVersionRequest,
                types.SecretVersion.serialize,
            ),
            "ListSecretVersions": (
                self._list_secret_versions,
                types.ListSecretVersionsRequest,
                types.ListSecretVersionsResponse.serialize,
            ),
            "AccessSecretVersion": (
                self._access_secret_version,
                types.AccessSecretVersionRequest,
                types.AccessSecretVersionResponse.serialize,
            ),
            "EnableSecretVersion": (
                self._state_setter("ENABLED"),
                types.EnableSecretVersionRequest,
                types.SecretVersion.serialize,
            ),
            "DisableSecretVersion": (
                self._state_setter("DISABLED"),
                types.DisableSecretVersionRequest,
                types.SecretVersion.serialize,
            ),
            "DestroySecretVersion": (
                self._state_setter("DESTROYED"),
                types.DestroySecretVersionRequest,
                types.SecretVersion.serialize,
            ),
        }
        handlers = {
            method: grpc.unary_unary_rpc_method_handler(
                self._serve(method, implementation),
                request_deserializer=request_type.deserialize,
                response_serializer=serializer,
            )
            for method, (implementation, request_type, serializer) in methods.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)

    def _serve(self, method: str, implementation: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
        import grpc

        def handle(request: Any, context: Any) -> Any:
            resource = str(getattr(request, "name", "") or getattr(request, "parent", ""))
            with self._track(method, resource):
                fault = self._take_fault(method, resource)
                if fault is not None and fault.delay:
                    self._wait(fault.delay, context)
                if fault is not None and fault.code is not None:
                    context.abort(fault.code, fault.message or f"injected {fault.code.name} for {resource}")
                try:
                    response = implementation(request)
                except _Abort as abort:
                    context.abort(getattr(grpc.StatusCode, abort.code_name), abort.message)
                    raise  # not reached: context.abort raises
                if fault is not None and fault.corrupt_crc:
                    response.payload.data_crc32c = (response.payload.data_crc32c + 1) & 0xFFFFFFFF
                return response

        return handle

    @contextmanager
    def _track(self, method: str, resource: str) -> Iterator[None]:
        with self._lock:
            self._calls[(method, resource)] += 1
            self._in_flight[method] += 1
            self._max_in_flight[method] = max(self._max_in_flight[method], self._in_flight[method])
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[method] -= 1

    def _wait(self, seconds: float, context: Any) -> None:
        """Sleep, but stop early when the client gives up (deadline, cancel) or the server stops."""
        ended = threading.Event()
        context.add_callback(ended.set)
        waited = 0.0
        while waited < seconds and not ended.is_set() and not self._stopping.is_set():
            step = min(0.02, seconds - waited)
            ended.wait(step)
            waited += step

    # -- RPC implementations (state under the lock) ---------------------------------

    def _create_secret(self, request: Any) -> Any:
        project = _project_of(request.parent)
        if not _ID.fullmatch(request.secret_id):
            raise _Abort("INVALID_ARGUMENT", "secret_id must match [A-Za-z0-9_-]{1,255}")
        with self._lock:
            if (project, request.secret_id) in self._secrets:
                raise _Abort(
                    "ALREADY_EXISTS",
                    f"Secret [projects/{project}/secrets/{request.secret_id}] already exists.",
                )
            secret = self._create(project, request.secret_id, dict(request.secret.labels))
        return self._secret_message(project, request.secret_id, secret)

    def _get_secret(self, request: Any) -> Any:
        project, secret_id = _secret_name(request.name)
        with self._lock:
            secret = self._secret(project, secret_id)
            return self._secret_message(project, secret_id, secret)

    def _list_secrets(self, request: Any) -> Any:
        from google.cloud.secretmanager_v1 import types

        project = _project_of(request.parent)
        wanted = _name_filter(request.filter)
        with self._lock:
            names = sorted(
                secret_id for (owner, secret_id) in self._secrets if owner == project and wanted in secret_id
            )
            page, token = _page(names, request.page_size, request.page_token)
            secrets = [self._secret_message(project, name, self._secrets[(project, name)]) for name in page]
        return types.ListSecretsResponse(secrets=secrets, next_page_token=token, total_size=len(names))

    def _delete_secret(self, request: Any) -> None:
        project, secret_id = _secret_name(request.name)
        with self._lock:
            self._secret(project, secret_id)
            del self._secrets[(project, secret_id)]

    def _add_secret_version(self, request: Any) -> Any:
        project, secret_id = _secret_name(request.parent)
        data = bytes(request.payload.data)
        if "data_crc32c" in request.payload and request.payload.data_crc32c != _crc32c(data):
            raise _Abort("INVALID_ARGUMENT", "Checksum mismatch: data_crc32c does not match the data.")
        with self._lock:
            self._secret(project, secret_id)
            version = self._add(project, secret_id, data)
            return self._version_message(project, secret_id, version)

    def _get_secret_version(self, request: Any) -> Any:
        project, secret_id, wanted = _version_name(request.name)
        with self._lock:
            return self._version_message(project, secret_id, self._version(project, secret_id, wanted))

    def _list_secret_versions(self, request: Any) -> Any:
        from google.cloud.secretmanager_v1 import types

        project, secret_id = _secret_name(request.parent)
        with self._lock:
            secret = self._secret(project, secret_id)
            newest_first = [str(version.number) for version in reversed(secret.versions)]
            page, token = _page(newest_first, request.page_size, request.page_token)
            versions = [
                self._version_message(project, secret_id, secret.versions[int(number) - 1]) for number in page
            ]
        return types.ListSecretVersionsResponse(
            versions=versions, next_page_token=token, total_size=len(newest_first)
        )

    def _access_secret_version(self, request: Any) -> Any:
        from google.cloud.secretmanager_v1 import types

        project, secret_id, wanted = _version_name(request.name)
        with self._lock:
            version = self._version(project, secret_id, wanted)
            name = f"projects/{project}/secrets/{secret_id}/versions/{version.number}"
            if version.state != "ENABLED":
                raise _Abort("FAILED_PRECONDITION", f"Secret Version [{name}] is in {version.state} state.")
            payload = types.SecretPayload(data=version.data, data_crc32c=version.crc)
        return types.AccessSecretVersionResponse(name=name, payload=payload)

    def _state_setter(self, state: str) -> Callable[[Any], Any]:
        def set_state(request: Any) -> Any:
            project, secret_id, wanted = _version_name(request.name)
            with self._lock:
                version = self._version(project, secret_id, wanted)
                if version.state == "DESTROYED" and state != "DESTROYED":
                    raise _Abort("FAILED_PRECONDITION", "a destroyed version cannot change state")
                version.state = state
                if state == "DESTROYED":
                    version.data = b""
                return self._version_message(project, secret_id, version)

        return set_state

    # -- state helpers (caller holds the lock) ----------------------------------------

    def _create(self, project: str, secret_id: str, labels: dict[str, str]) -> _Secret:
        if not _ID.fullmatch(secret_id):
            raise ValueError("a secret id must match [A-Za-z0-9_-]{1,255}")
        secret = _Secret(labels, datetime.datetime.now(datetime.timezone.utc))
        self._secrets[(project, secret_id)] = secret
        return secret

    def _add(self, project: str, secret_id: str, data: bytes) -> _Version:
        secret = self._secrets[(project, secret_id)]
        version = _Version(len(secret.versions) + 1, data, _crc32c(data))
        secret.versions.append(version)
        return version

    def _secret(self, project: str, secret_id: str) -> _Secret:
        secret = self._secrets.get((project, secret_id))
        if secret is None:
            raise _Abort("NOT_FOUND", f"Secret [projects/{project}/secrets/{secret_id}] not found.")
        return secret

    def _version(self, project: str, secret_id: str, wanted: str) -> _Version:
        secret = self._secret(project, secret_id)
        name = f"projects/{project}/secrets/{secret_id}"
        if wanted == "latest":
            if not secret.versions:
                raise _Abort("NOT_FOUND", f"Secret [{name}] not found or has no versions.")
            return secret.versions[-1]
        if not wanted.isdigit() or not 1 <= int(wanted) <= len(secret.versions):
            raise _Abort("NOT_FOUND", f"Secret Version [{name}/versions/{wanted}] not found.")
        return secret.versions[int(wanted) - 1]

    def _secret_message(self, project: str, secret_id: str, secret: _Secret) -> Any:
        from google.cloud.secretmanager_v1 import types

        return types.Secret(
            name=f"projects/{project}/secrets/{secret_id}",
            labels=secret.labels,
            create_time=secret.created,
            replication=types.Replication(automatic=types.Replication.Automatic()),
        )

    def _version_message(self, project: str, secret_id: str, version: _Version) -> Any:
        from google.cloud.secretmanager_v1 import types

        return types.SecretVersion(
            name=f"projects/{project}/secrets/{secret_id}/versions/{version.number}",
            create_time=version.created,
            state=getattr(types.SecretVersion.State, version.state),
        )

    def __repr__(self) -> str:
        where = self.endpoint if self.port is not None else "not started"
        return f"<FakeSecretManager {where}: {len(self._secrets)} secrets>"


def _project_of(parent: str) -> str:
    match = re.fullmatch(rf"projects/{_OWNER}", parent)
    if match is None:
        raise _Abort("INVALID_ARGUMENT", f"parent {parent!r} is not projects/PROJECT[/locations/LOCATION]")
    return match.group(1)


def _secret_name(name: str) -> tuple[str, str]:
    match = _SECRET_NAME.fullmatch(name)
    if match is None:
        raise _Abort("INVALID_ARGUMENT", f"{name!r} is not projects/PROJECT/secrets/SECRET")
    return match.group(1), match.group(2)


def _version_name(name: str) -> tuple[str, str, str]:
    match = _VERSION_NAME.fullmatch(name)
    if match is None:
        raise _Abort("INVALID_ARGUMENT", f"{name!r} is not projects/PROJECT/secrets/SECRET/versions/VERSION")
    return match.group(1), match.group(2), match.group(3)


def _name_filter(text: str) -> str:
    """The TEXT of a ``name:TEXT`` filter ("" for none); the rest of GCP's filter language is refused."""
    text = text.strip()
    if not text:
        return ""
    match = re.fullmatch(r"name:([A-Za-z0-9_-]+)", text)
    if match is None:
        raise _Abort("INVALID_ARGUMENT", f"the fake supports only name:TEXT filters, not {text!r}")
    return match.group(1)


def _page(items: list[str], page_size: int, token: str) -> tuple[list[str], str]:
    start = int(token) if token.isdigit() else 0
    size = page_size if page_size > 0 else 25000
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def _crc32c(data: bytes) -> int:
    import google_crc32c

    return int(google_crc32c.value(data))
