"""AWS Secrets Manager (``aws-sm``) and SSM Parameter Store (``aws-ssm``).

Both sources talk to AWS through botocore, the client layer of boto3 (the
``aws`` extra installs both), imported the first time a source builds its
client, so ``import authchain`` stays SDK-free. Clients are built straight
from a botocore session: the same clients, credential provider chain and
profiles as ``boto3.client(...)``, without importing boto3's resource layer.
What the two sources share lives in :class:`_AWSSource`: settings,
credentials, one lazily built client per region, the error classification
and ``check()``.

Retries belong to the chain. botocore retries on its own by default (3 or
more attempts with its own backoff), which would multiply with the chain's
policy (3 x 3 calls against a throttling endpoint), so every client is built
with ``retries={"mode": "standard", "total_max_attempts": 1}``: botocore
makes exactly one attempt and reports the failure; the chain's ``retries`` /
``backoff`` (exponential, full jitter) decide whether to try again.

How an AWS answer becomes an outcome (both services):

- missing (``ResourceNotFoundException``, ``ParameterNotFound``,
  ``ParameterVersionNotFound``, ``InvalidParameters``) → ``NotFound``;
- a secret marked for deletion (``InvalidRequestException``) → ``NotFound``
  saying so;
- ``AccessDenied*``, rejected or expired credentials → ``BackendError`` with
  ``access_denied=True`` (never retried);
- throttling, 5xx, connection errors and timeouts → retryable ``BackendError``;
- anything else → non-retryable ``BackendError`` with the AWS error code.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

from authchain import _sdk_credentials, masking
from authchain._limits import MAX_NEGATIVE_SECONDS, MAX_TIMEOUT_SECONDS
from authchain._records import record
from authchain._scrub import scrubbed
from authchain.errors import AuthChainError, BackendError, ConfigError
from authchain.refs import POSITIVE_INT, LazyPattern, ReferenceGrammar, SecretRef, check_json_field, require
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

__all__ = [
    "AWSParameterStoreSource",
    "AWSSecretsManagerSource",
    "ParameterKey",
    "SecretsManagerKey",
    "parse_aws_credentials",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'authchain[aws]'"
SM_BATCH_LIMIT = 20
"""BatchGetSecretValue takes at most 20 ids (AWS's limit; moto does not enforce it)."""
SSM_BATCH_LIMIT = 10
"""GetParameters takes at most 10 names."""
AWSCURRENT = "AWSCURRENT"

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_SM_ARN_REGION = re.compile(r"arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):")
_SECRET_ID = re.compile(r"[A-Za-z0-9/_+=.@-]{1,2048}|arn:aws[a-z-]*:secretsmanager:\S+")
_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_./-]{1,2048}|arn:aws[a-z-]*:ssm:\S+")
_XML_CODE = re.compile(r"<Code>([^<]{1,128})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,1000})</Message>")

# -- credentials -------------------------------------------------------------------------

# Prefect 1's AWS_CREDENTIALS secret and boto3's own argument names, both accepted.
_CREDENTIAL_KEYS: dict[str, str] = {
    "access_key": "aws_access_key_id",
    "secret_access_key": "aws_secret_access_key",
    "session_token": "aws_session_token",
    "aws_access_key_id": "aws_access_key_id",
    "aws_secret_access_key": "aws_secret_access_key",
    "aws_session_token": "aws_session_token",
}
_EXPECTED_SHAPE = (
    "a JSON object with ACCESS_KEY and SECRET_ACCESS_KEY (and optionally SESSION_TOKEN), "
    "or aws_access_key_id and aws_secret_access_key (and optionally aws_session_token)"
)


@scrubbed
def parse_aws_credentials(value: SecretValue[Any], where: str) -> dict[str, str]:
    """Turn a JSON credential secret into boto3 ``Session`` keyword arguments.

    Accepts Prefect 1's ``{"ACCESS_KEY", "SECRET_ACCESS_KEY", "SESSION_TOKEN"}``
    and boto3's ``{"aws_access_key_id", "aws_secret_access_key",
    "aws_session_token"}`` (key case is ignored; the session token is optional).

    Example:
        >>> keys = parse_aws_credentials(
        ...     SecretValue('{"ACCESS_KEY": "AKIDEXAMPLE", "SECRET_ACCESS_KEY": "example-only"}'), "demo"
        ... )
        >>> sorted(keys)
        ['aws_access_key_id', 'aws_secret_access_key']

    Raises:
        ConfigError: not that shape; the message names the keys it expected
            (and any unknown key names), never a value.
    """
    try:
        parsed = value.json()
    except ValueError:
        raise ConfigError(f"{where} is not JSON; expected {_EXPECTED_SHAPE}") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"{where} is JSON but not an object; expected {_EXPECTED_SHAPE}")
    keys: dict[str, str] = {}
    unknown = sorted(str(key) for key in parsed if str(key).lower() not in _CREDENTIAL_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}; expected {_EXPECTED_SHAPE}")
    for key, item in parsed.items():
        canonical = _CREDENTIAL_KEYS[str(key).lower()]
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{where}: {key} must be a non-empty string; expected {_EXPECTED_SHAPE}")
        if canonical in keys:
            raise ConfigError(f"{where} gives {canonical} twice; expected {_EXPECTED_SHAPE}")
        keys[canonical] = item
    missing = [name for name in ("aws_access_key_id", "aws_secret_access_key") if name not in keys]
    if missing:
        raise ConfigError(f"{where} lacks {' and '.join(missing)}; expected {_EXPECTED_SHAPE}")
    return keys


