"""GCP Secret Manager: ``DB_PASSWORD`` → ``projects/P/secrets/<prefix>DB_PASSWORD/versions/latest``.

Regional secrets (data residency) live under ``projects/P/locations/L/secrets/S``
and are served only by the regional endpoint ``secretmanager.L.rep.googleapis.com``:
a ``location`` setting or the longer reference form selects them, and the
source keeps one client per location.

The SDK (``google-cloud-secret-manager``, about 200 ms to import) is imported
the first time the source talks to the service, never at import or
construction. The client library's own retry is switched off on every call
(``retry=None``): its default retries ``UNAVAILABLE`` for up to 60 s and
ignores ``timeout=``. The chain retries instead, with the source's
``retries``/``backoff``, and each call is bounded by ``timeout``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from authchain import _sdk_credentials, masking
from authchain._limits import MAX_BACKOFF_MAX_SECONDS, MAX_TIMEOUT_SECONDS
from authchain._scrub import scrubbed
from authchain.backends._net import is_loopback_host, timeout_within_deadline
from authchain.errors import BackendError, ConfigError
from authchain.refs import LazyPattern, ReferenceGrammar, SecretRef, check_json_field, require
from authchain.sources.base import (
    CheckResult,
    Found,
    Key,
    NotFound,
    Option,
    Source,
    check_credential_setting,
)
from authchain.values import SecretValue

__all__ = ["GCPSecretManagerSource", "SecretVersionKey", "regional_endpoint"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'authchain[gcp]'"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_PREFIX = re.compile(r"[A-Za-z0-9_-]*")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,62}")
_ENDPOINT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")
_INVALID_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_KEBAB_RUNS = re.compile(r"[^a-z0-9]+")

TRANSFORMS = ("none", "sanitize", "kebab")
RECONNECT_BACKOFF_MAX = 5.0
"""Default cap, in seconds, on gRPC's wait between reconnection attempts (see secret_manager_client)."""


class SecretVersionKey(NamedTuple):
    """The backend key: one secret version. ``project`` is None when it comes from the credentials;
    ``location`` is None for a global secret, else its region (``europe-west4``)."""

    project: str | None
    secret: str
    version: str
    location: str | None = None

    def resource(self, project: str) -> str:
        """``projects/P[/locations/L]/secrets/S/versions/V``."""
        where = f"projects/{project}/locations/{self.location}" if self.location else f"projects/{project}"
        return f"{where}/secrets/{self.secret}/versions/{self.version}"


def regional_endpoint(location: str | None) -> str | None:
    """The endpoint that serves ``location``'s secrets (None: the global one, the SDK's default)."""
    return f"secretmanager.{location}.rep.googleapis.com" if location else None


# -- references: gcp-sm://projects/P/secrets/S/versions/V (this backend's grammar; see authchain.refs) ------

_REF_PROJECT = LazyPattern(r"[a-z0-9][a-z0-9-]{0,62}")
_REF_LOCATION = LazyPattern(r"[a-z][a-z0-9-]{0,62}")
_REF_ID = LazyPattern(r"[A-Za-z0-9_-]{1,255}")


def _split_resource(parts: list[str]) -> tuple[str, str | None, list[str]]:
    """``projects/P[/locations/L]/secrets/...`` → (P, L or None, the parts from ``secrets`` on)."""
    if len(parts) > 3 and parts[2] == "locations":
        return parts[1], parts[3], parts[4:]
    return parts[1], None, parts[2:]


