"""Azure Key Vault: ``DB_PASSWORD`` → the secret ``DB-PASSWORD`` of one vault.

Key Vault secret names allow only ``[0-9a-zA-Z-]`` (1-127 characters, compared
without regard to case), so a chain name such as ``DB_PASSWORD`` cannot be a
secret name as it is: by default every ``_`` becomes ``-`` (``DB-PASSWORD``,
the same secret as ``db-password``); ``name_transform`` picks another mapping.

References name the vault the way Azure itself does, by its name:
``azure-kv://VAULT/SECRET[/VERSION][#KEY]``. A vault name is unique in its
cloud and is one DNS host (``VAULT.vault.azure.net``); it is what the portal,
``az keyvault secret show --vault-name`` and App Service's Key Vault
references use, and it fits the ``SCHEME://LOCATION`` shape every reference
shares, which a URL (scheme, port) would not. The reference's secret name is
used exactly as written: no prefix or name transform applies.

The SDK (``azure-keyvault-secrets``, ``azure-identity``, about 130 ms to
import) is imported the first time the source talks to the service, never at
import or construction. Its own retry is switched off (``retry_total=0``):
it sleeps whatever ``Retry-After`` says, past any deadline. The chain retries
instead; a 429 or 503's ``Retry-After`` travels on the ``BackendError``
(``retry_after``) and the chain waits at least that long, never past the
lookup's deadline. Key Vault has no batch read: :meth:`get_many` asks
concurrently on a bounded pool, and ``resolve_many`` runs lookups on the
chain's pool (the source is ``concurrent``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from authchain import _sdk_credentials, masking
from authchain._limits import MAX_TIMEOUT_SECONDS, MAX_WORKERS
from authchain._scrub import scrubbed
from authchain.backends._net import is_loopback_host, refuse_other_origin, timeout_within_deadline
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

__all__ = ["AzureKeyVaultSource", "AzureSecretKey", "azure_credential_from", "vault_url_for"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'authchain[azure]'"
PUBLIC_SUFFIX = "vault.azure.net"
REDIRECT_ADVICE = (
    "Key Vault itself never redirects: set vault_url (or vault_name) to the vault's own address "
    "(https://NAME.vault.azure.net), not a proxy or gateway in front of it that redirects"
)
ENVIRONMENT_VARIABLES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")

_SECRET_NAME = LazyPattern(r"[0-9A-Za-z-]{1,127}")
_PREFIX = LazyPattern(r"[0-9A-Za-z-]*")
_VAULT_NAME = LazyPattern(r"[A-Za-z](?!.*--)[0-9A-Za-z-]{1,22}[0-9A-Za-z]")
_VERSION = LazyPattern(r"[0-9A-Za-z]{1,64}")
_NOT_ALLOWED = LazyPattern(r"[^0-9A-Za-z-]")
_KEBAB_RUNS = LazyPattern(r"[^a-z0-9]+")

TRANSFORMS = ("dashes", "kebab", "none")


class AzureSecretKey(NamedTuple):
    """The backend key: one secret (its latest version when ``version`` is empty) of one vault."""

    vault_url: str
    name: str
    version: str = ""

    def describe(self) -> str:
        """``https://VAULT.vault.azure.net/secrets/NAME[/VERSION]``, the secret's id."""
        where = f"{self.vault_url}/secrets/{self.name}"
        return f"{where}/{self.version}" if self.version else where


def vault_url_for(name: str, suffix: str = PUBLIC_SUFFIX) -> str:
    """``https://NAME.vault.azure.net`` (or another cloud's DNS suffix)."""
    return f"https://{name.lower()}.{suffix}"


# -- references: azure-kv://VAULT/SECRET[/VERSION][#KEY] (see authchain.refs) ---------------------


def _reference_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    parts = location.split("/")
    require(len(parts) in {2, 3}, "expected VAULT/SECRET or VAULT/SECRET/VERSION")
    require(bool(_VAULT_NAME.fullmatch(parts[0])), "the vault is not a vault name ([0-9a-zA-Z-], 3-24)")
    require(bool(_SECRET_NAME.fullmatch(parts[1])), "the secret is not a secret name ([0-9a-zA-Z-], 1-127)")
    if len(parts) == 3:
        require(bool(_VERSION.fullmatch(parts[2])), "the version is not a version id ([0-9a-zA-Z])")
    check_json_field(fragment)
    return location


