"""``azure_credential`` and ``azure_secret_client``.

A service principal explicit → ``AZURE_CREDENTIALS`` (or ``[clients.azure]
credentials``) through the chain (never from an ``azure-kv`` source: no
recursion) → ``AZURE_TENANT_ID``/``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET``
(or ``AZURE_CLIENT_CERTIFICATE_PATH``) → azure-identity's
``DefaultAzureCredential``. The secret holds JSON ``{tenant_id, client_id,
client_secret}`` or ``{tenant_id, client_id, certificate_path[,
certificate_password]}``, as the ``azure-kv`` source's ``credentials`` does.
"""

from __future__ import annotations

import os
from typing import Any

from authchain._chain import Chain
from authchain._default import get_default_chain
from authchain._scrub import scrubbed
from authchain.backends.azure.source import _VAULT_NAME, _check_https_url, vault_url_for
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

__all__ = ["azure_credential", "azure_secret_client", "explain_azure"]

DEFAULT_CREDENTIAL_NAME = "AZURE_CREDENTIALS"
ENDPOINT_SETTINGS = ("vault_url", "vault_name", "authority", "ca_bundle")

OPTIONS: tuple[Option, ...] = (
    Option(
        "credentials",
        str,
        None,
        "name or reference of {tenant_id, client_id, client_secret} (default AZURE_CREDENTIALS)",
    ),
    Option("vault_url", str, None, "the vault's URL (https://NAME.vault.azure.net)"),
    Option("vault_name", str, None, "the vault's name (https://NAME.vault.azure.net)"),
    Option("authority", str, None, "Microsoft Entra authority host (default: azure-identity's)"),
    Option("ca_bundle", str, None, "CA file for the vault's and authority's TLS", is_path=True),
)


@scrubbed
def azure_credential(
    credentials: Any = None,
    *,
    authority: str | None = None,
    ca_bundle: str | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
) -> Any:
    """An azure-identity credential: explicit service principal → the chain → ``AZURE_*`` →
    ``DefaultAzureCredential``. Its client secret and every access token it gets are masked.

    Args:
        credentials: a service principal as any Secret task returns it (a dict of
            strings or ``SecretValue`` objects, its JSON as str or ``SecretValue``),
            or a reference to look up.
        authority: the Microsoft Entra authority host (default ``[clients.azure]
            authority``, else azure-identity's own).
        ca_bundle: a CA file to check the authority's TLS against.
        credential_name: the secret to look up (default ``[clients.azure] credentials``,
            else ``AZURE_CREDENTIALS``). A configured or passed name that nothing has is
            a ``ConfigError``, never another identity.
    """
    chain = chain or get_default_chain()
    overrides = {"authority": authority, "ca_bundle": ca_bundle}
    settings = client_settings("azure", chain, OPTIONS, overrides)
    written = tuple(name for name, given in overrides.items() if given is None)
    refused = untrusted_endpoint(chain.settings, "clients.azure", written)
    if refused:  # the credential sends its client secret (or assertion) to the authority
        raise ConfigError(refused)
    found = _credential(credentials, credential_name, chain)
    return _cached_credential(found, _authority(settings), _ca_bundle(settings))


@scrubbed
def azure_secret_client(
    credentials: Any = None,
    *,
    vault_url: str | None = None,
    vault_name: str | None = None,
    authority: str | None = None,
    ca_bundle: str | None = None,
    credential_name: str | SecretRef | None = None,
    chain: Chain | None = None,
) -> Any:
    """A ``SecretClient`` for one vault, with a credential found as :func:`azure_credential` finds it.

    The vault is ``vault_url``, else ``https://<vault_name>.vault.azure.net``
    (each default from ``[clients.azure]``). The client's own retry is left as
    the SDK makes it (it honours ``Retry-After``); the ``azure-kv`` source turns
    it off because the chain retries instead.
    """
    # Before the vault is looked for: a caller who passed both hears about that first.
    check_one_place("azure", ("credentials", credentials), ("credential_name", credential_name))
    chain = chain or get_default_chain()
    overrides = {
        "vault_url": vault_url,
        "vault_name": vault_name,
        "authority": authority,
        "ca_bundle": ca_bundle,
    }
    settings = client_settings("azure", chain, OPTIONS, overrides)
    url = _vault_url(settings)
    written = tuple(name for name in ENDPOINT_SETTINGS if overrides[name] is None)
    refused = untrusted_endpoint(chain.settings, "clients.azure", written)
    if refused:
        raise ConfigError(refused)
    found = _credential(credentials, credential_name, chain)
    authority_host, bundle = _authority(settings), _ca_bundle(settings)
    key = fingerprint(
        "azure-kv-client",
        {"vault_url": url, "authority": authority_host, "ca_bundle": bundle, "origin": found.origin},
        {"key": found.value},
    )

    def build() -> Any:
        from authchain.backends.azure.source import secret_client

        credential = _cached_credential(found, authority_host, bundle)
        return secret_client(url, credential, ca_bundle=bundle, timeout=30.0)

    return CACHE.get_or_build(key, build)