def _reference_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    parts = location.split("/")
    if parts[0] == "projects":
        project, region, tail = _split_resource(parts)
        require(
            len(tail) in {2, 4} and tail[0] == "secrets",
            "expected projects/P[/locations/L]/secrets/S[/versions/V]",
        )
        require(bool(_REF_PROJECT.fullmatch(project)), "the project is not a project id ([a-z0-9-])")
        if region is not None:
            require(bool(_REF_LOCATION.fullmatch(region)), "the location is not a region ([a-z0-9-])")
        secret, rest = tail[1], tail[2:]
    else:
        require(len(parts) in {1, 3}, "expected S or S/versions/V with a configured project")
        secret, rest = parts[0], parts[1:]
    require(bool(_REF_ID.fullmatch(secret)), "the secret is not a secret id ([A-Za-z0-9_-], 1-255)")
    if rest:
        require(rest[0] == "versions" and bool(_REF_ID.fullmatch(rest[1])), "expected .../versions/V")
    check_json_field(fragment)
    return location


class GCPSecretManagerSource(Source):
    """Reads secret versions from GCP Secret Manager over gRPC.

    Args:
        project: the project id; default ``GOOGLE_CLOUD_PROJECT``, else the
            project of the credentials.
        prefix: prepended to every name (``app_`` turns ``DB_PASSWORD`` into
            the secret ``app_DB_PASSWORD``). References ignore it.
        version: the version a name reads: ``latest`` (default), a number or an alias.
        location: a region (``europe-west4``): names read regional secrets
            (``projects/P/locations/L/secrets/S``) from that region's endpoint.
            Unset: global secrets. References name their own location.
        credentials: a secret name or reference (``env://GCP_SA_JSON``,
            ``vault://secret/gcp#key``) resolved through the rest of the chain
            to a service-account key (JSON); unset: Application Default
            Credentials (``google.auth.default()``).
        endpoint: ``host[:port]`` instead of ``secretmanager.googleapis.com``.
            A loopback host (``127.0.0.1``, ``::1``, ``localhost``) is spoken to
            in plaintext with no credentials at all: that is for test servers
            such as :class:`authchain.testing.gcp.FakeSecretManager`.
        timeout: seconds one call may take (default 10).
        name_transform: how a name becomes a secret id, which GCP limits to
            ``[A-Za-z0-9_-]``: ``none`` (default; anything else is a
            ``ConfigError``), ``sanitize`` (other characters become ``_``) or
            ``kebab`` (lower case, runs of other characters become ``-``:
            ``DB_PASSWORD`` → ``db-password``).
        environ: the mapping ``GOOGLE_CLOUD_PROJECT`` is read from (a seam for tests).

    Example:
        >>> source = GCPSecretManagerSource(project="my-project", prefix="app_")
        >>> source.describe_key(source.key_for("DB_PASSWORD"))
        'projects/my-project/secrets/app_DB_PASSWORD/versions/latest'
        >>> kebab = GCPSecretManagerSource(project="my-project", name_transform="kebab")
        >>> kebab.key_for("DB_PASSWORD").secret
        'db-password'
    """

    type = "gcp-sm"
    reference_grammar = ReferenceGrammar(
        "gcp-sm://projects/P[/locations/L]/secrets/S[/versions/V][#KEY] or gcp-sm://S[#KEY]",
        _reference_location,
    )
    rank = 100
    extra = "gcp"
    concurrent = True
    endpoint_options = ("endpoint",)
    options = (
        Option("project", str, None, "GCP project id (default: GOOGLE_CLOUD_PROJECT or the credentials')"),
        Option("prefix", str, "", "prepended to every name"),
        Option("version", str, "latest", "version a name reads: latest, a number or an alias"),
        Option("location", str, None, "region of regional secrets (default: global secrets)"),
        Option("credentials", str, None, "a name or reference holding a service-account key (JSON)"),
        Option("endpoint", str, None, "host[:port] of the service; loopback hosts use plaintext gRPC"),
        Option("timeout", float, 10.0, "seconds one call may take", minimum=0, maximum=MAX_TIMEOUT_SECONDS),
        Option(
            "reconnect_backoff_max",
            float,
            RECONNECT_BACKOFF_MAX,
            "most seconds gRPC waits between reconnection attempts (its own default: 120)",
            minimum=0.1,
            maximum=MAX_BACKOFF_MAX_SECONDS,
        ),
        Option("name_transform", str, "none", "how a name becomes a secret id", choices=TRANSFORMS),
    )

    # A test's environ mapping may hold values: a seam, not a setting, so it
    # never travels in a pickle (os.environ itself does not pickle either).
    _seam_attrs = ("_environ",)

    def __init__(
        self,
        *,
        project: str | None = None,
        prefix: str = "",
        version: str = "latest",
        location: str | None = None,
        credentials: str | None = None,
        endpoint: str | None = None,
        timeout: float = 10.0,
        reconnect_backoff_max: float = RECONNECT_BACKOFF_MAX,
        name_transform: str = "none",
        environ: Mapping[str, str] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        where = f"source {self.name!r}"
        if project is not None and not _PROJECT.fullmatch(project):
            raise ConfigError(f"{where}: project must be a project id ([a-z0-9-], starting with a letter)")
        if not _PREFIX.fullmatch(prefix):
            raise ConfigError(f"{where}: prefix may only hold [A-Za-z0-9_-] (GCP secret id characters)")
        if not _SECRET_ID.fullmatch(version):
            raise ConfigError(f"{where}: version must be 'latest', a version number or an alias")
        if location is not None and not _LOCATION.fullmatch(location):
            raise ConfigError(f"{where}: location must be a region id such as europe-west4 ([a-z0-9-])")
        if credentials is not None:
            check_credential_setting(
                credentials, where, name="GCP_CREDENTIALS", reference="env://GCP_SA_JSON"
            )
        if endpoint is not None and not _ENDPOINT.fullmatch(endpoint):
            raise ConfigError(f"{where}: endpoint must be host[:port] (no scheme, no path)")
        if not timeout > 0:
            raise ConfigError(f"{where}: timeout must be more than 0 seconds")
        if not reconnect_backoff_max >= 0.1:
            raise ConfigError(f"{where}: reconnect_backoff_max must be at least 0.1 seconds")
        if name_transform not in TRANSFORMS:
            raise ConfigError(f"{where}: name_transform must be one of {', '.join(map(repr, TRANSFORMS))}")
        self.project = project
        self.prefix = prefix
        self.version = version
        self.location = location
        self.credentials = credentials
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self.reconnect_backoff_max = float(reconnect_backoff_max)
        self.name_transform = name_transform
        self._environ = environ
        self._init_runtime()

    # Clients, channels and credentials belong to the process that made
    # them; a copy on a worker builds its own on first use.
    _runtime_attrs = ("_lock", "_clients", "_auth")

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._clients: dict[str | None, Any] = {}  # one per location (None: global)
        self._auth: tuple[Any, str | None] | None = None

    # -- names to keys (pure) -------------------------------------------------------

    def key_for(self, name: str) -> Key:
        secret = self._secret_id(self.prefix + name)
        if not _SECRET_ID.fullmatch(secret):
            hint = "" if self.name_transform != "none" else "; set name_transform = 'sanitize' or 'kebab'"
            raise ConfigError(
                f"{self.name}: the name {name!r} gives the secret id {secret!r}, which GCP does not allow "
                f"(only [A-Za-z0-9_-], 1-255 characters){hint}, or pin the name to a reference in [secrets]"
            )
        return SecretVersionKey(self._configured_project(), secret, self.version, self.location)

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        """``gcp-sm://projects/P[/locations/L]/secrets/S[/versions/V]`` or ``gcp-sm://S[/versions/V]``
        (this source's project and location). No prefix or transform applies; no version
        means ``latest``."""
        parts = ref.location.split("/")
        project: str | None
        if parts[0] == "projects":
            project, location, rest = _split_resource(parts)
        else:
            project, location, rest = self._configured_project(), self.location, ["secrets", *parts]
        version = rest[3] if len(rest) == 4 else "latest"
        return SecretVersionKey(project, rest[1], version, location), ref.field

    def describe_key(self, key: Key) -> str:
        if not isinstance(key, SecretVersionKey):
            return str(key)
        return key.resource(key.project or self._credentials_project() or "<project>")

    def _secret_id(self, text: str) -> str:
        if self.name_transform == "sanitize":
            return _INVALID_ID_CHARS.sub("_", text)
        if self.name_transform == "kebab":
            return _KEBAB_RUNS.sub("-", text.lower()).strip("-")
        return text

    def _configured_project(self) -> str | None:
        environ = self._environ if self._environ is not None else os.environ
        return self.project or environ.get("GOOGLE_CLOUD_PROJECT") or None

    def _credentials_project(self) -> str | None:
        auth = self._auth
        return auth[1] if auth is not None else None

    # -- the one verb ---------------------------------------------------------------

    def get(self, key: Key) -> Found | NotFound:
        if not isinstance(key, SecretVersionKey):
            raise ConfigError(f"{self.name}: {key!r} is not a GCP secret version key")
        name = self._resource(key)
        client = self._get_client(key.location)
        timeout = timeout_within_deadline(self.timeout)
        try:
            response = client.access_secret_version(request={"name": name}, retry=None, timeout=timeout)
        except Exception as error:
            return self._outcome(error, name, timeout)
        value = _value_of(response.payload, name)
        served = str(response.name).rsplit("/", 1)[-1]
        detail = name if served == key.version else f"{name} (version {served})"
        return Found(value, detail)

    def _resource(self, key: SecretVersionKey) -> str:
        return key.resource(key.project or self._project_from_credentials())

    def _outcome(self, error: Exception, name: str, timeout: float) -> NotFound:
        """Map an SDK exception to NotFound, or raise the BackendError it means."""
        problem = classify(error, name, timeout=timeout)
        if problem is None:
            return NotFound(f"{name} does not exist")
        raise problem from error

    # -- client and credentials (lazy, one per source) ------------------------------

    def _get_client(self, location: str | None = None) -> Any:
        """The client for ``location`` (None: global), one per location, each with the reconnect cap."""
        # Built with no lock held (credentials may be resolved through other
        # sources, whose own may come from this one: see VaultSource._session).
        with self._lock:
            client = self._clients.get(location)
        if client is not None:
            return client
        client = self._build_client(location)
        kept = self._keep_first(location, client)
        if kept is not client:
            with contextlib.suppress(Exception):  # another thread's client won: close this one's channel
                client.transport.close()
        return kept

    def _keep_first(self, location: str | None, client: Any) -> Any:
        with self._lock:
            return self._clients.setdefault(location, client)

    def _build_client(self, location: str | None) -> Any:
        # A configured endpoint (a private endpoint, a local fake) serves every location.
        endpoint = self.endpoint or regional_endpoint(location)
        if self._plaintext():
            logger.debug("%s: plaintext gRPC to %s (loopback)", self.name, self.endpoint)
        else:
            # A TLS channel carries an access token on every call: refuse before
            # the SDK resolves the host or looks for credentials.
            self.ensure_credentials_allowed()
        return secret_manager_client(endpoint, lambda: self._credentials()[0], self.reconnect_backoff_max)

    def _plaintext(self) -> bool:
        return self.endpoint is not None and _is_loopback(self.endpoint)

    def _credentials(self) -> tuple[Any, str | None]:
        """(credentials, their project): from ``credentials`` through the chain, else ADC.

        Loaded with no lock held (see :meth:`_get_client`); the first to finish is kept.
        """
        with self._lock:
            if self._auth is not None:
                return self._auth
        auth = self._load_credentials()
        with self._lock:
            if self._auth is None:
                self._auth = auth
            return self._auth

    def _load_credentials(self) -> tuple[Any, str | None]:
        self.ensure_credentials_allowed()  # google.auth.default() included
        _import_sdk()
        import google.auth
        from google.auth import exceptions as auth_errors

        if self.credentials is None:
            _sdk_credentials.refuse_native_default(
                f"source {self.name!r}", None, "Application Default Credentials"
            )
            try:
                credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            except auth_errors.DefaultCredentialsError:
                raise BackendError(
                    "no Google credentials: set `credentials` to a name or reference holding a "
                    "service-account key, or configure Application Default Credentials",
                    access_denied=True,
                ) from None
            return _sdk_credentials.watch_google_credentials(credentials, from_adc=True), project
        value = self.resolve_credential(self.credentials)
        if value is None:
            raise ConfigError(
                f"{self.name}: credentials {self.credentials!r} were not found by any other source"
            )
        return self._service_account(value)

    def _service_account(self, value: SecretValue[Any]) -> tuple[Any, str | None]:
        return load_service_account(
            value,
            [CLOUD_PLATFORM_SCOPE],
            f"{self.name}: credentials {self.credentials!r} do not hold a service-account key (JSON)",
            "leave `credentials` unset and use ADC",
        )

    def _project_from_credentials(self) -> str:
        # A loopback test server never makes us look for Application Default Credentials.
        project = None if self._plaintext() and self.credentials is None else self._credentials()[1]
        if not project:
            raise ConfigError(
                f"{self.name}: no GCP project: set `project`, GOOGLE_CLOUD_PROJECT, "
                "or use credentials that name one"
            )
        return project

    # -- the source as an object ----------------------------------------------------

    def check(self) -> CheckResult:
        """List one secret (of this source's prefix): proves the service is reachable and the
        caller authenticated, and says when the project holds nothing this source could read."""
        try:
            parent = f"projects/{self._configured_project() or self._project_from_credentials()}"
            if self.location:
                parent += f"/locations/{self.location}"
            client = self._get_client(self.location)
        except ConfigError as error:
            return self.result("misconfigured", str(error))
        except BackendError as error:
            return self.result("unauthenticated" if error.access_denied else "unreachable", error.message)
        request = {"parent": parent, "page_size": 1}
        if self.prefix:
            request["filter"] = f"name:{self.prefix}"  # ids holding the prefix: a superset, never fewer
        try:
            page = client.list_secrets(request=request, retry=None, timeout=self.timeout)
            found, more = bool(page.secrets), bool(page.next_page_token)  # the first page only
        except Exception as error:
            return self._check_failed(error, parent)
        where = self.endpoint or regional_endpoint(self.location) or "secretmanager.googleapis.com"
        scope = f"secrets whose id contains {self.prefix}" if self.prefix else "secrets"
        if not found and not more:
            return self.result(
                "misconfigured",
                f"reachable at {where}; but {parent} has no {scope}, so every lookup would miss "
                "(wrong project or prefix?)",
            )
        return self.result("ok", f"reachable at {where}; {parent} has {scope}")

    def _check_failed(self, error: Exception, parent: str) -> CheckResult:
        from google.api_core import exceptions as api

        if isinstance(error, api.PermissionDenied):
            # Authenticated (else UNAUTHENTICATED); a reader of single secrets
            # may well lack secretmanager.secrets.list, and that is fine.
            return self.result(
                "ok",
                f"reachable and authenticated (not allowed to list secrets in {parent}, "
                "so whether it is the right project is not known)",
            )
        problem = classify(error, parent, timeout=self.timeout)
        if problem is None:
            return self.result("misconfigured", f"{parent} does not exist")
        return self.result("unauthenticated" if problem.access_denied else "unreachable", problem.message)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            self._auth = None
        for client in clients:
            client.transport.close()


# -- outcomes ------------------------------------------------------------------------


def classify(error: BaseException, name: str, *, timeout: float | None = None) -> BackendError | None:
    """The BackendError an SDK exception means, or None for "not found".

    ``RetryError`` (raised by the client library's own retry, which this
    source switches off) is unwrapped to the error in its ``.cause``.

    Raises:
        Exception: ``error`` itself when it is not an SDK error at all.
    """
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth_errors

    if isinstance(error, api.RetryError):
        if error.cause is None:
            return BackendError(f"gave up retrying {name}", retryable=True)
        error = error.cause
    if isinstance(error, api.NotFound):
        return None
    if isinstance(error, (api.PermissionDenied, api.Unauthenticated)):
        return BackendError(f"access denied to {name} ({_status(error)})", access_denied=True)
    if isinstance(error, api.DeadlineExceeded):
        limit = f" after {timeout:g}s" if timeout is not None else ""
        return BackendError(f"{name}: timed out{limit} ({_status(error)})", retryable=True)
    if isinstance(error, (api.ServiceUnavailable, api.TooManyRequests)):  # UNAVAILABLE, RESOURCE_EXHAUSTED
        return BackendError(f"{name}: {_status(error)}", retryable=True)
    if isinstance(error, api.FailedPrecondition):
        return _precondition(error, name)
    if isinstance(error, api.GoogleAPICallError):
        return BackendError(f"{name}: {_status(error)}")
    if isinstance(error, auth_errors.RefreshError):
        return BackendError(
            f"cannot get an access token for {name}: {_quote(str(error))}", access_denied=True
        )
    if isinstance(error, auth_errors.TransportError):
        return BackendError(f"cannot reach the token endpoint for {name}", retryable=True)
    raise error


def _precondition(error: Any, name: str) -> BackendError:
    """Disabled and destroyed versions answer FAILED_PRECONDITION naming the version served."""
    text = error.message or ""
    for state in ("DISABLED", "DESTROYED"):
        if f"{state} state" in text:
            served = re.search(r"\[([^\]]+)\]", text)
            number = served.group(1).rsplit("/", 1)[-1] if served else None
            which = f" (version {number})" if number and not name.endswith(f"/{number}") else ""
            return BackendError(f"{name}{which} is {state.lower()}; enable it or read another version")
    return BackendError(f"{name}: {_status(error)}")


def _status(error: Any) -> str:
    code = getattr(error, "grpc_status_code", None)
    code_name = code.name if code is not None else type(error).__name__
    message = _quote(getattr(error, "message", "") or "")
    return f"{code_name}: {message}" if message else code_name


def _quote(text: str, limit: int = 200) -> str:
    """SDK text for a message: masked (never a known value) and short."""
    text = _sdk_credentials.scrub_headers(masking.default_masker.mask(text.strip()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _value_of(payload: Any, name: str) -> SecretValue[Any]:
    """Check the payload's CRC32C (the client library does not), then decode UTF-8, else keep bytes."""
    import google_crc32c  # Google's own CRC32C (C, with a pure-Python fallback)

    data = bytes(payload.data)
    if "data_crc32c" in payload and int(payload.data_crc32c) != google_crc32c.value(data):
        raise BackendError(f"{name}: payload corrupted in transit (CRC32C mismatch)", retryable=True)
    try:
        return SecretValue(data.decode("utf-8"))
    except UnicodeDecodeError:
        return SecretValue(data)


# -- helpers ----------------------------------------------------------------------------


class _SDK(NamedTuple):
    SecretManagerServiceClient: Any
    transports: Any


def secret_manager_client(
    endpoint: str | None, credentials: Callable[[], Any], reconnect_backoff_max: float
) -> Any:
    """A ``SecretManagerServiceClient`` for ``endpoint`` (None: Google's), shared by the
    source and by ``authchain.clients.gcp_secret_manager_client``.

    A loopback endpoint gets a plaintext channel we make ourselves: the
    transport then attaches no credentials and never looks for Application
    Default Credentials (``credentials`` is not called). Otherwise the SDK
    builds the TLS channel with ``credentials()``.

    Either way gRPC's reconnect backoff is capped at ``reconnect_backoff_max``:
    by default gRPC waits up to 120 s between reconnection attempts once a
    server has been unreachable for a while, failing every call meanwhile, so
    lookups would keep failing for minutes after an outage ended.
    """
    sdk = _import_sdk()
    cap = round(reconnect_backoff_max * 1000)
    ours = [("grpc.max_reconnect_backoff_ms", cap), ("grpc.initial_reconnect_backoff_ms", min(1000, cap))]
    grpc_transport = sdk.transports.SecretManagerServiceGrpcTransport
    if endpoint is not None and _is_loopback(endpoint):
        import grpc

        transport = grpc_transport(channel=grpc.insecure_channel(endpoint, options=ours))
        return sdk.SecretManagerServiceClient(transport=transport)
    options = {"api_endpoint": endpoint} if endpoint else None
    if not _takes_channel_factories(grpc_transport):
        logger.debug(
            "google-cloud-secret-manager is too old for reconnect_backoff_max: gRPC's default applies"
        )
        return sdk.SecretManagerServiceClient(credentials=credentials(), client_options=options)

    # Callables (not instances) for the transport and its channel: the SDK
    # still works out host, credentials, scopes and TLS itself and hands
    # them over; only the channel options gain ours.
    def make_channel(*args: Any, options: Sequence[tuple[str, Any]] = (), **kwargs: Any) -> Any:
        return grpc_transport.create_channel(*args, options=[*options, *ours], **kwargs)

    def make_transport(*args: Any, **kwargs: Any) -> Any:
        return grpc_transport(*args, channel=make_channel, **kwargs)

    return sdk.SecretManagerServiceClient(
        credentials=credentials(), client_options=options, transport=make_transport
    )


@scrubbed
def load_service_account(
    value: SecretValue[Any], scopes: Sequence[str], problem: str, advice: str
) -> tuple[Any, str | None]:
    """Google credentials and their project from a service-account key (JSON).

    Service-account keys only: other credential JSON types (external accounts
    can run commands) are ADC's business, not something to load from a secret
    store. Messages start with ``problem`` and never quote the key.
    """
    from google.oauth2 import service_account

    try:
        info = value.json()
    except ValueError:
        raise ConfigError(problem) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(f"{problem}; for other credential types {advice}")
    # Masked whatever path the key took here (an explicit dict never went through the chain).
    _sdk_credentials.register_service_account_key(info)
    try:
        load: Any = service_account.Credentials.from_service_account_info  # untyped in google-auth
        credentials = load(info, scopes=list(scopes))
    except (ValueError, KeyError) as error:
        # google-auth names the missing fields, never their values.
        reason = _quote(str(error)) if isinstance(error, ValueError) else f"missing {error}"
        raise ConfigError(f"{problem}: {reason}") from None
    project = info.get("project_id")
    _sdk_credentials.watch_google_credentials(credentials)  # each access token, once minted
    return credentials, project if isinstance(project, str) and project else None


def _takes_channel_factories(transport_class: Any) -> bool:
    """Whether the SDK's transport accepts a callable ``channel`` (generated clients
    do since mid-2023; an older one would keep the callable as the channel itself)."""
    import inspect

    channel = inspect.signature(transport_class.__init__).parameters.get("channel")
    return channel is not None and "Callable" in str(channel.annotation)


def _import_sdk() -> _SDK:
    try:
        from google.cloud.secretmanager_v1 import SecretManagerServiceClient
        from google.cloud.secretmanager_v1.services.secret_manager_service import transports
    except ImportError as error:
        raise ConfigError(
            f"source type 'gcp-sm' needs google-cloud-secret-manager ({INSTALL_HINT}): {error}"
        ) from None
    return _SDK(SecretManagerServiceClient, transports)


def _is_loopback(endpoint: str) -> bool:
    match = _ENDPOINT.fullmatch(endpoint)
    return is_loopback_host(match.group("host") if match else endpoint)