class AzureKeyVaultSource(Source):
    """Reads secrets from one Azure Key Vault over its REST API.

    Args:
        vault_url: the vault's URL (``https://my-vault.vault.azure.net``).
        vault_name: the vault's name; alone it means
            ``https://NAME.vault.azure.net``. With ``vault_url`` it is the
            name references use for that URL (a private endpoint, a test server).
        version: the version every name reads (default: the latest).
        prefix: prepended to every name before the transform (``app-``).
        name_transform: how a name becomes a secret name, which Key Vault limits
            to ``[0-9a-zA-Z-]``: ``dashes`` (default: ``_`` becomes ``-``; any
            other character is a ``ConfigError``), ``kebab`` (lower case, runs
            of other characters become ``-``: ``db.password`` → ``db-password``)
            or ``none`` (as it is).
        credentials: a secret name or reference (``env://AZURE_SP_JSON``,
            ``vault://secret/azure#sp``) resolved through the rest of the chain
            to JSON ``{tenant_id, client_id, client_secret}`` or
            ``{tenant_id, client_id, certificate_path[, certificate_password]}``.
            Unset: ``AZURE_TENANT_ID``/``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET``
            (or ``AZURE_CLIENT_CERTIFICATE_PATH``) from the environment, else
            azure-identity's ``DefaultAzureCredential``.
        authority: the Microsoft Entra authority host (default azure-identity's:
            ``AZURE_AUTHORITY_HOST``, else the public cloud). A loopback
            host is a test server: no instance discovery is asked of Microsoft.
        ca_bundle: a CA file the vault's and the authority's TLS certificates are
            checked against (default: the system's).
        timeout: seconds one request may take (default 10).
        max_concurrency: most requests :meth:`get_many` has in flight (default 8).
        environ: the mapping ``AZURE_*`` is read from (a seam for tests).

    Example:
        >>> source = AzureKeyVaultSource(vault_name="my-vault")
        >>> source.describe_key(source.key_for("DB_PASSWORD"))
        'https://my-vault.vault.azure.net/secrets/DB-PASSWORD'
        >>> AzureKeyVaultSource(vault_name="my-vault", name_transform="kebab").key_for("db.password").name
        'db-password'
    """

    type = "azure-kv"
    reference_grammar = ReferenceGrammar("azure-kv://VAULT/SECRET[/VERSION][#KEY]", _reference_location)
    rank = 100
    extra = "azure"
    concurrent = True
    endpoint_options = ("vault_url", "vault_name", "authority", "ca_bundle")
    options = (
        Option("vault_url", str, None, "the vault's URL (https://NAME.vault.azure.net)"),
        Option("vault_name", str, None, "the vault's name (https://NAME.vault.azure.net)"),
        Option("version", str, None, "the version every name reads (default: the latest)"),
        Option("prefix", str, "", "prepended to every name"),
        Option("name_transform", str, "dashes", "how a name becomes a secret name", choices=TRANSFORMS),
        Option("credentials", str, None, "a name or reference holding {tenant_id, client_id, client_secret}"),
        Option("authority", str, None, "Microsoft Entra authority host (default: azure-identity's)"),
        Option("ca_bundle", str, None, "CA file for the vault's and authority's TLS", is_path=True),
        Option(
            "timeout", float, 10.0, "seconds one request may take", minimum=0, maximum=MAX_TIMEOUT_SECONDS
        ),
        Option(
            "max_concurrency",
            int,
            8,
            "most requests get_many has in flight",
            minimum=1,
            maximum=MAX_WORKERS,
        ),
    )

    _seam_attrs = ("_environ",)

    def __init__(
        self,
        *,
        vault_url: str | None = None,
        vault_name: str | None = None,
        version: str | None = None,
        prefix: str = "",
        name_transform: str = "dashes",
        credentials: str | None = None,
        authority: str | None = None,
        ca_bundle: str | Path | None = None,
        timeout: float = 10.0,
        max_concurrency: int = 8,
        environ: Mapping[str, str] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        where = f"source {self.name!r}"
        if vault_name is not None and not _VAULT_NAME.fullmatch(vault_name):
            raise ConfigError(
                f"{where}: vault_name must be a vault name (3-24 of [0-9a-zA-Z-], starting with a letter)"
            )
        derived: dict[str, str] = {}
        if vault_url is not None:
            vault_url = _check_https_url(vault_url, f"{where}: vault_url")
        elif vault_name is not None:
            vault_url, derived["vault_url"] = vault_url_for(vault_name), "vault_name"
        if vault_name is None and vault_url is not None:
            vault_name = _name_in_host(vault_url)
            if vault_name is not None:
                derived["vault_name"] = "vault_url"
        if version is not None and not _VERSION.fullmatch(version):
            raise ConfigError(f"{where}: version must be a version id ([0-9a-zA-Z])")
        if not _PREFIX.fullmatch(prefix):
            raise ConfigError(f"{where}: prefix may only hold [0-9a-zA-Z-] (Key Vault name characters)")
        if name_transform not in TRANSFORMS:
            raise ConfigError(f"{where}: name_transform must be one of {', '.join(map(repr, TRANSFORMS))}")
        if credentials is not None:
            check_credential_setting(
                credentials, where, name="AZURE_CREDENTIALS", reference="env://AZURE_SP_JSON"
            )
        if authority is not None:
            authority = _check_https_url(authority, f"{where}: authority")
        if not timeout > 0:
            raise ConfigError(f"{where}: timeout must be more than 0 seconds")
        if int(max_concurrency) < 1:
            raise ConfigError(f"{where}: max_concurrency must be at least 1")
        self.vault_url = vault_url
        self.vault_name = vault_name.lower() if vault_name else None
        self.version = version
        self.prefix = prefix
        self.name_transform = name_transform
        self.credentials = credentials
        self.authority = authority
        self.ca_bundle = str(ca_bundle) if ca_bundle is not None else None
        self.timeout = float(timeout)
        self.max_concurrency = int(max_concurrency)
        self._environ = environ
        self._derived = derived
        self._init_runtime()

    # Clients and the credential belong to the process that made them.
    _runtime_attrs = ("_lock", "_clients", "_credential", "_credential_origin")

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._clients: dict[str, Any] = {}  # one per vault URL
        self._credential: Any = None
        self._credential_origin: str | None = None

    def derived_settings(self) -> dict[str, str]:
        """``vault_url`` worked out from ``vault_name`` (the public cloud), or the reverse."""
        return dict(self._derived)

    # -- names to keys (pure) -------------------------------------------------------

    def key_for(self, name: str) -> Key:
        if self.vault_url is None:
            raise ConfigError(
                f"{self.name}: no vault: set vault_url or vault_name (references name their own vault)"
            )
        secret = self.secret_name(name)
        return AzureSecretKey(self.vault_url, secret, self.version or "")

    def secret_name(self, name: str) -> str:
        """The Key Vault secret name ``name`` maps to (prefix, then the transform)."""
        text = self.prefix + name
        if self.name_transform == "dashes":
            text = text.replace("_", "-")
        elif self.name_transform == "kebab":
            text = _KEBAB_RUNS.sub("-", text.lower()).strip("-")
        if not _SECRET_NAME.fullmatch(text):
            bad = _NOT_ALLOWED.search(text)
            why = f"the character {bad.group(0)!r} is not allowed" if bad else "it must be 1-127 characters"
            hint = "; set name_transform = 'kebab'" if self.name_transform != "kebab" and bad else ""
            raise ConfigError(
                f"{self.name}: the name {name!r} is not a Key Vault secret name ([0-9a-zA-Z-]): {why}"
                f"{hint}, or pin the name to a reference in [secrets]"
            )
        return text

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        """``azure-kv://VAULT/SECRET[/VERSION]``: no prefix or transform; no version means the latest."""
        parts = ref.location.split("/")
        vault = parts[0].lower()
        if vault == self.vault_name and self.vault_url is not None:
            url = self.vault_url
        else:
            url = vault_url_for(vault, self._dns_suffix())
        return AzureSecretKey(url, parts[1], parts[2] if len(parts) == 3 else ""), ref.field

    def owns_reference(self, ref: SecretRef) -> bool:
        """``azure-kv://VAULT/...`` whose VAULT is this source's ``vault_name``."""
        return self.vault_name is not None and ref.location.split("/")[0].lower() == self.vault_name

    def foreign_endpoint(self, key: Key) -> str | None:
        """A reference's vault that is not this source's own (it gets this source's token)."""
        if isinstance(key, AzureSecretKey) and key.vault_url != self.vault_url:
            return key.vault_url
        return None

    def _dns_suffix(self) -> str:
        """The cloud's vault DNS suffix: the configured vault's (``vault.azure.cn``), else the public one."""
        if self.vault_url and self.vault_name:
            host = urlsplit(self.vault_url).hostname or ""
            if host.startswith(f"{self.vault_name}.") and "." in host:
                return host.split(".", 1)[1]
        return PUBLIC_SUFFIX

    def describe_key(self, key: Key) -> str:
        return key.describe() if isinstance(key, AzureSecretKey) else str(key)

    # -- the one verb ---------------------------------------------------------------

    def get(self, key: Key) -> Found | NotFound:
        if not isinstance(key, AzureSecretKey):
            raise ConfigError(f"{self.name}: {key!r} is not an Azure Key Vault secret key")
        client = self._client(key.vault_url)
        timeout = timeout_within_deadline(self.timeout)
        where = key.describe()
        try:
            secret = client.get_secret(
                key.name, key.version or None, connection_timeout=timeout, read_timeout=timeout
            )
        except Exception as error:
            problem = classify(error, where, timeout=timeout)
            if problem is None:
                return NotFound(f"{where} does not exist")
            raise problem from None
        value = secret.value
        served = secret.properties.version
        detail = where if not served or served == key.version else f"{where} (version {served})"
        return Found(SecretValue("" if value is None else value), detail)

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Found | NotFound | BackendError]:
        """Each key on its own request, ``max_concurrency`` at a time (Key Vault has no batch read)."""
        wanted = list(dict.fromkeys(keys))
        if len(wanted) < 2 or self.max_concurrency < 2:
            return super().get_many(wanted)
        import contextvars
        from concurrent.futures import ThreadPoolExecutor

        def one(key: Key) -> Found | NotFound | BackendError:
            try:
                return self.get(key)
            except BackendError as error:
                return error

        workers = min(self.max_concurrency, len(wanted))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"authchain-{self.name}") as pool:
            # Each request runs in a copy of this context: the lookup's deadline goes with it.
            futures = [pool.submit(contextvars.copy_context().run, one, key) for key in wanted]
            return {key: future.result() for key, future in zip(wanted, futures, strict=True)}

    # -- clients and the credential (lazy, one per source) --------------------------

    def _client(self, vault_url: str) -> Any:
        with self._lock:
            client = self._clients.get(vault_url)
        if client is not None:
            return client
        # The credential may be resolved through other sources: no lock held meanwhile.
        credential = self._get_credential()
        client = secret_client(vault_url, credential, ca_bundle=self.ca_bundle, timeout=self.timeout)
        with self._lock:
            kept = self._clients.setdefault(vault_url, client)
        if kept is not client:
            with contextlib.suppress(Exception):
                client.close()
        return kept

    def _get_credential(self) -> Any:
        with self._lock:
            if self._credential is not None:
                return self._credential
        credential, origin = self._load_credential()
        with self._lock:
            if self._credential is None:
                self._credential, self._credential_origin = credential, origin
            return self._credential

    def _load_credential(self) -> tuple[Any, str]:
        """explicit ``credentials`` through the chain → ``AZURE_*`` variables → ``DefaultAzureCredential``."""
        self.ensure_credentials_allowed()  # the SDK's own defaults included
        _import_sdk()
        options: dict[str, Any] = {"authority": self.authority, "ca_bundle": self.ca_bundle}
        if self.credentials is not None:
            value = self.resolve_credential(self.credentials)
            if value is None:
                raise ConfigError(
                    f"{self.name}: credentials {self.credentials!r} were not found by any other source "
                    "(a named credential is never replaced by another identity)"
                )
            problem = f"{self.name}: credentials {self.credentials!r}"
            credential = azure_credential_from(value, problem, timeout=self.timeout, **options)
            return credential, f"chain ({self.credentials})"
        owner = f"source {self.name!r}"
        _sdk_credentials.refuse_native_default(owner, None, "the AZURE_* variables or DefaultAzureCredential")
        environ = self._environ if self._environ is not None else os.environ
        from_environment = environment_credential(environ, timeout=self.timeout, **options)
        if from_environment is not None:
            return from_environment, "AZURE_* variables"
        return default_credential(**options), "DefaultAzureCredential"

    # -- the source as an object ----------------------------------------------------

    def check(self) -> CheckResult:
        """List the vault's secrets (one page): proves it is reachable and the caller authenticated,
        and says when it holds nothing this source's names could find (a wrong vault or prefix)."""
        if self.vault_url is None:
            return self.result("misconfigured", "no vault: set vault_url or vault_name")
        try:
            client = self._client(self.vault_url)
        except ConfigError as error:
            return self.result("misconfigured", str(error))
        except BackendError as error:
            return self.result("unauthenticated" if error.access_denied else "unreachable", error.message)
        try:
            names = _first_names(client, self.timeout)
        except Exception as error:
            return self._check_failed(error)
        prefix = self.prefix.replace("_", "-") if self.name_transform == "dashes" else self.prefix
        scope = f"secrets whose name starts with {prefix!r}" if prefix else "secrets"
        matching = [name for name in names if name.lower().startswith(prefix.lower())]
        if not matching and (prefix or not names):
            seen = f" among the first {len(names)}" if names else ""
            return self.result(
                "misconfigured",
                f"reachable at {self.vault_url}; but the vault has no {scope}{seen}, so every lookup "
                "would miss (wrong vault or prefix?)",
            )
        return self.result("ok", f"reachable at {self.vault_url}; the vault has {scope}")

    def _check_failed(self, error: Exception) -> CheckResult:
        from azure.core.exceptions import HttpResponseError

        if isinstance(error, HttpResponseError) and error.status_code == 403:
            return self.result(
                "ok",
                f"reachable and authenticated at {self.vault_url} (not allowed to list secrets, "
                "so whether it is the right vault is not known)",
            )
        problem = classify(error, str(self.vault_url), timeout=self.timeout)
        if problem is None:
            return self.result("misconfigured", f"{self.vault_url} answered 404: is it a Key Vault?")
        return self.result("unauthenticated" if problem.access_denied else "unreachable", problem.message)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            credential, self._credential = self._credential, None
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        closer = getattr(credential, "close", None)
        if callable(closer):
            with contextlib.suppress(Exception):
                closer()