@scrubbed
def explain_azure(**arguments: Any) -> ClientExplanation:
    """Where an ``azure_secret_client`` built with these keyword arguments gets each piece from."""
    given = factory_arguments(azure_secret_client, arguments)
    chain = given["chain"] or get_default_chain()
    explanation = ClientExplanation("azure")
    overrides = {name: given[name] for name in ENDPOINT_SETTINGS}
    client_settings("azure", chain, OPTIONS, overrides, explanation)
    explanation.origins.pop("credentials", None)
    found = _credential(given["credentials"], given["credential_name"], chain)
    origin = found.origin
    if found.value is None:
        which = "AZURE_* variables" if _environment_has_a_principal() else "DefaultAzureCredential"
        origin = f"native default ({which})"
    explanation.origins["credentials"] = origin
    return explanation


def _credential(credentials: Any, credential_name: str | SecretRef | None, chain: Chain) -> Credential:
    check_one_place("azure", ("credentials", credentials), ("credential_name", credential_name))
    configured = client_settings("azure", chain, OPTIONS, {})["credentials"]
    name = credential_name or configured or DEFAULT_CREDENTIAL_NAME
    required = credential_name is not None or configured is not None
    return lookup_credential(
        credentials, name, chain, kind="azure", own_types=("azure-kv",), required=required
    )


def _cached_credential(found: Credential, authority: str | None, ca_bundle: str | None) -> Any:
    key = fingerprint(
        "azure-credential",
        {"authority": authority, "ca_bundle": ca_bundle, "origin": found.origin},
        {"key": found.value},
    )
    return CACHE.get_or_build(key, lambda: _load(found, authority, ca_bundle))


def _load(found: Credential, authority: str | None, ca_bundle: str | None) -> Any:
    from authchain.backends.azure.source import (
        azure_credential_from,
        default_credential,
        environment_credential,
    )

    if found.value is None:
        from_environment = environment_credential(os.environ, authority=authority, ca_bundle=ca_bundle)
        if from_environment is not None:
            return from_environment
        return default_credential(authority=authority, ca_bundle=ca_bundle)
    where = "explicit Azure credentials" if found.origin == "explicit" else f"Azure credentials {found.name}"
    return azure_credential_from(found.value, where, authority=authority, ca_bundle=ca_bundle)


def _vault_url(settings: dict[str, Any]) -> str:
    if settings["vault_url"] is not None:
        return _check_https_url(settings["vault_url"], "[clients.azure] vault_url")
    name = settings["vault_name"]
    if name is None:
        raise ConfigError(
            "azure_secret_client needs a vault: pass vault_url or vault_name, or set them in [clients.azure]"
        )
    if not _VAULT_NAME.fullmatch(name):
        raise ConfigError("[clients.azure] vault_name must be a vault name (3-24 of [0-9a-zA-Z-])")
    return vault_url_for(name)


def _authority(settings: dict[str, Any]) -> str | None:
    authority = settings["authority"]
    return None if authority is None else _check_https_url(authority, "[clients.azure] authority")


def _ca_bundle(settings: dict[str, Any]) -> str | None:
    bundle = settings["ca_bundle"]
    return None if bundle is None else str(bundle)


def _environment_has_a_principal() -> bool:
    from authchain.backends.azure.source import environment_names_a_principal

    return environment_names_a_principal(os.environ)
