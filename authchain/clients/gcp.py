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
from authchain.clients._base import (
    CACHE,
    ClientExplanation,
    Credential,
    client_settings,
    fingerprint,
    lookup_credential,
)
from authchain.errors import ConfigError
from authchain.refs import SecretRef
from authchain.sources.base import Option

__all__ = ["explain_gcp", "gcp_credentials", "gcp_secret_manager_client"]

DEFAULT_CREDENTIAL_NAME = "GCP_CREDENTIALS"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"

OPTIONS: tuple[Option, ...] = (
    Option("credentials", str, None, "name or reference of a service-account key (default GCP_CREDENTIALS)"),
    Option("project", str, None, "GCP project (default: the credentials' project)"),
    Option("endpoint", str, None, "host[:port] of the Secret Manager API; loopback hosts use plaintext gRPC"),
)


def gcp_credentials(
    credentials: Any = None,
    *,
    scopes: list[str] | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
) -> Any:
    """Google credentials: explicit service-account info → the chain → ``google.auth.default()``.

    Args:
        credentials: a service-account key (dict, its JSON, or a SecretValue),
            or a reference to look up.
        scopes: OAuth scopes (default: cloud-platform).
        credential_name: the secret to look up (default ``[clients.gcp] credentials``,
            else ``GCP_CREDENTIALS``).
    """
    chain = chain or get_default_chain()
    found = _credential(credentials, credential_name, chain)
    scopes = scopes or [CLOUD_PLATFORM]
    key = fingerprint("gcp-credentials", {"scopes": scopes, "origin": found.origin}, {"key": found.value})
    return CACHE.get_or_build(key, lambda: _load(found, scopes))


def gcp_secret_manager_client(
    credentials: Any = None,
    *,
    endpoint: str | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
) -> Any:
    """A ``SecretManagerServiceClient`` with credentials found as :func:`gcp_credentials` does.

    A loopback ``endpoint`` (a local fake or emulator) gets a plaintext gRPC
    channel, which carries no credentials at all.
    """
    chain = chain or get_default_chain()
    settings = client_settings("gcp", chain, OPTIONS, {"endpoint": endpoint})
    found = _credential(credentials, credential_name, chain)
    key = fingerprint(
        "gcp-sm-client", {"endpoint": settings["endpoint"], "origin": found.origin}, {"key": found.value}
    )

    def build() -> Any:
        from authchain.sources.gcp import _import_sdk, _is_loopback

        sdk = _import_sdk()
        target = settings["endpoint"]
        if target and _is_loopback(target):
            import grpc

            transport = sdk.transports.SecretManagerServiceGrpcTransport(
                channel=grpc.insecure_channel(target)
            )
            return sdk.SecretManagerServiceClient(transport=transport)
        creds = gcp_credentials(credentials, credential_name=credential_name, chain=chain)
        options = {"api_endpoint": target} if target else None
        return sdk.SecretManagerServiceClient(credentials=creds, client_options=options)

    return CACHE.get_or_build(key, build)


def explain_gcp(
    credentials: Any = None,
    *,
    endpoint: str | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
) -> ClientExplanation:
    """Where a GCP client built with these arguments gets each piece from."""
    chain = chain or get_default_chain()
    explanation = ClientExplanation("gcp")
    client_settings("gcp", chain, OPTIONS, {"endpoint": endpoint}, explanation)
    explanation.origins.pop("credentials", None)
    found = _credential(credentials, credential_name, chain)
    origin = found.origin
    if found.value is None:
        origin = "native default (google.auth.default())"
    explanation.origins["credentials"] = origin
    return explanation


def _credential(credentials: Any, credential_name: str | SecretRef | None, chain: Chain) -> Credential:
    configured = client_settings("gcp", chain, OPTIONS, {})["credentials"]
    name = credential_name or configured or DEFAULT_CREDENTIAL_NAME
    required = credential_name is not None or configured is not None
    return lookup_credential(credentials, name, chain, kind="gcp", required=required)


def _load(found: Credential, scopes: list[str]) -> Any:
    try:
        import google.auth
        from google.auth import exceptions as auth_errors
        from google.oauth2 import service_account
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
        return credentials
    where = "explicit GCP credentials" if found.origin == "explicit" else f"GCP credentials {found.name}"
    try:
        info = found.value.json()
    except ValueError:
        raise ConfigError(f"{where} are not JSON (a service-account key)") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(f"{where} are not a service-account key; use ADC for other credential types")
    try:
        load: Any = service_account.Credentials.from_service_account_info
        return load(info, scopes=scopes)
    except (ValueError, KeyError) as error:
        reason = f"missing {error}" if isinstance(error, KeyError) else "the key could not be loaded"
        raise ConfigError(f"{where}: {reason}") from None