# -- outcomes ------------------------------------------------------------------------


def classify(error: BaseException, where: str, *, timeout: float | None = None) -> BackendError | None:
    """The BackendError an SDK exception means, or None for "not found".

    404 ``SecretNotFound`` → None; 401, 403 and token failures → access denied
    (never retried), except a disabled secret, which is its own error; 429, 5xx,
    connection errors and timeouts → retryable, with the answer's ``Retry-After``.

    Raises:
        Exception: ``error`` itself when it is not an Azure SDK error at all.
    """
    from azure.core import exceptions as az

    if isinstance(error, az.ResourceNotFoundError) or (
        isinstance(error, az.HttpResponseError) and error.status_code == 404
    ):
        return None
    text = str(getattr(error, "message", None) or error)
    if type(error).__name__ == "CredentialUnavailableError" or "DefaultAzureCredential failed" in text:
        return BackendError(
            f"no Azure credentials for {where}: set `credentials` to a name or reference holding "
            "{tenant_id, client_id, client_secret}, set AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, "
            f"or sign in (managed identity, workload identity, az login). {_quote(text)}",
            access_denied=True,
        )
    if isinstance(error, az.ClientAuthenticationError) and error.status_code is None:
        # No HTTP answer of the vault's: the credential could not get a token.
        text = _quote(error.message or str(error))
        if _authority_unavailable(error):  # throttled, down or unreachable: not a refusal
            return BackendError(f"cannot get an access token for {where} (retryable): {text}", retryable=True)
        return BackendError(f"cannot get an access token for {where}: {text}", access_denied=True)
    if isinstance(error, az.HttpResponseError):
        status = error.status_code
        code, message = _error_code(error), _quote(_error_message(error))
        if status == 403 and _is_disabled(error):
            return BackendError(f"{where} is disabled; enable it in the vault or read another version")
        if status in (401, 403):
            return BackendError(f"access denied to {where} ({status} {code}: {message})", access_denied=True)
        if status == 429 or (status is not None and status >= 500):
            retry_after = _retry_after(error)
            wait = f"; Retry-After {retry_after:g}s" if retry_after is not None else ""
            return BackendError(f"{where}: {status} {code}{wait}", retryable=True, retry_after=retry_after)
        return BackendError(f"{where}: {status} {code}: {message}")
    if isinstance(error, (az.ServiceRequestError, az.ServiceResponseError)):
        limit = f" (timeout {timeout:g}s)" if timeout is not None else ""
        return BackendError(f"cannot reach {where}{limit}: {_quote(str(error))}", retryable=True)
    if isinstance(error, az.AzureError):
        return BackendError(f"{where}: {_quote(str(error))}")
    raise error


