"""``gcp_credentials`` and ``gcp_secret_manager_client``.

Service-account JSON explicit → ``GCP_CREDENTIALS`` (or ``[clients.gcp]
credentials``) through the chain (never from a ``gcp-sm`` source: no
recursion) → ``google.auth.default()``. Only service-account keys are
loaded from a secret: other credential types (external accounts can run
commands) belong to Application Default Credentials.
"""

from __future__ import annotations

from typing import Any

from authchain._chain import Chain
from authchain._default import get_default_chain
from authchain._scrub import scrubbed
from authchain.backends.gcp.source import _LOCATION, CLOUD_PLATFORM_SCOPE, _is_loopback, regional_endpoint
from authchain.clients._base import (
    CACHE,
    ClientExplanation,
    Credential,
    client_settings,
    factory_arguments,
    fingerprint,
    lookup_credential,
)
from authchain.clients._coerce import check_one_place
from authchain.config import untrusted_endpoint
from authchain.errors import ConfigError
from authchain.refs import SecretRef
from authchain.sources.base import Option

__all__ = ["explain_gcp", "gcp_credentials", "gcp_secret_manager_client"]

DEFAULT_CREDENTIAL_NAME = "GCP_CREDENTIALS"

OPTIONS: tuple[Option, ...] = (
    Option("credentials", str, None, "name or reference of a service-account key (default GCP_CREDENTIALS)"),
    Option("endpoint", str, None, "host[:port] of the Secret Manager API; loopback hosts use plaintext gRPC"),
    Option("location", str, None, "region whose endpoint serves regional secrets (default: global)"),
)


@scrubbed
def gcp_credentials(
    credentials: Any = None,
    *,
    scopes: list[str] | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
) -> Any:
    """Google credentials: explicit service-account info → the chain → ``google.auth.default()``.

    Args:
        credentials: a service-account key as any Secret task returns it (a dict
            of strings or ``SecretValue`` objects from ``as_dict=True``, its JSON as str
            or ``SecretValue``), or a reference to look up.
        scopes: OAuth scopes (default: cloud-platform).
        credential_name: the secret to look up (default ``[clients.gcp] credentials``,
            else ``GCP_CREDENTIALS``). Not together with a different ``credentials=``:
            that is a ``ConfigError`` naming both.
    """
    chain = chain or get_default_chain()
    found = _credential(credentials, credential_name, chain)
    scopes = scopes or [CLOUD_PLATFORM_SCOPE]
    key = fingerprint("gcp-credentials", {"scopes": scopes, "origin": found.origin}, {"key": found.value})
    return CACHE.get_or_build(key, lambda: _load(found, scopes))


@scrubbed
def gcp_secret_manager_client(
    credentials: Any = None,
    *,
    endpoint: str | None = None,
    location: str | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
) -> Any:
    """A ``SecretManagerServiceClient`` with credentials found as :func:`gcp_credentials` does.

    A loopback ``endpoint`` (a local fake or emulator) gets a plaintext gRPC
    channel, which carries no credentials at all. ``location`` (default
    ``[clients.gcp] location``) picks the regional endpoint
    (``secretmanager.L.rep.googleapis.com``), the only one serving that
    region's secrets; an explicit ``endpoint`` wins over it.
    """
    chain = chain or get_default_chain()
    settings = client_settings("gcp", chain, OPTIONS, {"endpoint": endpoint, "location": location})
    if settings["location"] is not None and not _LOCATION.fullmatch(settings["location"]):
        raise ConfigError("[clients.gcp] location must be a region id such as europe-west4 ([a-z0-9-])")
    settings["endpoint"] = settings["endpoint"] or regional_endpoint(settings["location"])
    refused = untrusted_endpoint(chain.settings, "clients.gcp", () if endpoint else ("endpoint",))
    if refused and not _is_loopback(settings["endpoint"] or ""):  # loopback: plaintext, no credentials
        raise ConfigError(refused)
    found = _credential(credentials, credential_name, chain)
    key = fingerprint(
        "gcp-sm-client", {"endpoint": settings["endpoint"], "origin": found.origin}, {"key": found.value}
    )  # the location is in the endpoint

    def build() -> Any:
        from authchain.backends.gcp.source import RECONNECT_BACKOFF_MAX, secret_manager_client

        return secret_manager_client(
            settings["endpoint"],
            lambda: gcp_credentials(credentials, credential_name=credential_name, chain=chain),
            RECONNECT_BACKOFF_MAX,
        )

    return CACHE.get_or_build(key, build)


@scrubbed
def explain_gcp(**arguments: Any) -> ClientExplanation:
    """Where a ``gcp_secret_manager_client`` built with these keyword arguments gets each piece from."""
    given = factory_arguments(gcp_secret_manager_client, arguments)
    chain = given["chain"] or get_default_chain()
    explanation = ClientExplanation("gcp")
    client_settings(
        "gcp", chain, OPTIONS, {"endpoint": given["endpoint"], "location": given["location"]}, explanation
    )
    explanation.origins.pop("credentials", None)
    found = _credential(given["credentials"], given["credential_name"], chain)
    origin = found.origin
    if found.value is None:
        origin = "native default (google.auth.default())"
    explanation.origins["credentials"] = origin
    return explanation


def _credential(credentials: Any, credential_name: str | SecretRef | None, chain: Chain) -> Credential:
    check_one_place("gcp", ("credentials", credentials), ("credential_name", credential_name))
    configured = client_settings("gcp", chain, OPTIONS, {})["credentials"]
    name = credential_name or configured or DEFAULT_CREDENTIAL_NAME
    required = credential_name is not None or configured is not None
    return lookup_credential(credentials, name, chain, kind="gcp", own_types=("gcp-sm",), required=required)


def _load(found: Credential, scopes: list[str]) -> Any:
    try:
        import google.auth
        from google.auth import exceptions as auth_errors
    except ImportError as error:
        raise ConfigError(f"GCP clients need google-auth (pip install 'authchain[gcp]'): {error}") from None
    if found.value is None:
        try:
            credentials, _ = google.auth.default(scopes=scopes)
        except auth_errors.DefaultCredentialsError:
            raise ConfigError(
                "no Google credentials: put a service-account key in GCP_CREDENTIALS (or pass one), "
                "or configure Application Default Credentials"
            ) from None
        from authchain._sdk_credentials import watch_google_credentials

        return watch_google_credentials(credentials, from_adc=True)  # ADC's secrets and tokens
    from authchain.backends.gcp.source import load_service_account

    where = "explicit GCP credentials" if found.origin == "explicit" else f"GCP credentials {found.name}"
    credentials, _ = load_service_account(
        found.value, scopes, f"{where} do not hold a service-account key (JSON)", "use ADC"
    )
    return credentials
