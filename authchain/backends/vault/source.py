"""HashiCorp Vault / OpenBao KV: ``DB_PASSWORD`` → ``MOUNT/PATH_PREFIX/DB_PASSWORD``.

Reads KV v2 (default) or KV v1 with hvac, imported the first time the source
is used. Outcomes follow the chain's three-way split:

- a 404 the way Vault and OpenBao answer a missing secret (``{"errors": []}``,
  or a soft-deleted KV v2 version) → not found; every other 404 (no such
  mount: "no handler for route"; a KV v1 read on a v2 mount: a warning and
  no data) is a ``BackendError``, never "not found";
- ``Forbidden`` → ``BackendError`` with ``access_denied`` (never retried and
  never read as "not found", unless ``forbidden_as_missing = true`` for
  policies written to hide whether a path exists);
- connection errors, timeouts, 5xx and 429 → retryable ``BackendError``.

Only key/value secrets are read. A mount that is one of Vault's own
(``sys``, ``auth``, ``identity``, ``cubbyhole``) is refused before any
request; any other mount is probed once per source and process with
``sys/internal/ui/mounts/<mount>`` (readable with any token that may use the
mount): it must be a KV engine of the KV version the read asks for, else the
read is a ``BackendError`` that says what is wrong, and a mount the probe
does not confirm is never read (``<namespace>/auth/...`` is not a mount). So a ``vault://`` reference
cannot read the caller's token (``auth/token/lookup-self``), the mount table
or a transit/PKI endpoint, and a mount typo or a wrong ``kv_version`` is an
error instead of a miss that lets a weaker source answer with a stale value.

The source never retries on its own: hvac is given a plain requests session
(urllib3 makes no retries on it) and a bounded ``timeout``, and the chain
owns retry, backoff and caching. One login per process is shared by the
chain's worker threads; a login token is renewed (or a new login made)
when two thirds of its TTL have passed, and a token the server rejects as
expired or revoked gets exactly one fresh login.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from authchain import _sdk_credentials, masking
from authchain._limits import MAX_TIMEOUT_SECONDS
from authchain._records import record
from authchain.backends._net import refuse_other_origin, timeout_within_deadline
from authchain.backends.vault._hvac import REDIRECT_ADVICE, rejection
from authchain.backends.vault._hvac import import_hvac as _import_hvac
from authchain.errors import AuthChainError, BackendError, ConfigError
from authchain.refs import (
    POSITIVE_INT,
    LazyPattern,
    ReferenceGrammar,
    SecretRef,
    check_json_field,
    is_reference,
    require,
)
from authchain.sources.base import CheckResult, Found, Key, NotFound, Option, Source
from authchain.values import SecretValue

__all__ = ["VaultKey", "VaultSource"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

AUTH_METHODS = ("token", "approle", "kubernetes", "jwt")
KUBERNETES_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path

# Same alphabet as the vault:// reference parser: what Vault accepts in a KV
# path without escaping, and nothing that could walk out of the mount.
_SEGMENT = re.compile(r"[A-Za-z0-9_.@+=,-]+")
_CREDENTIAL_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
# Vault's built-in mounts: never key/value, refused before any request.
RESERVED_MOUNTS = frozenset({"sys", "auth", "identity", "cubbyhole"})
# The names looked up when a setting is not given. Only these may fall back to
# hvac's own VAULT_TOKEN / ~/.vault-token (token) or be absent (secret_id): a
# name the user wrote that nothing has is an error, never another identity.
DEFAULT_CREDENTIAL_NAMES = {
    "token": "VAULT_TOKEN",
    "role_id": "VAULT_ROLE_ID",
    "secret_id": "VAULT_SECRET_ID",
    "jwt": "VAULT_JWT",
}


@record
class VaultKey:
    """One read: which secret, which KV version, and which field of it to return.

    ``fields`` are tried in order; when none is present the whole secret is
    returned as a JSON object if ``whole_if_missing``, else "not found".
    An empty ``fields`` means "the whole secret" (a reference's ``#KEY`` is
    then picked by the chain, so two fields of one secret share one read).
    """

    mount: str
    path: str
    kv_version: int = 2
    version: int | None = None
    fields: tuple[str, ...] = ()
    whole_if_missing: bool = True

    def describe(self) -> str:
        where = f"{self.mount}/{self.path}"
        if self.version is not None:
            where += f" (version {self.version})"
        return where


# -- references: vault://MOUNT/PATH (this backend's grammar; see authchain.refs) ------

_REF_SEGMENT = LazyPattern(r"[A-Za-z0-9_.@+=,-]+")


def _reference_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    segments = location.split("/")
    require(len(segments) >= 2, "needs a mount and a path (MOUNT/PATH)")
    for number, segment in enumerate(segments, start=1):
        require(segment != "", "the path has an empty segment ('//' or a leading/trailing '/')")
        require(segment not in {".", ".."}, "'.' and '..' are not allowed in a path")
        require(
            bool(_REF_SEGMENT.fullmatch(segment)),
            f"path segment {number} has characters outside [A-Za-z0-9_.@+=,-]",
        )
    require(params.get("kv", "2") in {"1", "2"}, "kv must be 1 or 2")
    if "version" in params:
        require(bool(POSITIVE_INT.fullmatch(params["version"])), "version must be a positive integer")
        require(params.get("kv", "2") == "2", "version needs KV v2")
    check_json_field(fragment)
    return location


class VaultSource(Source):
    """Secrets in a Vault or OpenBao KV engine.

    Args:
        url: the server address; default ``$VAULT_ADDR`` (read at first use).
        namespace: Vault Enterprise / OpenBao namespace.
        mount: the KV mount (``secret``).
        kv_version: 2 (default) or 1.
        path_prefix: put between the mount and the name (``app`` → ``secret/app/NAME``).
            ``mount``, ``path_prefix`` and ``auth_mount`` are written as users
            write them: ``/secret/`` and ``myapp/`` mean ``secret`` and ``myapp``
            (leading and trailing slashes are dropped, as hvac and Airflow do);
            an empty inner segment (``a//b``), ``.`` or ``..`` is a ``ConfigError``.
        field: the field a bare name reads; default: the field named like the
            name, else ``value``, else the whole secret as a JSON object.
        verify: verify TLS certificates; ``ca_cert``: a CA bundle to verify with.
        timeout: seconds for connecting and for each response (bounded: a hung
            server is an error after ``timeout``, then the chain retries).
        forbidden_as_missing: treat 403 as "not found" (for policies that hide existence).
        auth: ``token`` (default), ``approle``, ``kubernetes`` or ``jwt``.
        auth_mount: where the auth method is mounted (default: its own name).
        token, role_id, secret_id, jwt: the *names* (or references) of the
            credentials, resolved through the owning chain without this source
            (default ``VAULT_TOKEN``, ``VAULT_ROLE_ID``, ``VAULT_SECRET_ID``,
            ``VAULT_JWT``). Only when ``token`` is not given may a token nothing
            has fall back to hvac's own ``VAULT_TOKEN`` / ``~/.vault-token``; a
            name given here that nothing has is an error (never another identity).
        role: the role to log in as (kubernetes, jwt).
        jwt_path: a file holding the JWT (kubernetes default: the
            service-account token; jwt: read ``jwt`` through the chain when unset).
        environ, clock: seams for tests (default ``os.environ``, ``time.monotonic``).
    """

    type = "vault"
    reference_grammar = ReferenceGrammar(
        "vault://MOUNT/PATH[?kv=1|2][&version=N][#KEY]", _reference_location, frozenset({"kv", "version"})
    )
    rank = 100
    extra = "vault"
    concurrent = True
    endpoint_options = ("url", "verify", "ca_cert")
    options = (
        Option("url", str, None, "server address (default: $VAULT_ADDR)"),
        Option("namespace", str, None, "Vault Enterprise / OpenBao namespace"),
        Option("mount", str, "secret", "the KV mount"),
        Option("kv_version", int, 2, "KV engine version", choices=(1, 2)),
        Option("path_prefix", str, "", "path between the mount and the name"),
        Option("field", str, None, "the field a bare name reads (default: the name, else 'value')"),
        Option("verify", bool, True, "verify TLS certificates"),
        Option("ca_cert", str, None, "CA bundle to verify the server with", is_path=True),
        Option(
            "timeout",
            float,
            5.0,
            "seconds to connect and to wait for each response",
            minimum=0.001,
            maximum=MAX_TIMEOUT_SECONDS,
        ),
        Option("forbidden_as_missing", bool, False, "treat 403 as not found"),
        Option("auth", str, "token", "auth method", choices=AUTH_METHODS),
        Option("auth_mount", str, None, "where the auth method is mounted (default: its name)"),
        # Defaults None: "not given" must stay distinguishable from a name the
        # user wrote (DEFAULT_CREDENTIAL_NAMES holds the names then looked up).
        Option("token", str, None, "name or reference of the token (auth = token; default VAULT_TOKEN)"),
        Option("role_id", str, None, "name or reference of the AppRole role id (default VAULT_ROLE_ID)"),
        Option(
            "secret_id", str, None, "name or reference of the AppRole secret id (default VAULT_SECRET_ID)"
        ),
        Option("role", str, None, "role to log in as (kubernetes, jwt)"),
        Option(
            "jwt", str, None, "name or reference of the JWT (auth = jwt without jwt_path; default VAULT_JWT)"
        ),
        Option(
            "jwt_path",
            str,
            None,
            "file holding the JWT (kubernetes: the service-account token)",
            is_path=True,
        ),
    )

    # A test's environ mapping may hold values: a seam, not a setting, so it
    # never travels in a pickle (os.environ itself does not pickle either).
    _seam_attrs = ("_environ",)

    def __init__(
        self,
        *,
        url: str | None = None,
        namespace: str | None = None,
        mount: str = "secret",
        kv_version: int = 2,
        path_prefix: str = "",
        field: str | None = None,
        verify: bool = True,
        ca_cert: str | Path | None = None,
        timeout: float = 5.0,
        forbidden_as_missing: bool = False,
        auth: str = "token",
        auth_mount: str | None = None,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        role: str | None = None,
        jwt: str | None = None,
        jwt_path: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        where = f"source {self.name!r}"
        if url is not None and not re.match(r"https?://[^/\s]+", url):
            raise ConfigError(f"{where}: url must start with http:// or https:// and name a host")
        if kv_version not in (1, 2):
            raise ConfigError(f"{where}: kv_version must be 1 or 2")
        if auth not in AUTH_METHODS:
            raise ConfigError(f"{where}: auth must be one of {', '.join(AUTH_METHODS)}")
        if auth in ("kubernetes", "jwt") and not role:
            raise ConfigError(f"{where}: auth = {auth!r} needs role = '...'")
        if timeout <= 0:
            raise ConfigError(f"{where}: timeout must be a positive number of seconds")
        self.url = url.rstrip("/") if url else None
        self.namespace = namespace
        self.mount = _setting_path(mount, f"{where}: mount", allow_empty=False)
        if _reserved(self.mount):
            raise ConfigError(
                f"{where}: mount {self.mount!r} is one of Vault's own mounts, not key/value; "
                "the vault source reads KV secrets only"
            )
        self.kv_version = kv_version
        self.path_prefix = _setting_path(path_prefix, f"{where}: path_prefix", allow_empty=True)
        self.field = field or None
        self.verify = verify
        self.ca_cert = Path(ca_cert) if ca_cert is not None else None
        self.timeout = float(timeout)
        self.forbidden_as_missing = forbidden_as_missing
        self.auth = auth
        self.auth_mount = _setting_path(auth_mount or auth, f"{where}: auth_mount", allow_empty=False)
        given = {"token": token, "role_id": role_id, "secret_id": secret_id, "jwt": jwt}
        self._named = frozenset(setting for setting, name in given.items() if name is not None)
        names = {setting: name or DEFAULT_CREDENTIAL_NAMES[setting] for setting, name in given.items()}
        self.token = _credential_name(names["token"], f"{where}: token")
        self.role_id = _credential_name(names["role_id"], f"{where}: role_id")
        self.secret_id = _credential_name(names["secret_id"], f"{where}: secret_id")
        self.role = role
        self.jwt = _credential_name(names["jwt"], f"{where}: jwt")
        if jwt_path is None and auth == "kubernetes":
            jwt_path = KUBERNETES_TOKEN_PATH
        self.jwt_path = Path(jwt_path) if jwt_path is not None else None
        self._environ = environ
        self._clock = clock
        self._init_runtime()

    _runtime_attrs = (
        "_lock",
        "_client",
        "_pid",
        "_session_token",
        "_logged_in",
        "_ttl",
        "_renewable",
        "_expires_at",
        "_refresh_at",
        "_kv_mounts",
        "_native_path",
    )

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._kv_mounts: dict[str, int] = {}  # mount → its KV version, as the server reported it
        self._native_path: Any = None  # None: not decided yet; False: none here (see _native)
        self._reset_session()

    def _reset_session(self) -> None:
        self._client: Any = None
        self._pid: int | None = None
        self._session_token: str | None = None  # the token in use; never logged or pickled
        self._logged_in = False
        self._ttl = 0.0
        self._renewable = False
        self._expires_at: float | None = None  # clock() time; None: not managed here
        self._refresh_at: float | None = None

    # -- names and references → keys (pure) ---------------------------------

    def key_for(self, name: str) -> Key:
        path = _join(self.path_prefix, _clean_path(name, f"{self.name}: {name!r} as a Vault path"))
        fields = (self.field,) if self.field else (name, "value")
        return VaultKey(self.mount, path, self.kv_version, None, fields, whole_if_missing=not self.field)

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        location = _clean_path(ref.location, f"vault://{ref.location}", allow_empty=False)
        if location.startswith(self.mount + "/"):  # the configured mount may have several segments
            mount, path = self.mount, location[len(self.mount) + 1 :]
        else:
            mount, _, path = location.partition("/")
        if not path:
            raise ConfigError(f"vault://{ref.location} needs a path after the mount (MOUNT/PATH)")
        _refuse_reserved(mount, f"vault://{ref.location}")
        kv = ref.param("kv")
        kv_version = int(kv) if kv else (self.kv_version if mount == self.mount else 2)
        version = ref.param("version")
        if version is not None and kv_version != 2:
            raise ConfigError(f"vault://{ref.location}: version needs KV v2")
        if ref.field is not None:
            key = VaultKey(mount, path, kv_version, int(version) if version else None)
            return key, ref.field
        fields = (path.rsplit("/", 1)[-1], "value")
        return VaultKey(mount, path, kv_version, int(version) if version else None, fields), None

    def describe_key(self, key: Key) -> str:
        return _as_key(key).describe()

    # -- the one verb ---------------------------------------------------------

    def get(self, key: Key) -> Found | NotFound:
        return _drive(self._reading(_as_key(key)), self._ask)

    def has_native_async(self) -> bool:
        """True unless a proxy applies to the address or h11 is missing (then: the pool's threads)."""
        return self._native() is not None

    async def aget(self, key: Key) -> Found | NotFound:
        native = self._native()
        if native is None:  # pragma: no cover - the chain asks has_native_async first
            raise RuntimeError("the vault source has no native async path here")
        async with native.transport.lease() as lease:
            return await _adrive(self._reading(_as_key(key)), lambda request: native.ask(request, lease))

    def warm_for_async(self) -> None:
        if self._native() is not None:  # h11 and requests' proxy rules imported on the way
            _import_hvac()

    def _reading(self, key: VaultKey) -> Steps[Found | NotFound]:
        """What ``get`` and ``aget`` do, as the requests it makes (see :func:`_drive`)."""
        where = key.describe()
        _refuse_reserved(key.mount, where)
        hvac = _import_hvac()
        if not (yield from self._require_kv(key)):
            # Never read a path the probe did not show to be a KV mount: a read there is
            # refused at best, and at worst reaches Vault's own endpoints under another
            # first segment (``<namespace>/auth/token/lookup-self``, ``<namespace>/sys/mounts``).
            raise BackendError(
                f"access denied to {where}: there is no mount {key.mount}/, "
                "or the token may use nothing in it (check the mount for a typo)",
                access_denied=True,
            )
        try:
            data = _read_data((yield _read_request(key, f"reading {where}")), key)
        except hvac.exceptions.InvalidPath as error:
            try:
                return _missing(error, key, where)
            except BackendError:
                self._kv_mounts.pop(key.mount, None)  # the mount changed: probe it again next time
                raise
        except hvac.exceptions.Forbidden:
            if self.forbidden_as_missing:
                return NotFound(f"no secret at {where} (or access denied: forbidden_as_missing = true)")
            raise BackendError(f"access denied to {where}", access_denied=True) from None
        if data is None:
            return NotFound(f"no secret at {where} (the version was destroyed)")
        return _pick(key, data, where)

    def _ask(self, request: Request) -> Any:
        """``request`` through hvac, logged in (the sync half of :func:`_drive`)."""
        return self._authorized(
            lambda client: client.adapter.get(request.path, params=request.params), request.what
        )

    def _native(self) -> Any:
        """The event-loop transport (``_native.NativeVault``), or None where requests must make the calls."""
        native = self._native_path
        if native is None:
            from authchain.backends.vault import _native

            try:
                native = _native.for_source(self) or False
            except ConfigError:
                return None  # no address yet: get() raises it, as in sync code
            self._native_path = native
        return native or None

    def check(self) -> CheckResult:
        """Reachable and authenticated (log in if needed, look the token up), and the
        configured mount exists, is key/value and has the configured KV version."""
        hvac = _import_hvac()
        try:
            info = self._authorized(lambda client: client.auth.token.lookup_self(), "looking up the token")
        except hvac.exceptions.Forbidden:
            # A rejected token was handled above (fresh login or an access error), so
            # this is a policy without lookup-self: the token itself was accepted.
            authenticated = f"{self.address()}: authenticated ({self.auth}); the token may not look itself up"
        except hvac.exceptions.InvalidPath as error:
            raise _translate(error, "looking up the token", self) from error
        else:
            data = (info.get("data") if isinstance(info, dict) else None) or {}
            ttl = data.get("ttl")
            lifetime = "no expiry" if not ttl else f"token ttl {ttl}s"
            policies = ", ".join(data.get("policies") or []) or "none"
            authenticated = f"{self.address()}: authenticated ({self.auth}), {lifetime}, policies: {policies}"
        try:
            if not _drive(self._require_kv(VaultKey(self.mount, "", self.kv_version), fresh=True), self._ask):
                raise BackendError(
                    f"there is no mount {self.mount}/ at {self.address()}, or the token may use nothing "
                    "in it (check the mount setting for a typo, and the token's policies)"
                )
        except BackendError as error:
            if error.retryable or error.access_denied:  # unreachable / unauthenticated, as above
                raise
            return self.result("misconfigured", f"{authenticated}; but {error.message}")
        return self.result("ok", f"{authenticated}; mount {self.mount}/ is KV v{self.kv_version}")

    def close(self) -> None:
        with self._lock:
            client, pid = self._client, self._pid
            native, self._native_path = self._native_path, None
            self._reset_session()
        if native:
            native.close()
        if client is not None and pid == os.getpid():
            session = getattr(getattr(client, "adapter", None), "session", None)
            if session is not None:
                session.close()

    def settings(self) -> dict[str, Any]:
        shown = super().settings()
        for key in ("ca_cert", "jwt_path"):
            shown[key] = None if shown[key] is None else str(shown[key])
        return shown

    def address(self) -> str:
        """The server URL: ``url`` or ``$VAULT_ADDR``."""
        environ = os.environ if self._environ is None else self._environ
        address = self.url or environ.get("VAULT_ADDR", "").rstrip("/")
        if not address:
            raise ConfigError(f"source {self.name!r} has no server address: set url = '...' or VAULT_ADDR")
        return address

    # -- key/value only: which mounts may be read ----------------------------

    def _require_kv(self, key: VaultKey, *, fresh: bool = False) -> Steps[bool]:
        """Raise unless ``key.mount`` is a KV mount of ``key.kv_version`` (probed once, then cached;
        ``fresh``: probe again, as ``check`` does).

        False: the server would not say (403: no such mount, or the token may use
        nothing in it). Nothing there is read: the read could only be refused, or
        reach something that is not a mount of KV secrets at all (Vault's own
        endpoints under a namespace prefix), so it is an access error, even with
        ``forbidden_as_missing``.
        """
        actual = None if fresh else self._kv_mounts.get(key.mount)
        if actual is None:
            actual = yield from self._probe_mount(key.mount)
            if actual is None:
                return False
            self._kv_mounts[key.mount] = actual
        if actual != key.kv_version:
            raise BackendError(
                f"{key.mount}/ is a KV v{actual} mount, but it is read as KV v{key.kv_version} "
                f"(set kv_version = {actual} on the source, or ?kv={actual} on a vault:// reference)"
            )
        return True

    def _probe_mount(self, mount: str) -> Steps[int | None]:
        """The KV version of ``mount``, from ``sys/internal/ui/mounts/<mount>``; errors say what is wrong.

        None: 403 (or 404), which OpenBao and Vault answer both for a mount that
        does not exist and for one the token may use nothing in.
        """
        hvac = _import_hvac()
        try:
            response = yield Request(
                f"/v1/sys/internal/ui/mounts/{mount}", None, f"probing the mount {mount}/"
            )
        except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidPath):
            return None
        data = _body(response).get("data")
        data = data if isinstance(data, dict) else {}
        kind = str(data.get("type") or "unknown")
        reported = str(data.get("path") or "").rstrip("/")
        if reported and reported != mount and not reported.endswith("/" + mount):
            raise BackendError(f"{mount}/ is not a mount: it lies inside the {kind} mount {reported}/")
        if kind == "generic":  # the old name of KV v1
            return 1
        if kind != "kv":
            raise BackendError(
                f"{mount}/ is a {kind!r} mount, not key/value: the vault source and vault:// "
                "references read KV secrets only"
            )
        options = data.get("options")
        version = str((options.get("version") if isinstance(options, dict) else None) or "1")
        if version not in ("1", "2"):
            raise BackendError(f"{mount}/ is a KV mount of unknown version {version!r}")
        return int(version)

    # -- client, login and renewal -------------------------------------------

    def _authorized(self, operation: Callable[[Any], T], what: str) -> T:
        """Run ``operation(client)`` logged in; on a rejected token, log in once more.

        Every hvac/requests error except ``InvalidPath`` and ``Forbidden`` (which
        mean something for each caller) becomes a ``BackendError`` here.
        """
        hvac = _import_hvac()
        client, token = self._session()
        try:
            try:
                return operation(client)
            except hvac.exceptions.Forbidden as error:
                if not self._token_rejected(client, error):
                    raise
                logger.debug(
                    "%s: the server rejected the token (expired or revoked); logging in again", self.name
                )
                client, fresh = self._session(stale=token)
                if fresh == token:  # a static token that nothing has replaced: no point asking again
                    raise BackendError(
                        f"{what}: the server rejected the token (expired or revoked)", access_denied=True
                    ) from None
                return operation(client)
        except (hvac.exceptions.InvalidPath, hvac.exceptions.Forbidden):
            raise
        except BackendError:
            raise
        except Exception as error:
            raise _translate(error, what, self) from error

    def client(self) -> Any:
        """The hvac client this source uses, logged in and renewed when due (``vault_client``)."""
        try:
            return self._session()[0]
        except (BackendError, ConfigError):
            raise
        except Exception as error:
            raise _translate(error, f"{self.auth} login", self) from error

    def _session(self, stale: str | None = None) -> tuple[Any, str | None]:
        """The shared client, logged in and fresh. ``stale``: a token the server refused.

        The credentials a login needs are resolved with no lock held: resolving
        may ask other sources, whose own credentials may come from this one. Two
        cold sources bootstrapping through each other from two threads, each
        holding its own lock while resolving, deadlocked forever.
        """
        with self._lock:
            ready = self._ready(stale)
        if ready is not None:
            return ready
        if stale is not None:
            self._forget_credentials()  # a rotated credential must be read again
        try:
            material: dict[str, str | None] | AuthChainError = self._login_material()
        except (BackendError, ConfigError) as error:
            material = error  # raised only if a login is due: a renewal may not need it
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                # A forked child must not share the parent's connection pool or
                # its login: one client and one login per process.
                self._reset_session()
                self._client = self._new_client()
                self._pid = os.getpid()
            client = self._client
            if stale is not None and self._session_token == stale:
                self._logged_in = False
            if not self._logged_in:
                self._login(client, material)
            elif self._refresh_at is not None and self._clock() >= self._refresh_at:
                self._refresh(client, material)
            return client, self._session_token

    def _ready(self, stale: str | None) -> tuple[Any, str | None] | None:
        """The session as it is, if it needs no login or refresh (lock held)."""
        if self._client is None or self._pid != os.getpid() or not self._logged_in:
            return None
        if stale is not None and self._session_token == stale:
            return None
        if self._refresh_at is not None and self._clock() >= self._refresh_at:
            return None
        return self._client, self._session_token

    def _login_material(self) -> dict[str, str | None]:
        """What a login with this source's auth method sends, resolved through the chain."""
        if self.auth == "token":
            return {"token": self._token_value()}
        if self.auth == "approle":
            # AppRoles may have no secret id; one the user named must exist.
            return {
                "role_id": self._credential(self.role_id, required=True),
                "secret_id": self._credential(self.secret_id, required="secret_id" in self._named),
            }
        return {"jwt": self._jwt()}

    def _new_client(self) -> Any:
        hvac = _import_hvac()
        verify: bool | str = str(self.ca_cert) if (self.verify and self.ca_cert) else self.verify
        session = _deadline_session_class()()
        session.verify = verify  # hvac takes verify from a session it is given
        client = hvac.Client(
            url=self.address(), namespace=self.namespace, verify=verify, timeout=self.timeout, session=session
        )
        # hvac read VAULT_TOKEN / ~/.vault-token (a token that never went through the
        # chain): masked from now on, though only _login decides what is sent.
        _sdk_credentials.register(client.token)
        client.token = None
        return client

    def _login(self, client: Any, material: dict[str, str | None] | AuthChainError) -> None:
        """Authenticate ``client`` with ``material`` (see :meth:`_login_material`; lock held)."""
        if isinstance(material, AuthChainError):
            raise material
        started = self._clock()
        if self.auth == "token":
            client.token = material["token"]
            _sdk_credentials.register(client.token)  # may be hvac's own VAULT_TOKEN / ~/.vault-token
            self._session_token = client.token
            self._logged_in = True
            self._expires_at = self._refresh_at = None  # the token's owner manages its lifetime
            return
        response = self._call_login(client, material)
        auth = response.get("auth") if isinstance(response, dict) else None
        if not isinstance(auth, dict) or not auth.get("client_token"):
            raise BackendError(f"{self.auth} login at auth/{self.auth_mount} returned no token")
        client.token = auth["client_token"]
        _sdk_credentials.register(client.token)  # a login token: no source ever resolved it
        self._session_token = client.token
        self._logged_in = True
        self._set_lifetime(started, float(auth.get("lease_duration") or 0), bool(auth.get("renewable")))
        logger.debug(
            "%s: logged in with %s (token ttl %ss)", self.name, self.auth, auth.get("lease_duration")
        )

    def _call_login(self, client: Any, material: dict[str, str | None]) -> Any:
        hvac = _import_hvac()
        what = f"{self.auth} login at auth/{self.auth_mount}"
        try:
            if self.auth == "approle":
                return client.auth.approle.login(
                    material["role_id"], material["secret_id"], mount_point=self.auth_mount
                )
            jwt = material["jwt"]
            if self.auth == "kubernetes":
                return client.auth.kubernetes.login(self.role, jwt, mount_point=self.auth_mount)
            return client.auth.jwt.jwt_login(self.role, jwt, path=self.auth_mount)
        except (
            hvac.exceptions.InvalidRequest,
            hvac.exceptions.Forbidden,
            hvac.exceptions.Unauthorized,
        ) as error:
            raise BackendError(f"{what} was refused: {_server_says(error)}", access_denied=True) from error
        except hvac.exceptions.InvalidPath as error:
            raise BackendError(f"{what} failed: no such auth method mounted", access_denied=True) from error
        except (BackendError, ConfigError):
            raise
        except Exception as error:
            raise _translate(error, what, self) from error

    def _refresh(self, client: Any, material: dict[str, str | None] | AuthChainError) -> None:
        """Renew the login token before it runs out (lock held); log in again if it cannot be."""
        now = self._clock()
        assert self._expires_at is not None
        mandatory = now >= self._expires_at - min(5.0, self._ttl / 10)
        try:
            if self._renewable and self._renew(client, now):
                return
            self._login(client, material)
        except BackendError as error:
            if mandatory:
                raise
            # Advisory window: the current token still works, keep it and try later.
            self._refresh_at = now + max(1.0, (self._expires_at - now) / 4)
            logger.warning(
                "%s: token refresh failed (%s); the current token is still valid", self.name, error.message
            )

    def _renew(self, client: Any, now: float) -> bool:
        try:
            response = client.auth.token.renew_self()
        except Exception as error:
            logger.debug("%s: token renewal failed (%s); logging in again", self.name, type(error).__name__)
            return False
        auth = response.get("auth") if isinstance(response, dict) else None
        lease = float(auth.get("lease_duration") or 0) if isinstance(auth, dict) else 0.0
        if lease < self._ttl / 2:  # near the token's max TTL: a fresh login buys a full TTL
            return False
        self._set_lifetime(now, lease, True)
        logger.debug("%s: renewed the token (ttl %.0fs)", self.name, lease)
        return True

    def _set_lifetime(self, start: float, ttl: float, renewable: bool) -> None:
        self._ttl, self._renewable = ttl, renewable
        if ttl <= 0:  # a root or periodic-less token with no expiry
            self._expires_at = self._refresh_at = None
            return
        self._expires_at = start + ttl
        self._refresh_at = start + ttl * 2 / 3

    def _translated(self, error: Exception, what: str) -> BackendError | ConfigError:
        """hvac's and requests' exceptions as the chain's outcomes (see :func:`_translate`)."""
        return _translate(error, what, self)

    def _token_rejected(self, client: Any, error: Exception) -> bool:
        """Was a 403 about the token itself (expired, revoked) rather than a policy?

        OpenBao and Vault answer a bad token with a bare "permission denied" and a
        policy denial with a wrapped multi-error; only the ambiguous form costs a
        lookup-self to tell them apart, so a plain denial stays one request.
        """
        said = rejection(error)
        return said if said is not None else self._lookup_refused(client)

    def _lookup_refused(self, client: Any) -> bool:
        """Does the server refuse this client's token a lookup of itself (it is expired or revoked)?"""
        hvac = _import_hvac()
        try:
            client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return True
        except Exception:
            return False
        return False

    def _token_value(self) -> str:
        self.ensure_credentials_allowed()  # before hvac's own default too
        value = self._credential(self.token, required="token" in self._named)
        if value is None:
            _sdk_credentials.refuse_native_default(
                f"source {self.name!r}", self.token, "hvac's VAULT_TOKEN / ~/.vault-token"
            )
            hvac = _import_hvac()
            value = hvac.utils.get_token_from_env()  # hvac's own default: VAULT_TOKEN, ~/.vault-token
        if not value:
            raise BackendError(
                f"no Vault token: {self.token} was not found by any other source, and neither "
                "VAULT_TOKEN nor ~/.vault-token is set",
                access_denied=True,
            )
        return str(value)

    def _jwt(self) -> str:
        self.ensure_credentials_allowed()  # a file's contents are a credential too
        if self.jwt_path is not None:
            try:
                jwt = self.jwt_path.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise BackendError(
                    f"cannot log in with {self.auth}: "
                    f"cannot read the JWT at {self.jwt_path} ({error.strerror})",
                    access_denied=True,
                ) from None
            _sdk_credentials.register(jwt)  # read from a file, not through the chain
            return jwt
        value = self._credential(self.jwt, required=True)
        assert value is not None
        return value

    def _credential(self, name: str, *, required: bool) -> str | None:
        found = self.resolve_credential(name)
        if found is None:
            if required:
                raise BackendError(
                    f"cannot log in with {self.auth}: {name} was not found by any other source "
                    "(a credential named in the settings is never replaced by another identity)",
                    access_denied=True,
                )
            return None
        value = found.get_secret_value()
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def _forget_credentials(self) -> None:
        """Before a fresh login, drop cached credentials: a rotated one must be re-read."""
        lookup = getattr(self, "_credential_lookup", None)
        if lookup is None:
            return
        for name in (self.token, self.role_id, self.secret_id, self.jwt):
            try:
                lookup.invalidate(name)
            except ConfigError:
                continue


# -- helpers -----------------------------------------------------------------------


class Request(NamedTuple):
    """One GET the source makes: hvac's path (``/v1/...``), its query, and how errors name it."""

    path: str
    params: dict[str, str] | None
    what: str


Steps = Generator[Request, Any, T]
"""A lookup written once as the requests it makes: each ``yield`` hands a :class:`Request` to the
driver and gets hvac's answer back (a dict for JSON, else the raw response), or hvac's
``InvalidPath`` / ``Forbidden`` thrown in; anything else ends the lookup as an error."""


def _drive(steps: Steps[T], ask: Callable[[Request], Any]) -> T:
    """Run ``steps`` with each request made by ``ask`` (hvac on this thread).

    No answer is kept in a local of this frame, which a traceback would keep."""
    done, item = _advance(steps, None, None)
    while not done:
        done, item = _advance(steps, *_answer(ask, item))
    return item  # type: ignore[no-any-return]


async def _adrive(steps: Steps[T], ask: Callable[[Request], Awaitable[Any]]) -> T:
    """:func:`_drive` with each request awaited (the native transport on the event loop)."""
    done, item = _advance(steps, None, None)
    while not done:
        done, item = _advance(steps, *(await _aanswer(ask, item)))
    return item  # type: ignore[no-any-return]


def _answer(ask: Callable[[Request], Any], request: Request) -> tuple[Any, Exception | None]:
    try:
        return ask(request), None
    except Exception as error:
        return None, error


async def _aanswer(
    ask: Callable[[Request], Awaitable[Any]], request: Request
) -> tuple[Any, Exception | None]:
    try:
        return await ask(request), None
    except Exception as error:
        return None, error


def _advance(steps: Steps[Any], reply: Any, failure: Exception | None) -> tuple[bool, Any]:
    """Hand ``steps`` the last request's answer (or its error): (False, the next request) or
    (True, the lookup's outcome); the lookup's own error is raised."""
    try:
        return False, (steps.send(reply) if failure is None else steps.throw(failure))
    except StopIteration as stop:
        return True, stop.value
    except BaseException:
        reply = failure = None  # the traceback keeps this frame, not the answer it held
        raise


@functools.cache
def _deadline_session_class() -> Any:
    """A requests session whose timeout never runs past the current lookup's deadline, and which
    follows a redirect only on the same origin: hvac's ``X-Vault-Token`` and ``X-Vault-Namespace``
    (and a login's body, re-posted on 307/308) would follow one anywhere (see refuse_other_origin)."""
    import requests

    from authchain._retry import time_left

    class DeadlineSession(requests.Session):
        def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
            if time_left() is not None:  # a (connect, read) pair or none at all: what is left
                timeout = kwargs.get("timeout")
                given = timeout if isinstance(timeout, (int, float)) else math.inf
                kwargs["timeout"] = timeout_within_deadline(given)
            return super().request(method, url, *args, **kwargs)

        def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
            # requests calls this for every redirect hop, before the hop is sent.
            refuse_other_origin(response.url, prepared_request.url, "Vault server", REDIRECT_ADVICE)
            super().rebuild_auth(prepared_request, response)

    return DeadlineSession


def _as_key(key: Key) -> VaultKey:
    if not isinstance(key, VaultKey):
        raise TypeError(f"not a Vault key: {type(key).__name__}")
    return key


def _clean_path(text: str, what: str, *, allow_empty: bool = False) -> str:
    """Validate a slash-separated path; ``..``, empty segments and odd characters never reach the server."""
    if text == "" and allow_empty:
        return ""
    for segment in text.split("/"):
        if segment == "":
            raise ConfigError(f"{what} has an empty segment ('//' or a leading/trailing '/')")
        if segment in (".", ".."):
            raise ConfigError(f"{what}: '.' and '..' are not allowed in a Vault path")
        if not _SEGMENT.fullmatch(segment):
            raise ConfigError(f"{what}: segment {segment!r} has characters outside [A-Za-z0-9_.@+=,-]")
    return text


def _setting_path(text: str, what: str, *, allow_empty: bool) -> str:
    """A path setting as users write it (``/secret/``, ``myapp/``): the edge slashes
    carry no meaning (hvac and Airflow drop them too), so they are dropped before the
    path is validated and before any reserved-mount check (``/sys/`` is ``sys``).
    Only what could mean another place stays an error: ``a//b``, ``.`` and ``..``."""
    stripped = text.strip("/")
    if not stripped and not allow_empty:
        raise ConfigError(f"{what} is empty")
    return _clean_path(stripped, what, allow_empty=allow_empty)


def _credential_name(text: str, what: str) -> str:
    """A credential setting names a secret (``VAULT_TOKEN``) or is a reference; never the value."""
    if _CREDENTIAL_NAME.fullmatch(text) or is_reference(text):
        if is_reference(text):
            SecretRef.parse(text)
        return text
    # Not echoed: a value written here by mistake is most likely the credential itself.
    raise ConfigError(
        f"{what} must be the name of a secret (like VAULT_TOKEN) or a reference (like env://VAULT_TOKEN), "
        "not a literal value"
    )


def _join(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def _read_request(key: VaultKey, what: str) -> Request:
    """The request hvac's ``kv.v1.read_secret`` / ``kv.v2.read_secret_version`` make for ``key``."""
    hvac = _import_hvac()
    if key.kv_version == 1:
        return Request(
            hvac.utils.format_url("/v1/{mount}/{path}", mount=key.mount, path=key.path), None, what
        )
    params = None if key.version is None else {"version": str(key.version)}
    return Request(
        hvac.utils.format_url("/v1/{mount}/data/{path}", mount=key.mount, path=key.path), params, what
    )


def _read_data(response: Any, key: VaultKey) -> dict[str, Any] | None:
    """The secret's fields in a read's answer; None for a destroyed KV v2 version."""
    if key.kv_version == 1:
        return _mapping(_body(response).get("data"), key)
    envelope = _mapping(_body(response).get("data"), key)
    if envelope.get("data") is None:  # destroyed: metadata only
        return None
    return _mapping(envelope["data"], key)


def _body(response: Any) -> dict[str, Any]:
    # hvac hands back the raw response when the body is not JSON: whatever
    # answered on that port is not Vault, and that is an error, not a miss.
    if not isinstance(response, dict):
        content_type = getattr(response, "headers", {}).get("Content-Type", "no content type")
        raise BackendError(f"the server did not answer like Vault (got {content_type}, not JSON)")
    return response


def _mapping(item: Any, key: VaultKey) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise BackendError(f"the answer for {key.describe()} is not a KV secret (is {key.mount} a KV mount?)")
    return item


def _pick(key: VaultKey, data: dict[str, Any], where: str) -> Found | NotFound:
    for name in key.fields:
        if name in data:
            return Found(SecretValue(_as_text(data[name])), f"{where} (field {name!r})")
    if key.fields and not key.whole_if_missing:
        return NotFound(f"{where} has no field {key.fields[0]!r}")
    return Found(SecretValue(json.dumps(data)), f"{where} (the whole secret, as JSON)")


def _as_text(item: Any) -> str:
    return item if isinstance(item, str) else json.dumps(item)


def _reserved(mount: str) -> bool:
    return mount.split("/", 1)[0] in RESERVED_MOUNTS


def _refuse_reserved(mount: str, where: str) -> None:
    """Vault's own mounts (the token, the mount table, identities) are never read as secrets."""
    if _reserved(mount):
        raise BackendError(
            f"{where}: {mount.split('/', 1)[0]}/ is one of Vault's own mounts, not key/value; "
            "the vault source and vault:// references read KV secrets only"
        )


def _missing(error: Exception, key: VaultKey, where: str) -> NotFound:
    """A 404 is "not found" only in the shapes Vault gives a missing secret; others are errors.

    A missing secret is ``{"errors": []}``; a soft-deleted KV v2 version carries its
    metadata. "no handler for route" is a mount that does not exist, and a warning
    with no data is a read of the wrong KV version: both would miss every name.
    """
    body: Any = getattr(error, "json", None)
    body = body if isinstance(body, dict) else {}
    try:
        if body["data"]["metadata"]["deletion_time"]:
            return NotFound(f"no secret at {where} (that version is deleted)")
    except (KeyError, TypeError):
        pass
    errors = body.get("errors")
    if errors == []:
        return NotFound(f"no secret at {where}")
    said = " ".join(str(item) for item in (errors or []) + (body.get("warnings") or []))
    if "no handler for route" in said:
        raise BackendError(f"reading {where}: there is no mount {key.mount}/ (check the mount for a typo)")
    if "versioned K/V" in said or "K/V v2 mount" in said:
        raise BackendError(
            f"reading {where}: {key.mount}/ is a KV v2 mount, but it is read as KV v{key.kv_version} "
            "(set kv_version = 2 on the source, or ?kv=2 on a vault:// reference)"
        )
    raise BackendError(f"reading {where}: the server answered 404 in a way a missing KV secret is not")


def _server_says(error: Exception) -> str:
    errors = getattr(error, "errors", None) or []
    text = "; ".join(" ".join(str(item).split()) for item in errors) or type(error).__name__
    return _sdk_credentials.scrub_headers(masking.default_masker.mask(text))


def _translate(error: Exception, what: str, source: VaultSource) -> BackendError | ConfigError:
    """hvac / requests exceptions → the chain's outcomes. Retryable: network, 5xx, 429."""
    import requests

    hvac = _import_hvac()
    exceptions = hvac.exceptions
    if isinstance(error, requests.exceptions.SSLError):
        return BackendError(f"{what}: TLS error talking to {source.address()} (check verify / ca_cert)")
    if isinstance(error, requests.exceptions.Timeout):
        return BackendError(
            f"{what}: no answer from {source.address()} within {source.timeout:g}s", retryable=True
        )
    if isinstance(error, requests.exceptions.ConnectionError):
        return BackendError(f"{what}: cannot connect to {source.address()}", retryable=True)
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return ConfigError(f"source {source.name!r}: the server address is not a valid URL")
    if isinstance(error, exceptions.RateLimitExceeded):
        return BackendError(f"{what}: throttled by the server (429)", retryable=True)
    if isinstance(error, (exceptions.InternalServerError, exceptions.BadGateway, exceptions.VaultDown)):
        return BackendError(f"{what}: server error: {_server_says(error)}", retryable=True)
    if isinstance(error, exceptions.UnexpectedError):
        return BackendError(f"{what}: unexpected answer: {_server_says(error)}", retryable=True)
    if isinstance(error, (exceptions.Forbidden, exceptions.Unauthorized)):
        return BackendError(f"{what}: access denied", access_denied=True)
    if isinstance(error, exceptions.VaultError):
        return BackendError(f"{what}: {type(error).__name__}: {_server_says(error)}")
    if isinstance(error, requests.exceptions.RequestException):
        return BackendError(f"{what}: {type(error).__name__}", retryable=True)
    if isinstance(error, ValueError):  # a body that is not JSON: not a Vault answering
        return BackendError(f"{what}: the server at {source.address()} did not answer like Vault")
    text = _sdk_credentials.scrub_headers(masking.default_masker.mask(str(error)))
    return BackendError(f"{what}: {type(error).__name__}: {text}")