_AUTHORITY_STATUS = LazyPattern(r"HTTP Error: (\d{3})")
# The status of the authority's last answer to a token request made in this context (see
# DeadlineTransport): msal's message for a 429 with an Entra error body names no status, and
# msal answers the same request from its throttle cache, without asking, until Retry-After.
_AUTHORITY_ANSWER: ContextVar[int | None] = ContextVar("authchain_azure_authority_answer", default=None)


def _authority_unavailable(error: BaseException) -> bool:
    """Whether a token request failed because the authority was unreachable, timed out, throttled
    (429) or failing (5xx), as opposed to refusing the credential: msal says ``HTTP Error: 503``
    (``MsalServiceError``) behind azure-identity's ``ClientAuthenticationError``."""
    from azure.core import exceptions as az

    answered = _AUTHORITY_ANSWER.get()
    if answered is not None and (answered == 429 or answered >= 500):
        return True
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and not any(current is known for known in seen):
        seen.append(current)
        if isinstance(current, (az.ServiceRequestError, az.ServiceResponseError)):
            return True
        match = _AUTHORITY_STATUS.search(str(current))
        if match and (match.group(1) == "429" or match.group(1).startswith("5")):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_disabled(error: Any) -> bool:
    inner = getattr(getattr(error, "error", None), "innererror", None) or {}
    code = inner.get("code") if isinstance(inner, dict) else None
    return code == "SecretDisabled" or "disabled secret" in _error_message(error)


