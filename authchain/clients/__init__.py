"""Client factories: ready AWS, Vault, GCP, Azure and keyring clients whose credentials
come through the chain.

Each factory takes explicit credentials first, then resolves its credential
name through the chain (``AWS_CREDENTIALS``, ``VAULT_TOKEN`` or
``VAULT_ROLE_ID``/``VAULT_SECRET_ID``, ``GCP_CREDENTIALS``, ``AZURE_CREDENTIALS``), never asking a
source of the service it is building a client for, then lets the SDK use its
own default. Settings come from ``[clients.KIND]`` in ``authchain.toml``.
Clients are cached per process by a SHA-256 fingerprint of their settings
and credentials; :func:`lazy` defers a factory call to the process that uses
the client, and pickles without any client or credential in it; from async
code, :func:`abuild` makes the call in a worker thread.

Importing this module imports no SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from authchain._chain import Chain
from authchain.clients._base import ClientExplanation, LazyClient, abuild, clear, lazy
from authchain.errors import ConfigError

if TYPE_CHECKING:
    from authchain.backends.aws.client import aws_client, aws_session
    from authchain.backends.azure.client import azure_credential, azure_secret_client
    from authchain.backends.gcp.client import gcp_credentials, gcp_secret_manager_client
    from authchain.backends.keyring.client import keyring_backend
    from authchain.backends.vault.client import vault_client

# Loaded on first use (PEP 562), not here: a backend's client module imports
# authchain.clients._base, which runs this file first, so importing the
# backends here made ``import authchain.backends.aws.client`` on its own fail
# with a circular import.
_FACTORIES = {
    "aws_client": "authchain.backends.aws.client",
    "aws_session": "authchain.backends.aws.client",
    "azure_credential": "authchain.backends.azure.client",
    "azure_secret_client": "authchain.backends.azure.client",
    "gcp_credentials": "authchain.backends.gcp.client",
    "gcp_secret_manager_client": "authchain.backends.gcp.client",
    "keyring_backend": "authchain.backends.keyring.client",
    "vault_client": "authchain.backends.vault.client",
}


def __getattr__(name: str) -> Any:
    module = _FACTORIES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ClientExplanation",
    "LazyClient",
    "abuild",
    "aws_client",
    "aws_session",
    "azure_credential",
    "azure_secret_client",
    "clear",
    "explain_client",
    "gcp_credentials",
    "gcp_secret_manager_client",
    "keyring_backend",
    "lazy",
    "vault_client",
]


def explain_client(kind: str, *, chain: Chain | None = None, **arguments: Any) -> ClientExplanation:
    """Where a client of ``kind`` (``aws``, ``vault``, ``gcp``, ``azure``, ``keyring``) built with
    ``arguments`` gets each setting and credential from: explicit, ``[clients.KIND]``,
    which source of the chain, or the SDK's native default. Never a value.

    Example::

        print(explain_client("aws", region_name="eu-west-1"))
        # aws client:
        #   region_name  explicit
        #   credentials  chain: env (env) (AWS_CREDENTIALS)
    """
    from authchain.backends.aws.client import explain_aws
    from authchain.backends.azure.client import explain_azure
    from authchain.backends.gcp.client import explain_gcp
    from authchain.backends.keyring.client import explain_keyring
    from authchain.backends.vault.client import explain_vault

    explainers = {
        "aws": explain_aws,
        "vault": explain_vault,
        "gcp": explain_gcp,
        "azure": explain_azure,
        "keyring": explain_keyring,
    }
    if kind not in explainers:
        raise ConfigError(f"unknown client kind {kind!r}; known: {', '.join(explainers)}")
    explain: Any = explainers[kind]
    return explain(chain=chain, **arguments)  # type: ignore[no-any-return]