# -- error classification ------------------------------------------------------------------

Kind = Literal["missing", "deleted", "denied", "unauthenticated", "throttled", "unavailable", "invalid"]

_MISSING_CODES = frozenset({"ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
_UNAUTHENTICATED_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "AuthFailure",
        "InvalidAccessKeyId",
    }
)
_THROTTLED_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
_SERVER_CODES = frozenset(
    {
        "InternalServiceError",
        "InternalServiceErrorException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


@record
class _Failure:
    """What went wrong with one AWS call, already stripped of anything secret."""

    kind: Kind
    code: str
    message: str

    def error(self, what: str) -> BackendError:
        """The ``BackendError`` this failure means for ``what`` (a key, or an operation)."""
        detail = f"{self.code}: {self.message}" if self.message else self.code
        if self.kind == "denied":
            return BackendError(f"access denied to {what} ({detail})", access_denied=True)
        if self.kind == "unauthenticated":
            return BackendError(
                f"access denied to {what}: the AWS credentials were rejected ({detail})", access_denied=True
            )
        if self.kind == "throttled":
            return BackendError(f"throttled reading {what} ({detail})", retryable=True)
        if self.kind == "unavailable":
            return BackendError(f"cannot read {what}: {detail}", retryable=True)
        return BackendError(f"cannot read {what}: {detail}")


def _kind_of(code: str, message: str, status: int | None) -> Kind:
    if code in _MISSING_CODES:
        return "missing"
    if code == "InvalidRequestException" and "deleted" in message.lower():
        return "deleted"
    if code in _DENIED_CODES:
        return "denied"
    if code in _UNAUTHENTICATED_CODES or status == 401:
        return "unauthenticated"
    if code in _THROTTLED_CODES or status == 429:
        return "throttled"
    if code in _SERVER_CODES or (status is not None and status >= 500):
        return "unavailable"
    if status == 403:
        return "denied"
    return "invalid"


def _clean(message: str) -> str:
    """SDK error text for a message: masked, one line, bounded."""
    text = " ".join(message.split())
    return _sdk_credentials.scrub_headers(masking.default_masker.mask(text))[:300]


def _classify(error: BaseException) -> _Failure | None:
    """Map a botocore exception to a ``_Failure``; None for anything that is not botocore's."""
    from botocore import exceptions as bx

    if isinstance(error, bx.ClientError):
        response: dict[str, Any] = getattr(error, "response", {}) or {}
        info = response.get("Error", {}) or {}
        code = str(info.get("Code", "") or "Unknown")
        message = str(info.get("Message", "") or "")
        status = (response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
        if message.lstrip().startswith("<"):
            # An XML error body on a JSON-protocol service (gateways, proxies, and
            # moto's IAM layer do this): botocore then reports the HTTP status as
            # the code, so read the real code and message out of the XML.
            found_code, found_message = _XML_CODE.search(message), _XML_MESSAGE.search(message)
            code = found_code.group(1) if found_code else code
            message = found_message.group(1) if found_message else ""
        return _Failure(_kind_of(code, message, status), code, _clean(message))
    if isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return _Failure(
            "unauthenticated",
            type(error).__name__,
            "no usable AWS credentials (set `credentials`, a profile, or boto3's usual sources)",
        )
    if isinstance(error, (bx.ConnectionError, bx.HTTPClientError)):
        return _Failure("unavailable", type(error).__name__, _clean(str(error)))
    if isinstance(error, bx.BotoCoreError):
        return _Failure("invalid", type(error).__name__, _clean(str(error)))
    return None


# -- the shared base ---------------------------------------------------------------------

_AWS_OPTIONS: tuple[Option, ...] = (
    Option("region", str, None, "AWS region (default: boto3's: AWS_REGION, AWS_DEFAULT_REGION, profile)"),
    Option("profile", str, None, "named profile from the AWS config files"),
    Option("endpoint_url", str, None, "custom endpoint (VPC endpoint, LocalStack, moto)"),
    Option(
        "credentials",
        str,
        None,
        "name or reference of a JSON credential resolved through the chain "
        "(default: boto3's own provider chain)",
    ),
    Option(
        "timeout",
        float,
        5.0,
        "connect and read timeout of each request, in seconds",
        minimum=0.1,
        maximum=MAX_TIMEOUT_SECONDS,
    ),
)

K = TypeVar("K")


def _chunks(items: Sequence[K], size: int) -> Iterator[Sequence[K]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


CHUNK_WORKERS = 4
"""Batch requests of one ``resolve_many`` in flight at once (botocore's pool holds 10)."""


def _each_chunk(
    batch: Callable[[str | None, Sequence[K]], dict[Key, Outcome]],
    groups: dict[str | None, list[K]],
    size: int,
) -> dict[Key, Outcome]:
    """``batch(region, chunk)`` for every chunk of every region's group, concurrently when several.

    The chunks are independent requests: sent one after another, 50 secrets
    cost three round trips instead of one. Each runs in a copy of the
    caller's context (the lookup's deadline, the log records held back until
    the values are masked). Every chunk finishes before the first error any
    of them raised is raised, so the chain retries the batch as a whole, as
    it would a single request.
    """
    jobs = [(region, chunk) for region, group in groups.items() for chunk in _chunks(group, size)]
    results: dict[Key, Outcome] = {}
    if len(jobs) < 2:
        for region, chunk in jobs:
            results.update(batch(region, chunk))
        return results
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    workers = min(CHUNK_WORKERS, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="authchain-batch") as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, batch, region, chunk) for region, chunk in jobs
        ]
    for future in futures:
        results.update(future.result())
    return results


Outcome = Found | NotFound | BackendError


def _by_original(
    keys: Iterable[Key],
    normalise: Callable[[Key], K],
    fetch: Callable[[Iterable[K]], dict[Key, Outcome]],
) -> dict[Key, Outcome]:
    """Run ``fetch`` on the distinct normalised keys; answer under the keys as given."""
    wanted = {key: normalise(key) for key in keys}
    answers = fetch(dict.fromkeys(wanted.values()))
    return {key: answers[normal] for key, normal in wanted.items()}


_loader_lock = threading.Lock()
_shared_loader: Any = None


def _botocore_session() -> Any:
    """A fresh botocore session sharing one process-wide ``data_loader``.

    Parsing botocore's service and endpoint JSON is most of the cost of a new
    client (≈150 of ≈200 ms); the loader caches those parsed, immutable
    descriptions (nothing about credentials or secrets), so sharing it makes
    every client after the first cost ≈50 ms. Each source still gets its own
    session, so credentials and profiles never mix.

    Every credential a client of this session signs with (found by boto3's
    own provider chain, issued by STS, or given by us) is registered with the
    masker before the request is signed and logged; see
    :func:`authchain._sdk_credentials.watch_botocore_session`.
    """
    global _shared_loader
    try:
        import botocore.loaders
        import botocore.session
    except ImportError as error:
        raise ConfigError(f"the aws-sm and aws-ssm sources need boto3 ({INSTALL_HINT}): {error}") from None
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = botocore.loaders.create_loader()
        loader = _shared_loader
    session = botocore.session.get_session()
    session.register_component("data_loader", loader)
    _sdk_credentials.watch_botocore_session(session)
    return session


# -- references: aws-sm://SECRET_ID, aws-ssm:///PATH/NAME (this backend's grammar; see authchain.refs) ------

_REF_SM_NAME = LazyPattern(r"[A-Za-z0-9/_+=.@-]{1,2048}")
_REF_SM_ARN = LazyPattern(
    r"arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
)
_REF_REGION = LazyPattern(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_REF_STAGE = LazyPattern(r"[A-Za-z0-9_.-]{1,256}")
_REF_VERSION_ID = LazyPattern(r"[A-Za-z0-9-]{32,64}")
_REF_SSM_NAME = LazyPattern(r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_REF_SSM_LABEL = LazyPattern(r"[A-Za-z0-9_.-]{1,100}")


def _secrets_manager_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    arn = _REF_SM_ARN.fullmatch(location)
    require(
        bool(arn) or (bool(_REF_SM_NAME.fullmatch(location)) and not location.startswith("arn:")),
        "the location is neither a secret name ([A-Za-z0-9/_+=.@-]) nor a Secrets Manager ARN",
    )
    if "stage" in params:
        require(bool(_REF_STAGE.fullmatch(params["stage"])), "stage is not a valid staging label")
    if "version_id" in params:
        require(bool(_REF_VERSION_ID.fullmatch(params["version_id"])), "version_id is not a version id")
    if "region" in params:
        require(
            bool(_REF_REGION.fullmatch(params["region"])),
            "the region is not a region name (such as eu-west-1)",
        )
    check_json_field(fragment)
    return location


def _parameter_store_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    name, colon, selector = location.rpartition(":") if ":" in location else (location, "", "")
    require(bool(_REF_SSM_NAME.fullmatch(name)), "the location is not a parameter name (/PATH/NAME)")
    if colon:
        require(
            bool(_REF_SSM_LABEL.fullmatch(selector)), "the :VERSION or :LABEL selector is empty or invalid"
        )
        require(
            "version" not in params and "label" not in params, "give the version either as :N or ?version=N"
        )
    if "version" in params:
        require(bool(POSITIVE_INT.fullmatch(params["version"])), "version must be a positive integer")
    require(not ("version" in params and "label" in params), "give a version or a label, not both")
    if "label" in params:
        require(bool(_REF_SSM_LABEL.fullmatch(params["label"])), "label is not a valid label")
    if "region" in params:
        require(
            bool(_REF_REGION.fullmatch(params["region"])),
            "the region is not a region name (such as eu-west-1)",
        )
    check_json_field(fragment)
    return location


class _AWSSource(Source):
    """Settings, credentials and clients shared by the Secrets Manager and SSM sources."""

    rank = 100
    extra = "aws"
    batches = True
    endpoint_options = ("endpoint_url",)
    service: ClassVar[str]
    probe_operation: ClassVar[str]
    probe_results: ClassVar[str]

    def __init__(
        self,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        credentials: str | None = None,
        timeout: float = 5.0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        where = f"source {self.name!r}"
        if region is not None and not _REGION.fullmatch(region):
            raise ConfigError(f"{where}: region must look like 'us-east-1'")
        if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: endpoint_url must start with http:// or https://")
        if credentials is not None:
            check_credential_setting(credentials, where, name="AWS_CREDENTIALS", reference="env://AWS_KEYS")
        if not timeout > 0:
            raise ConfigError(f"{where}: timeout must be > 0")
        self.region = region
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.credentials = credentials
        self.timeout = float(timeout)
        self._init_runtime()

    # Clients hold credentials and sockets; they are rebuilt where the
    # source is unpickled (a Dask worker uses its own connection).
    _runtime_attrs = ("_lock", "_clients", "_credential_method")

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str | None, Any] = {}
        self._credential_method: str | None = None

    # -- clients -----------------------------------------------------------

    def _client(self, region: str | None = None) -> Any:
        """This source's client for ``region`` (None: the configured one), built once, thread-safely.

        The keys are resolved with no lock held: resolving may ask other
        sources, whose own credentials may come from this one (two cold sources
        bootstrapping through each other from two threads deadlocked when each
        held its lock while resolving). Two threads may both resolve; one builds.
        """
        with self._lock:
            client = self._clients.get(region)
        if client is not None:
            return client
        # Before boto3's own provider chain as well: every request is signed
        # with whatever keys it finds, and carries their session token.
        self.ensure_credentials_allowed()
        keys = self._credential_keys()
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                client = self._new_client(region, keys)
                self._clients[region] = client
            return client

    def _new_client(self, region: str | None, keys: dict[str, str]) -> Any:
        session = _botocore_session()
        from botocore.config import Config
        from botocore.exceptions import NoRegionError, ProfileNotFound

        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},  # the chain retries, not botocore
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
        )
        try:
            if self.profile:
                session.set_config_variable("profile", self.profile)
            if keys:
                session.set_credentials(
                    keys["aws_access_key_id"], keys["aws_secret_access_key"], keys.get("aws_session_token")
                )
            client = session.create_client(
                self.service, region_name=region or self.region, endpoint_url=self.endpoint_url, config=config
            )
            found = session.get_credentials()
        except ProfileNotFound:
            raise ConfigError(f"source {self.name!r}: AWS profile {self.profile!r} does not exist") from None
        except NoRegionError:
            raise ConfigError(
                f"source {self.name!r} has no AWS region: set `region` or AWS_REGION / AWS_DEFAULT_REGION"
            ) from None
        if keys:
            self._credential_method = f"{self.credentials} (through the chain)"
        else:
            self._credential_method = f"boto3 ({found.method})" if found is not None else None
        logger.debug(
            "%s: %s client for %s", self.name, self.service, region or self.region or "default region"
        )
        return client

    def _credential_keys(self) -> dict[str, str]:
        if self.credentials is None:
            _sdk_credentials.refuse_native_default(f"source {self.name!r}", None, "boto3's provider chain")
            return {}
        value = self.resolve_credential(self.credentials)
        if value is None:
            # Configured but missing is an error, not a quiet switch to whatever
            # identity boto3 finds (a developer's default profile, an instance role).
            raise ConfigError(
                f"source {self.name!r}: credentials {self.credentials!r} were not found by any other "
                "source; store them, or remove the setting to use boto3's own provider chain"
            )
        return parse_aws_credentials(value, f"source {self.name!r}: credentials {self.credentials!r}")

    def _forget_client(self, region: str | None) -> None:
        """Drop a client whose credentials were rejected, so the next call resolves them again."""
        with self._lock:
            self._clients.pop(region, None)

    def _normal_region(self, region: str | None) -> str | None:
        return None if region is None or region == self.region else region

    def _failure(self, error: Exception, region: str | None) -> _Failure:
        """Classify ``error``; re-raise it when it is not an AWS error at all."""
        if isinstance(error, AuthChainError):  # ours (a ConfigError from building the client)
            raise error
        failure = _classify(error)
        if failure is None:
            raise error
        if failure.kind == "unauthenticated":
            self._forget_client(region)
        return failure

    def _ask_alone(self, key: Key) -> Found | NotFound | BackendError:
        """``get`` inside a batch: a retryable error raises (the chain retries the
        whole batch); an error about this one key is that key's outcome."""
        try:
            return self.get(key)
        except BackendError as error:
            if error.retryable:
                raise
            return error

    # -- check, close, pickle ------------------------------------------------

    def check(self) -> CheckResult:
        """One cheap authenticated call (``ListSecrets`` / ``DescribeParameters``, one result,
        limited to this source's prefix), naming the region it went to.

        Access denied to that call still proves the endpoint is reachable and
        the credentials are valid, which is all reads need, so it reports ok.
        An answer with nothing under the prefix means every lookup would miss
        (a wrong region, account or prefix): that is reported as misconfigured.
        """
        where = self.endpoint_url or "AWS"
        region = self.region or "the default region"
        try:
            client = self._client()
            region = str(client.meta.region_name or region)
            response = getattr(client, self.probe_operation)(MaxResults=1, **self._probe_filters())
        except ConfigError as error:
            return self.result("misconfigured", str(error))
        except Exception as error:
            failure = self._failure(error, None)
            if failure.kind == "denied":
                return self.result(
                    "ok",
                    f"reachable at {where} in {region}; credentials accepted ({failure.code} for the "
                    f"probe call, so whether {region} holds {self._probe_scope()} is not known)",
                )
            if failure.kind == "unauthenticated":
                return self.result(
                    "unauthenticated", f"{where} in {region}: {failure.code}: {failure.message}"
                )
            if failure.kind in {"unavailable", "throttled"}:
                return self.result("unreachable", f"{where} in {region}: {failure.code}: {failure.message}")
            return self.result("misconfigured", f"{where} in {region}: {failure.code}: {failure.message}")
        here = (
            f"reachable at {where} in {region}; "
            f"authenticated with {self._credential_method or 'boto3 credentials'}"
        )
        # An empty page with a NextToken is not "nothing": AWS may page before it finds a match.
        if not response.get(self.probe_results) and not response.get("NextToken"):
            return self.result(
                "misconfigured",
                f"{here}; but there are no {self._probe_scope()} in {region}, so every lookup would "
                "miss (wrong region, account or prefix?)",
            )
        return self.result("ok", f"{here}; {self._probe_scope()} exist there")

    def _probe_filters(self) -> dict[str, Any]:
        """What narrows ``check``'s listing to the names this source reads."""
        raise NotImplementedError

    def _probe_scope(self) -> str:
        """The names this source reads, for ``check``'s report ("secrets named app/*")."""
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()


# -- Secrets Manager ---------------------------------------------------------------------


class SecretsManagerKey(NamedTuple):
    """One secret version in Secrets Manager: what ``aws-sm`` keys look like."""

    secret_id: str
    stage: str | None = AWSCURRENT
    version_id: str | None = None
    region: str | None = None


class AWSSecretsManagerSource(_AWSSource):
    """AWS Secrets Manager: ``DB_PASSWORD`` → the secret ``<prefix>DB_PASSWORD``.

    ``SecretString`` comes back as a ``str`` value, ``SecretBinary`` as ``bytes``.
    ``resolve_many`` reads up to 20 secrets per ``BatchGetSecretValue`` call;
    if the caller may not call that API, it falls back to one
    ``GetSecretValue`` per secret (and remembers, for this source's life).

    Args:
        region, profile, endpoint_url: where and as whom boto3 connects.
        credentials: a name (``AWS_CREDENTIALS``) or reference resolved
            through the owning chain (without this source) to a JSON object
            with ``ACCESS_KEY``/``SECRET_ACCESS_KEY``[/``SESSION_TOKEN``] or
            boto3's ``aws_access_key_id``/... keys (nothing having it is a
            ``ConfigError``). Unset: boto3's own provider chain (environment,
            profile, SSO, container or instance role).
        timeout: connect and read timeout of each request, in seconds.
        prefix: prepended to every name (``app/prod/`` → ``app/prod/DB_PASSWORD``).
        version_stage: the staging label names are read at (``AWSCURRENT``).
            References name their own version (``?stage=``, ``?version_id=``)
            and ignore ``prefix`` and ``version_stage``.

    Example:
        >>> source = AWSSecretsManagerSource(region="eu-west-1", prefix="app/")
        >>> source.key_for("DB_PASSWORD")
        SecretsManagerKey(secret_id='app/DB_PASSWORD', stage='AWSCURRENT', version_id=None, region=None)
    """

    type = "aws-sm"
    reference_grammar = ReferenceGrammar(
        "aws-sm://SECRET_ID_OR_ARN[?stage=LABEL|version_id=ID][&region=REGION][#KEY]",
        _secrets_manager_location,
        frozenset({"stage", "version_id", "region"}),
    )
    service = "secretsmanager"
    probe_operation = "list_secrets"
    probe_results = "SecretList"
    options = (
        *_AWS_OPTIONS,
        Option("prefix", str, "", "prepended to every name: 'app/' turns DB_PASSWORD into app/DB_PASSWORD"),
        Option("version_stage", str, AWSCURRENT, "the staging label names are read at"),
    )

    def __init__(self, *, prefix: str = "", version_stage: str = AWSCURRENT, **settings: Any) -> None:
        super().__init__(**settings)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,256}", version_stage):
            raise ConfigError(f"source {self.name!r}: version_stage is not a valid staging label")
        self.prefix = prefix
        self.version_stage = version_stage
        self._batch_denied = False

    def key_for(self, name: str) -> Key:
        return SecretsManagerKey(self.prefix + name, self.version_stage)

    def _probe_filters(self) -> dict[str, Any]:
        # The "name" filter matches the beginning of secret names.
        return {"Filters": [{"Key": "name", "Values": [self.prefix]}]} if self.prefix else {}

    def _probe_scope(self) -> str:
        return f"secrets named {self.prefix}*" if self.prefix else "secrets"

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        arn = _SM_ARN_REGION.match(ref.location)
        region = arn.group("region") if arn else ref.param("region")  # the ARN's region wins
        stage, version_id = ref.param("stage"), ref.param("version_id")
        if stage is None and version_id is None:
            stage = AWSCURRENT
        return SecretsManagerKey(ref.location, stage, version_id, self._normal_region(region)), ref.field

    def describe_key(self, key: Key) -> str:
        key = self._as_key(key)
        qualifiers = [f"version {key.version_id}"] if key.version_id else []
        if key.stage and key.stage != AWSCURRENT:
            qualifiers.append(key.stage)
        if key.region:
            qualifiers.append(f"in {key.region}")
        return f"{key.secret_id} ({', '.join(qualifiers)})" if qualifiers else key.secret_id

    def _as_key(self, key: Key) -> SecretsManagerKey:
        if isinstance(key, SecretsManagerKey):
            return key
        if isinstance(key, str):
            return SecretsManagerKey(key, self.version_stage)
        raise TypeError(f"{self.type} keys are SecretsManagerKey or str, not {type(key).__name__}")

    # -- one secret ------------------------------------------------------------

    def get(self, key: Key) -> Found | NotFound:
        key = self._as_key(key)
        if not _SECRET_ID.fullmatch(key.secret_id):
            return NotFound(f"{self.describe_key(key)} is not a valid secret name, so no secret has it")
        params: dict[str, str] = {"SecretId": key.secret_id}
        if key.version_id:
            params["VersionId"] = key.version_id
        if key.stage:
            params["VersionStage"] = key.stage
        try:
            response = self._client(key.region).get_secret_value(**params)
        except Exception as error:
            return self._not_found_or_raise(self._failure(error, key.region), key)
        return self._found(key, response)

    def _found(self, key: SecretsManagerKey, response: dict[str, Any]) -> Found:
        where = self.describe_key(key)
        if response.get("SecretString") is not None:
            value: SecretValue[Any] = SecretValue(str(response["SecretString"]))
        elif response.get("SecretBinary") is not None:
            value = SecretValue(bytes(response["SecretBinary"]))
        else:
            raise BackendError(f"{where} has neither SecretString nor SecretBinary")
        version = response.get("VersionId")
        return Found(value, f"secret {where}" + (f" (version {version})" if version else ""))

    def _not_found_or_raise(self, failure: _Failure, key: SecretsManagerKey) -> NotFound:
        where = self.describe_key(key)
        if failure.kind == "missing":
            return NotFound(f"no secret {where}")
        if failure.kind == "deleted":
            return NotFound(f"secret {where} is marked for deletion")
        raise failure.error(where)

    # -- many secrets ----------------------------------------------------------

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Outcome]:
        """``BatchGetSecretValue`` per region in chunks of 20 ids.

        Only ``AWSCURRENT`` reads batch (the batch API reads no other version);
        the rest, and ids the batch answer does not mention, are asked one by
        one. A retryable failure raises, so the chain retries the whole batch;
        an error about one secret (denied, bad data) is that secret's outcome.
        """
        return _by_original(keys, self._as_key, self._get_many)

    def _get_many(self, keys: Iterable[SecretsManagerKey]) -> dict[Key, Outcome]:
        results: dict[Key, Outcome] = {}
        batchable: dict[str | None, list[SecretsManagerKey]] = {}
        for key in keys:
            if key.stage == AWSCURRENT and key.version_id is None and _SECRET_ID.fullmatch(key.secret_id):
                batchable.setdefault(key.region, []).append(key)
            else:
                results[key] = self._ask_alone(key)
        results.update(_each_chunk(self._batch, batchable, SM_BATCH_LIMIT))
        return results

    def _batch(self, region: str | None, chunk: Sequence[SecretsManagerKey]) -> dict[Key, Outcome]:
        if self._batch_denied:
            return {key: self._ask_alone(key) for key in chunk}
        try:
            values, errors = self._batch_call(region, [key.secret_id for key in chunk])
        except Exception as error:
            failure = self._failure(error, region)
            if failure.kind != "denied":
                raise failure.error(f"a batch of {len(chunk)} secrets") from error
            # No permission for BatchGetSecretValue (it is a separate IAM action):
            # read one by one from now on; each secret's own permission still applies.
            logger.debug("%s: BatchGetSecretValue denied; reading secrets one by one", self.name)
            self._batch_denied = True
            return {key: self._ask_alone(key) for key in chunk}
        by_id: dict[str, dict[str, Any]] = {}
        for entry in values:
            for identifier in (entry.get("Name"), entry.get("ARN")):
                if identifier:
                    by_id[identifier] = entry
        failed = {str(entry.get("SecretId")): entry for entry in errors}
        results: dict[Key, Outcome] = {}
        for key in chunk:
            if key.secret_id in by_id:
                try:
                    results[key] = self._found(key, by_id[key.secret_id])
                except BackendError as error:  # this secret's own problem, as when asked alone
                    results[key] = error
            elif key.secret_id in failed:
                results[key] = self._error_entry(key, failed[key.secret_id])
            else:  # e.g. a partial ARN the answer names differently: ask for it alone
                results[key] = self._ask_alone(key)
        return results

    def _batch_call(
        self, region: str | None, ids: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        client = self._client(region)
        values: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        params: dict[str, Any] = {"SecretIdList": ids}
        for _ in range(len(ids) + 1):  # AWS may page even a short id list; never loop forever
            response = client.batch_get_secret_value(**params)
            values.extend(response.get("SecretValues", []))
            errors.extend(response.get("Errors", []))
            if not response.get("NextToken"):
                break
            params["NextToken"] = response["NextToken"]
        return values, errors

    def _error_entry(self, key: SecretsManagerKey, entry: dict[str, Any]) -> NotFound | BackendError:
        code = str(entry.get("ErrorCode") or "Unknown")
        message = _clean(str(entry.get("Message") or ""))
        failure = _Failure(_kind_of(code, message, None), code, message)
        if failure.kind in {"missing", "deleted"}:
            return self._not_found_or_raise(failure, key)
        error = failure.error(self.describe_key(key))
        if error.retryable:
            raise error
        return error


# -- SSM Parameter Store -----------------------------------------------------------------


class ParameterKey(NamedTuple):
    """One parameter (version) in SSM Parameter Store: what ``aws-ssm`` keys look like."""

    name: str
    selector: str = ""
    """``""``, ``":3"`` (a version) or ``":LABEL"``."""
    region: str | None = None


class AWSParameterStoreSource(_AWSSource):
    """AWS SSM Parameter Store: ``DB_PASSWORD`` → the parameter ``<path_prefix>/DB_PASSWORD``.

    ``SecureString`` parameters are decrypted (``with_decryption``);
    ``resolve_many`` reads up to 10 names per ``GetParameters`` call.

    With ``load_path = true`` the first lookup of a name under ``path_prefix``
    reads the whole path once (``GetParametersByPath``, recursive, paged) and
    later lookups are served from that snapshot until it is ``load_path_ttl``
    seconds old; names outside the path, versions and labels are still read
    one by one. The snapshot lives in this source object only (it never
    pickles); ``close()`` drops it.

    Args:
        region, profile, endpoint_url, credentials, timeout: as for ``aws-sm``.
        path_prefix: a path (``/app/prod``; ``app/prod`` and ``/app/prod/`` mean
            the same), or empty for names used as they are. An empty inner
            segment (``/app//prod``) or a ``..`` segment is a ``ConfigError``.
        with_decryption: decrypt ``SecureString`` values (default true).
        load_path, load_path_ttl: the whole-path mode described above.
        clock: a seam for tests (``time.monotonic``).

    Example:
        >>> AWSParameterStoreSource(path_prefix="/app/prod").key_for("DB_PASSWORD")
        ParameterKey(name='/app/prod/DB_PASSWORD', selector='', region=None)
    """

    type = "aws-ssm"
    reference_grammar = ReferenceGrammar(
        "aws-ssm:///PATH/NAME[:VERSION][?version=N|label=L][&region=REGION][#KEY]",
        _parameter_store_location,
        frozenset({"version", "label", "region"}),
    )
    service = "ssm"
    probe_operation = "describe_parameters"
    probe_results = "Parameters"
    options = (
        *_AWS_OPTIONS,
        Option(
            "path_prefix", str, "", "path names live under: '/app' turns DB_PASSWORD into /app/DB_PASSWORD"
        ),
        Option("with_decryption", bool, True, "decrypt SecureString parameters"),
        Option("load_path", bool, False, "read every parameter under path_prefix at once and serve from it"),
        Option(
            "load_path_ttl",
            float,
            60.0,
            "seconds a load_path snapshot is reused",
            minimum=0,
            maximum=MAX_NEGATIVE_SECONDS,
        ),
    )

    def __init__(
        self,
        *,
        path_prefix: str = "",
        with_decryption: bool = True,
        load_path: bool = False,
        load_path_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        where = f"source {self.name!r}"
        if path_prefix and not path_prefix.startswith("/"):
            # A parameter name with a slash in it is always absolute in SSM, so
            # "app/prod" can only mean "/app/prod": written as users write it.
            path_prefix = "/" + path_prefix
        inner = path_prefix.strip("/")
        if inner and any(segment in ("", "..") for segment in inner.split("/")):
            raise ConfigError(f"{where}: path_prefix has an empty segment ('//') or a '..' segment")
        if load_path and not path_prefix:
            raise ConfigError(f"{where}: load_path needs a path_prefix (the path to read)")
        self.path_prefix = path_prefix
        self.with_decryption = with_decryption
        self.load_path = load_path
        self.load_path_ttl = float(load_path_ttl)
        self._clock = clock
        self._init_snapshot()

    _runtime_attrs = ("_snapshot_lock", "_snapshot", "_snapshot_at")

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self._init_snapshot()

    def _init_snapshot(self) -> None:
        self._snapshot_lock = threading.Lock()
        self._snapshot: dict[str, Found] | None = None
        self._snapshot_at = 0.0

    @property
    def _path(self) -> str:
        """``path_prefix`` without its trailing slashes (``/`` becomes ``""``)."""
        return self.path_prefix.rstrip("/")

    def key_for(self, name: str) -> Key:
        return ParameterKey(f"{self._path}/{name}" if self.path_prefix else name)

    def _probe_filters(self) -> dict[str, Any]:
        if not self._path:
            return {}
        return {"ParameterFilters": [{"Key": "Path", "Option": "Recursive", "Values": [self._path]}]}

    def _probe_scope(self) -> str:
        return f"parameters under {self._path}/" if self._path else "parameters"

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        name, selector = ref.location, ""
        if ":" in name:
            name, _, label = name.rpartition(":")
            selector = f":{label}"
        elif ref.param("version"):
            selector = f":{ref.param('version')}"
        elif ref.param("label"):
            selector = f":{ref.param('label')}"
        return ParameterKey(name, selector, self._normal_region(ref.param("region"))), ref.field

    def describe_key(self, key: Key) -> str:
        key = self._as_key(key)
        return f"{key.name}{key.selector}" + (f" (in {key.region})" if key.region else "")

    def _as_key(self, key: Key) -> ParameterKey:
        if isinstance(key, ParameterKey):
            return key
        if isinstance(key, str):
            return ParameterKey(key)
        raise TypeError(f"{self.type} keys are ParameterKey or str, not {type(key).__name__}")

    # -- one parameter ---------------------------------------------------------

    def get(self, key: Key) -> Found | NotFound:
        key = self._as_key(key)
        if self._in_snapshot_scope(key):
            return self._from_snapshot(key)
        if not _PARAMETER_NAME.fullmatch(key.name):
            return NotFound(f"{self.describe_key(key)} is not a valid parameter name, so no parameter has it")
        try:
            response = self._client(key.region).get_parameter(
                Name=key.name + key.selector, WithDecryption=self.with_decryption
            )
        except Exception as error:
            failure = self._failure(error, key.region)
            if failure.kind == "missing":
                return NotFound(f"no parameter {self.describe_key(key)}")
            raise failure.error(f"parameter {self.describe_key(key)}") from error
        return self._found(key, response["Parameter"])

    def _found(self, key: ParameterKey, parameter: dict[str, Any]) -> Found:
        facts = [f"version {parameter['Version']}"] if parameter.get("Version") is not None else []
        if parameter.get("Type"):
            facts.append(str(parameter["Type"]))
        detail = f"parameter {self.describe_key(key)}" + (f" ({', '.join(facts)})" if facts else "")
        return Found(SecretValue(str(parameter["Value"])), detail)

    # -- many parameters ---------------------------------------------------------

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Outcome]:
        """``GetParameters`` per region in chunks of 10 names (names under a loaded
        path come from the snapshot; versions and labels are asked one by one)."""
        return _by_original(keys, self._as_key, self._get_many)

    def _get_many(self, keys: Iterable[ParameterKey]) -> dict[Key, Outcome]:
        results: dict[Key, Outcome] = {}
        plain: dict[str | None, list[ParameterKey]] = {}
        for key in keys:
            if self._in_snapshot_scope(key):
                results[key] = self._from_snapshot(key)
            elif not key.selector and _PARAMETER_NAME.fullmatch(key.name):
                plain.setdefault(key.region, []).append(key)
            else:
                results[key] = self._ask_alone(key)
        results.update(_each_chunk(self._batch, plain, SSM_BATCH_LIMIT))
        return results

    def _batch(self, region: str | None, chunk: Sequence[ParameterKey]) -> dict[Key, Outcome]:
        try:
            response = self._client(region).get_parameters(
                Names=[key.name for key in chunk], WithDecryption=self.with_decryption
            )
        except Exception as error:
            failure = self._failure(error, region)
            if failure.kind != "denied":
                raise failure.error(f"a batch of {len(chunk)} parameters") from error
            # GetParameters is refused as a whole when any one name is denied:
            # ask one by one, so only the denied names fail.
            return {key: self._ask_alone(key) for key in chunk}
        by_name = {str(p["Name"]): p for p in response.get("Parameters", []) if not p.get("Selector")}
        invalid = set(response.get("InvalidParameters", []))
        results: dict[Key, Outcome] = {}
        for key in chunk:
            if key.name in by_name:
                results[key] = self._found(key, by_name[key.name])
            elif key.name in invalid:
                results[key] = NotFound(f"no parameter {self.describe_key(key)}")
            else:  # named differently in the answer (an ARN, say): ask for it alone
                results[key] = self._ask_alone(key)
        return results

    # -- load_path -----------------------------------------------------------------

    def _in_snapshot_scope(self, key: ParameterKey) -> bool:
        return (
            self.load_path
            and not key.selector
            and key.region is None
            and key.name.startswith(f"{self._path}/")
        )

    def _from_snapshot(self, key: ParameterKey) -> Found | NotFound:
        found = self._load_snapshot().get(key.name)
        if found is None:
            return NotFound(f"no parameter {self.describe_key(key)} under {self.path_prefix} (load_path)")
        return found

    def _load_snapshot(self) -> dict[str, Found]:
        with self._snapshot_lock:
            now = self._clock()
            if self._snapshot is not None and now - self._snapshot_at < self.load_path_ttl:
                return self._snapshot
            snapshot: dict[str, Found] = {}
            try:
                pages = (
                    self._client()
                    .get_paginator("get_parameters_by_path")
                    .paginate(Path=self._path or "/", Recursive=True, WithDecryption=self.with_decryption)
                )
                for page in pages:
                    for parameter in page.get("Parameters", []):
                        name = str(parameter["Name"])
                        snapshot[name] = self._found(ParameterKey(name), parameter)
            except Exception as error:
                failure = self._failure(error, None)
                raise failure.error(f"parameters under {self.path_prefix}") from error
            for found in snapshot.values():  # all fetched, so all masked, asked for or not
                masking.register(found.value)
            self._snapshot, self._snapshot_at = snapshot, now
            logger.debug("%s: loaded %d parameters under %s", self.name, len(snapshot), self.path_prefix)
            return snapshot

    def close(self) -> None:
        with self._snapshot_lock:
            self._snapshot = None
        super().close()