def _error_code(error: Any) -> str:
    odata = getattr(error, "error", None)
    return str(getattr(odata, "code", None) or getattr(error, "reason", None) or "error")


def _error_message(error: Any) -> str:
    odata = getattr(error, "error", None)
    return str(getattr(odata, "message", None) or error.reason or "")


def _retry_after(error: Any) -> float | None:
    """Seconds the answer's ``Retry-After`` asks for: delta-seconds or an HTTP date (RFC 9110),
    None for anything else (negative, not finite, garbage). How long is actually waited is the
    chain's business (bounded by the deadline, see ``authchain._retry``)."""
    import math

    response = getattr(error, "response", None)
    text = response.headers.get("Retry-After") if response is not None else None
    if text is None:
        return None
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = _seconds_until(text)
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(date: str) -> float | None:
    import time
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return max(0.0, when - time.time())


def _quote(text: str, limit: int = 200) -> str:
    """SDK text for a message: masked (never a known value), header values scrubbed, short."""
    text = _sdk_credentials.scrub_headers(masking.default_masker.mask(text.strip()))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_names(client: Any, timeout: float) -> list[str]:
    """Names on the first page of the vault's secrets (at most 25)."""
    pages = client.list_properties_of_secrets(
        max_page_size=25, connection_timeout=timeout, read_timeout=timeout
    ).by_page()
    return [item.name for item in next(pages, [])]


