"""``aws_session`` and ``aws_client``: boto3 with credentials found through the chain.

Prefect 1's ``get_boto_client`` idea, made general: explicit credentials →
the ``AWS_CREDENTIALS`` secret (or the name/reference in ``[clients.aws]
credentials``) through the chain → boto3's own provider chain (environment,
profiles, SSO, instance roles). A credential secret that carries an
``Expiration`` becomes botocore ``RefreshableCredentials``: it is resolved
again through the chain before it runs out, so long flows keep working.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from authchain._chain import Chain
from authchain._default import get_default_chain
from authchain._scrub import scrubbed
from authchain.clients._base import (
    CACHE,
    ClientExplanation,
    Credential,
    Unfingerprintable,
    client_settings,
    factory_arguments,
    fingerprint,
    lookup_credential,
)
from authchain.clients._coerce import check_one_place, coerce_single, same_secret
from authchain.config import untrusted_endpoint
from authchain.errors import ConfigError
from authchain.refs import SecretRef
from authchain.sources.base import Option
from authchain.values import SecretValue

__all__ = ["aws_client", "aws_session", "explain_aws"]

DEFAULT_CREDENTIAL_NAME = "AWS_CREDENTIALS"
_EXPIRY_KEYS = ("expiration", "expiry_time", "expiration_time")
# boto3 client arguments that carry an identity: taken out of aws_client's
# **client_kwargs and checked against the credentials the factory found.
LOOSE_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
# The stores an AWS client opens: its credentials are never looked up by bare name in them.
OWN_TYPES = ("aws-sm", "aws-ssm")

OPTIONS: tuple[Option, ...] = (
    Option("credentials", str, None, "name or reference of the credential secret (default AWS_CREDENTIALS)"),
    Option("profile_name", str, None, "named profile from the AWS config files"),
    Option("region_name", str, None, "AWS region"),
    Option("endpoint_url", str, None, "custom endpoint (VPC endpoint, LocalStack, moto)"),
)


@scrubbed
def aws_session(
    credentials: Any = None,
    *,
    region_name: str | None = None,
    profile_name: str | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
) -> Any:
    """A ``boto3.Session`` whose credentials come from the first place that has them.

    Args:
        credentials: explicit credentials, as any Secret task returns them: a
            dict (Prefect 1 ``ACCESS_KEY``/``SECRET_ACCESS_KEY``/``SESSION_TOKEN``
            or boto3 ``aws_access_key_id``/...) of strings or ``SecretValue`` objects
            (``as_dict=True``), its JSON as str or ``SecretValue``, or a reference
            (``SecretRef`` / ``"aws-sm://..."``) to look up instead.
        region_name, profile_name: as for boto3; default from ``[clients.aws]``.
        credential_name: the secret to look up (default ``[clients.aws] credentials``,
            else ``AWS_CREDENTIALS``). Not together with ``credentials=``, unless
            both are the same reference.
        chain: the chain to ask (default: the configured one).

    Raises:
        ConfigError: credentials of the wrong shape (naming the expected keys,
            never the values), a configured credential name nothing has, or
            ``credentials=`` and ``credential_name=`` naming different credentials.
    """
    session, _ = _session(credentials, region_name, profile_name, credential_name, chain)
    return session


@scrubbed
def aws_client(
    service: str,
    *,
    credentials: Any = None,
    region_name: str | None = None,
    profile_name: str | None = None,
    endpoint_url: str | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
    **client_kwargs: Any,
) -> Any:
    """A ready boto3 client for ``service``, cached per process by its settings' fingerprint.

    Example::

        s3 = aws_client("s3", region_name="eu-west-1")
        s3 = aws_client("s3", credentials={"ACCESS_KEY": ..., "SECRET_ACCESS_KEY": ...})

    A second call with the same settings returns the same client (µs, not ms).

    boto3's own ``aws_access_key_id``/``aws_secret_access_key``/``aws_session_token``
    are credentials too: alone, they are the explicit credentials (masked, and
    the session signs with them); next to ``credentials=`` or
    ``credential_name=`` they must equal the keys those give, else a
    ``ConfigError`` naming both arguments (never a value).
    """
    loose = {name: client_kwargs.pop(name) for name in LOOSE_KEYS if name in client_kwargs}
    loose = {name: coerce_single(value, name) for name, value in loose.items() if value is not None}
    chain = chain or get_default_chain()
    settings = client_settings(
        "aws",
        chain,
        OPTIONS,
        {"region_name": region_name, "profile_name": profile_name, "endpoint_url": endpoint_url},
    )
    # Every request is signed with the session's keys and carries its session
    # token: an endpoint only an untrusted config file names gets neither.
    refused = untrusted_endpoint(chain.settings, "clients.aws", () if endpoint_url else ("endpoint_url",))
    if refused:
        raise ConfigError(refused)
    session, key = _session(credentials, region_name, profile_name, credential_name, chain, settings, loose)
    extra = {"service": service, "endpoint_url": settings["endpoint_url"], "kwargs": client_kwargs}

    def build() -> Any:
        return session.client(service, endpoint_url=settings["endpoint_url"], **client_kwargs)

    try:
        client_key = fingerprint("aws-client", {"session": key, **extra})
    except Unfingerprintable:
        return build()  # an argument only its identity describes: a client of its own, not cached
    return CACHE.get_or_build(client_key, build)


@scrubbed
def explain_aws(**arguments: Any) -> ClientExplanation:
    """Where an ``aws_client`` built with these arguments (its keywords; no service) gets each piece from."""
    given = factory_arguments(aws_client, arguments, leave_out=("service",))
    chain = given["chain"] or get_default_chain()
    explanation = ClientExplanation("aws")
    settings = client_settings(
        "aws",
        chain,
        OPTIONS,
        {name: given[name] for name in ("region_name", "profile_name", "endpoint_url")},
        explanation,
    )
    explanation.origins.pop("credentials", None)
    found = _credential(given["credentials"], given["credential_name"], chain, settings)
    origin = found.origin
    if found.value is None:
        origin = f"native default (boto3: {_boto3_method(settings['profile_name'])})"
    explanation.origins["credentials"] = origin
    return explanation


# -- internals ---------------------------------------------------------------------


def _credential(
    credentials: Any,
    credential_name: str | SecretRef | None,
    chain: Chain,
    settings: dict[str, Any] | None = None,
) -> Credential:
    check_one_place("aws", ("credentials", credentials), ("credential_name", credential_name))
    # `credentials` has no call argument, so any merged settings carry the configured one.
    configured = (settings or client_settings("aws", chain, OPTIONS, {}))["credentials"]
    name = credential_name or configured or DEFAULT_CREDENTIAL_NAME
    # A name someone configured must exist; the conventional default may be absent.
    required = credential_name is not None or configured is not None
    return lookup_credential(credentials, name, chain, kind="aws", own_types=OWN_TYPES, required=required)


def _session(
    credentials: Any,
    region_name: str | None,
    profile_name: str | None,
    credential_name: str | SecretRef | None,
    chain: Chain | None,
    settings: dict[str, Any] | None = None,
    loose: dict[str, Any] | None = None,
) -> tuple[Any, str]:
    chain = chain or get_default_chain()
    if settings is None:  # aws_client passes the settings it already merged (one pass per call)
        settings = client_settings(
            "aws", chain, OPTIONS, {"region_name": region_name, "profile_name": profile_name}
        )
    if loose and credentials is None and credential_name is None:
        # boto3's key arguments alone: they are the explicit credentials, not a client override.
        credentials = {name: value.get_secret_value() for name, value in loose.items()}
        loose = None
    found = _credential(credentials, credential_name, chain, settings)
    keys, expiry = _keys(found)
    if loose:
        _check_loose_keys(loose, keys, "credential_name" if credentials is None else "credentials")
    shown = {"region_name": settings["region_name"], "profile_name": settings["profile_name"]}
    if expiry is not None and found.name is not None:
        # Refreshable: the session is tied to the credential's *name*, not this
        # value, so a refreshed value reuses the session instead of building one.
        key = fingerprint("aws-session", {**shown, "refreshable": found.name, "chain": id(chain)})
    else:
        key = fingerprint("aws-session", {**shown, "origin": found.origin}, keys)

    def build() -> Any:
        return _new_session(settings, found, keys, expiry, chain)

    return CACHE.get_or_build(key, build), key


def _check_loose_keys(loose: dict[str, Any], keys: dict[str, str], argument: str) -> None:
    """boto3 key arguments next to ``credentials=``: equal keys are accepted, others refused.

    Passed on to the client they would win over the session's credentials,
    and the client would act as another identity than the one named.
    """
    differing = [name for name, value in loose.items() if not same_secret(value, keys.get(name))]
    if differing:
        raise ConfigError(
            f"aws_client: {argument}= and {'= and '.join(differing)}= give different AWS credentials; "
            f"pass the keys in one place (values not shown)"
        )


@scrubbed
def _keys(found: Credential) -> tuple[dict[str, str], datetime | None]:
    if found.value is None:
        return {}, None
    from authchain.backends.aws.source import parse_aws_credentials

    where = "explicit AWS credentials" if found.origin == "explicit" else f"AWS credentials {found.name}"
    try:
        data = found.value.json()
    except ValueError:
        raise ConfigError(f"{where} are not JSON; expected ACCESS_KEY and SECRET_ACCESS_KEY") from None
    expiry = None
    if isinstance(data, dict):
        for key in list(data):
            if str(key).lower() in _EXPIRY_KEYS:
                expiry = _parse_expiry(data.pop(key), where)
    keys = parse_aws_credentials(SecretValue(_json(data)), where)
    return keys, expiry


def _json(data: Any) -> str:
    import json

    return json.dumps(data)


def _parse_expiry(value: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        pass  # its message quotes the text: raised below, outside the handler, without it
    else:
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    raise ConfigError(f"{where}: Expiration must be an ISO 8601 timestamp")


def _new_session(
    settings: dict[str, Any], found: Credential, keys: dict[str, str], expiry: datetime | None, chain: Chain
) -> Any:
    try:
        import boto3
        from botocore.credentials import RefreshableCredentials
    except ImportError as error:
        raise ConfigError(f"aws_session needs boto3 (pip install 'authchain[aws]'): {error}") from None
    from authchain._sdk_credentials import register
    from authchain.backends.aws.source import _botocore_session

    for value in keys.values():  # explicit keys never went through the chain: masked before any use
        register(value)
    core = _botocore_session()  # registers whatever else a client of it signs with
    if settings["profile_name"]:
        core.set_config_variable("profile", settings["profile_name"])
    if keys and expiry is not None and found.name is not None:
        name = found.name

        def refresh() -> dict[str, str]:
            # Ask the chain again (past its cache) for the rotated credentials.
            assert name is not None
            chain.invalidate(name)
            fresh = lookup_credential(None, name, chain, kind="aws", own_types=OWN_TYPES, required=True)
            new_keys, new_expiry = _keys(fresh)
            return _metadata(new_keys, new_expiry)

        core._credentials = RefreshableCredentials.create_from_metadata(
            metadata=_metadata(keys, expiry), refresh_using=refresh, method="authchain"
        )
    elif keys:
        core.set_credentials(
            keys["aws_access_key_id"], keys["aws_secret_access_key"], keys.get("aws_session_token")
        )
    return boto3.session.Session(botocore_session=core, region_name=settings["region_name"])


def _metadata(keys: dict[str, str], expiry: datetime | None) -> dict[str, str]:
    if expiry is None:
        raise ConfigError("refreshed AWS credentials lost their Expiration")
    return {
        "access_key": keys["aws_access_key_id"],
        "secret_key": keys["aws_secret_access_key"],
        "token": keys.get("aws_session_token", ""),
        "expiry_time": expiry.isoformat(),
    }


def _boto3_method(profile_name: str | None) -> str:
    """How boto3's own provider chain would find credentials here ('env', 'shared-credentials-file', ...)."""
    try:
        from authchain.backends.aws.source import _botocore_session

        core = _botocore_session()
        if profile_name:
            core.set_config_variable("profile", profile_name)
        found = core.get_credentials()
    except Exception as error:  # any profile/config problem: say so, not crash explain
        return f"unavailable: {type(error).__name__}"
    return found.method if found is not None else "none found"