# -- credentials -------------------------------------------------------------------


class _SDK(NamedTuple):
    SecretClient: Any
    identity: Any


def _import_sdk() -> _SDK:
    try:
        import azure.identity as identity
        from azure.keyvault.secrets import SecretClient
    except ImportError as error:
        raise ConfigError(
            "source type 'azure-kv' needs azure-keyvault-secrets and azure-identity "
            f"({INSTALL_HINT}): {error}"
        ) from None
    return _SDK(SecretClient, identity)


def secret_client(vault_url: str, credential: Any, *, ca_bundle: str | None, timeout: float) -> Any:
    """A ``SecretClient`` for ``vault_url``, shared by the source and ``azure_secret_client``.

    The SDK's retry is off (the chain retries, honouring ``Retry-After``
    within the deadline). Its challenge-resource check (the 401 challenge's
    ``resource`` must be the vault's domain) stays on except for a loopback
    vault, a test server, which cannot be under ``vault.azure.net``. A
    redirect is followed only on the vault's own origin (see :func:`_redirect_policy`).
    """
    sdk = _import_sdk()
    return sdk.SecretClient(
        vault_url,
        credential,
        verify_challenge_resource=not is_loopback(vault_url),
        connection_verify=ca_bundle or True,
        retry_total=0,
        connection_timeout=timeout,
        read_timeout=timeout,
        redirect_policy=_redirect_policy(),
    )


def _redirect_policy() -> Any:
    """azure-core's redirect policy, refusing a hop to another origin before it is sent.

    azure-core already drops the bearer token when a redirect changes the host and
    never sends one over http; the hop itself still went out (naming the secret read)
    and its answer (a 401, a refusal to use http) was reported as access denied or an
    unreachable vault, retried. Key Vault itself never redirects: a redirect elsewhere
    comes from something in front of it, and that is what the error says.
    """
    return _same_origin_redirect_policy_class()()


@functools.cache
def _same_origin_redirect_policy_class() -> Any:
    from azure.core.pipeline.policies import RedirectPolicy

    class SameOriginRedirectPolicy(RedirectPolicy):  # type: ignore[type-arg]
        def increment(self, settings: Any, response: Any, redirect_location: str) -> bool:
            before = response.http_request.url
            more: bool = super().increment(settings, response, redirect_location)
            refuse_other_origin(before, response.http_request.url, "vault", REDIRECT_ADVICE)
            return more

    return SameOriginRedirectPolicy


def _identity_options(authority: str | None, ca_bundle: str | None, timeout: float = 10.0) -> dict[str, Any]:
    """What every credential is built with: the authority, the CA file, and a pipeline that
    never outlives the lookup (no SDK retry, which sleeps the token endpoint's ``Retry-After``
    whatever it says; each request's timeout cut to what is left of the deadline)."""
    options: dict[str, Any] = {"retry_total": 0, "transport": _deadline_transport(timeout, ca_bundle)}
    if authority is not None:
        options["authority"] = authority
        if is_loopback(authority):  # a test authority: never ask Microsoft's instance discovery
            options["disable_instance_discovery"] = True
    return options


def _deadline_transport(timeout: float, ca_bundle: str | None) -> Any:
    """azure-core's requests transport, each request's timeouts cut to what is left of the
    current lookup's deadline (the credential is asked inside a lookup, on its thread); it
    also verifies TLS with ``ca_bundle``."""
    return _deadline_transport_class()(
        timeout, connection_timeout=timeout, read_timeout=timeout, connection_verify=ca_bundle or True
    )


@functools.cache
def _deadline_transport_class() -> Any:
    from azure.core.pipeline.transport import RequestsTransport

    class DeadlineTransport(RequestsTransport):  # type: ignore[misc]
        def __init__(self, timeout: float, **settings: Any) -> None:
            super().__init__(**settings)
            self.timeout = timeout

        def send(self, request: Any, **kwargs: Any) -> Any:
            left = timeout_within_deadline(self.timeout)
            kwargs["connection_timeout"] = min(kwargs.get("connection_timeout", left), left)
            kwargs["read_timeout"] = min(kwargs.get("read_timeout", left), left)
            _AUTHORITY_ANSWER.set(None)
            response = super().send(request, **kwargs)
            _AUTHORITY_ANSWER.set(response.status_code)
            return response

    return DeadlineTransport


_CREDENTIAL_FIELDS = ("tenant_id", "client_id", "client_secret", "certificate_path", "certificate_password")


@scrubbed
def azure_credential_from(
    value: SecretValue[Any],
    problem: str,
    *,
    authority: str | None = None,
    ca_bundle: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """A ``ClientSecretCredential`` or ``CertificateCredential`` from JSON
    ``{tenant_id, client_id, client_secret | certificate_path[, certificate_password]}``.

    Messages start with ``problem`` and never quote a value. The client secret
    and certificate password are registered with the masker whatever path the
    JSON took here, and each access token as it is issued.
    """
    try:
        info = value.json()
    except ValueError:
        raise ConfigError(f"{problem} do not hold JSON {{tenant_id, client_id, client_secret}}") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{problem} do not hold a JSON object {{tenant_id, client_id, client_secret}}")
    unknown = sorted(set(info) - set(_CREDENTIAL_FIELDS))
    if unknown:
        raise ConfigError(
            f"{problem} hold unknown fields {unknown!r}; known: {', '.join(_CREDENTIAL_FIELDS)}"
        )
    for field in _CREDENTIAL_FIELDS:
        if field in info and not (isinstance(info[field], str) and info[field]):
            raise ConfigError(f"{problem}: {field} must be a non-empty string")
    for secret in ("client_secret", "certificate_password"):
        _sdk_credentials.register(info.get(secret))
    missing = [field for field in ("tenant_id", "client_id") if field not in info]
    if missing:
        raise ConfigError(f"{problem} lack {' and '.join(missing)}")
    if ("client_secret" in info) == ("certificate_path" in info):
        raise ConfigError(f"{problem} must hold exactly one of client_secret and certificate_path")
    return _build_credential(
        info["tenant_id"],
        info["client_id"],
        info.get("client_secret"),
        info.get("certificate_path"),
        info.get("certificate_password"),
        _identity_options(authority, ca_bundle, timeout),
    )


def environment_names_a_principal(environ: Mapping[str, str]) -> bool:
    """Whether the ``AZURE_*`` variables describe a service principal (tenant, client, and a
    secret or certificate path), as azure-identity's ``EnvironmentCredential`` reads them."""
    return bool(
        environ.get("AZURE_TENANT_ID")
        and environ.get("AZURE_CLIENT_ID")
        and (environ.get("AZURE_CLIENT_SECRET") or environ.get("AZURE_CLIENT_CERTIFICATE_PATH"))
    )


def environment_credential(
    environ: Mapping[str, str],
    *,
    authority: str | None = None,
    ca_bundle: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """The credential ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID`` and ``AZURE_CLIENT_SECRET`` (or
    ``AZURE_CLIENT_CERTIFICATE_PATH``) describe, as azure-identity's ``EnvironmentCredential``
    reads them; None when they are not all set (``AZURE_CLIENT_ID`` alone selects a
    user-assigned managed identity: ``DefaultAzureCredential``'s business)."""
    if not environment_names_a_principal(environ):
        return None
    tenant, client = environ["AZURE_TENANT_ID"], environ["AZURE_CLIENT_ID"]
    secret, path = environ.get("AZURE_CLIENT_SECRET"), environ.get("AZURE_CLIENT_CERTIFICATE_PATH")
    password = environ.get("AZURE_CLIENT_CERTIFICATE_PASSWORD")
    _sdk_credentials.register(secret)
    _sdk_credentials.register(password)
    options = _identity_options(authority or environ.get("AZURE_AUTHORITY_HOST"), ca_bundle, timeout)
    return _build_credential(tenant, client, secret, None if secret else path, password, options)


def default_credential(*, authority: str | None = None, ca_bundle: str | None = None) -> Any:
    """azure-identity's ``DefaultAzureCredential`` (managed identity, workload identity, Azure CLI ...),
    its access tokens registered with the masker as they are issued."""
    sdk = _import_sdk()
    options: dict[str, Any] = {}
    if authority is not None:
        options["authority"] = authority
    if ca_bundle is not None:
        options["connection_verify"] = ca_bundle
    return MaskingCredential(sdk.identity.DefaultAzureCredential(**options))


def _build_credential(
    tenant: str,
    client: str,
    secret: str | None,
    certificate_path: str | None,
    password: str | None,
    options: dict[str, Any],
) -> Any:
    identity = _import_sdk().identity
    try:
        if secret is not None:
            inner = identity.ClientSecretCredential(tenant, client, secret, **options)
        else:
            inner = identity.CertificateCredential(
                tenant, client, certificate_path=certificate_path, password=password, **options
            )
    except (ValueError, OSError) as error:  # a malformed tenant id, an unreadable certificate
        raise ConfigError(f"cannot build an Azure credential: {_quote(str(error))}") from None
    return MaskingCredential(inner)


class MaskingCredential:
    """An azure-identity credential whose access tokens are registered with the masker once issued.

    Key Vault's challenge policy asks ``get_token_info`` (azure-core ≥ 1.31)
    or ``get_token``; both are passed through and the token they return
    registered, so SDK error text, logs and ``authchain run`` output show
    ``***`` for it.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        token = self.inner.get_token(*scopes, **kwargs)
        _sdk_credentials.register(token.token)
        return token

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        getter = getattr(self.inner, "get_token_info", None)
        if getter is None:  # an older azure-identity
            from azure.core.credentials import AccessTokenInfo

            # get_token takes the challenge's claims and tenant as keywords.
            wanted = {name: (options or {}).get(name) for name in ("claims", "tenant_id")}
            token = self.get_token(*scopes, **{name: v for name, v in wanted.items() if v is not None})
            return AccessTokenInfo(token.token, token.expires_on)
        info = getter(*scopes, options=options)
        _sdk_credentials.register(info.token)
        return info

    def close(self) -> None:
        closer = getattr(self.inner, "close", None)
        if callable(closer):
            closer()

    def __enter__(self) -> MaskingCredential:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MaskingCredential({type(self.inner).__name__})"


# -- helpers ----------------------------------------------------------------------------


def _check_https_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.path.strip("/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(f"{where} must be an https URL with no path (https://NAME.vault.azure.net)")
    if parts.username or parts.password:
        raise ConfigError(f"{where} must not hold a user or password")
    return f"https://{parts.netloc}"


def _name_in_host(url: str) -> str | None:
    label = (urlsplit(url).hostname or "").split(".", 1)[0]
    return label.lower() if _VAULT_NAME.fullmatch(label) else None


def is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")
