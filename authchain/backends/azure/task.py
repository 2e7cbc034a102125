"""``AzureKeyVaultSecret``, declared (``secret_tasks`` builds the class: see
:mod:`authchain.backends._task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authchain.backends._task import KEY, SecretTaskDeclaration, TaskParameter, reference
from authchain.errors import ConfigError
from authchain.refs import SecretRef

if TYPE_CHECKING:
    from authchain._chain import Chain

__all__ = ["TASKS"]


def _reference(values: Mapping[str, Any], chain: Chain) -> SecretRef:
    vault = values["vault"] or _source_vault(chain)
    version = values["version"]
    location = f"{vault}/{values['secret']}" + (f"/{version}" if version else "")
    return reference("azure-kv", location, values["key"])


def _source_vault(chain: Chain) -> str:
    """The ``vault_name`` of the ``azure-kv`` source this run asks (the one ``source_options``
    built, else the first configured), so a task need not name the vault twice."""
    for source in chain.sources:
        if source.type == "azure-kv":
            name = getattr(source, "vault_name", None)
            if isinstance(name, str) and name:
                return name
    raise ConfigError(
        "AzureKeyVaultSecret: pass vault= (no azure-kv source here names its vault: set vault_name "
        "or a vault_url of the form https://NAME.vault.azure.net)"
    )


TASKS = (
    SecretTaskDeclaration(
        class_name="AzureKeyVaultSecret",
        scheme="azure-kv",
        doc=(
            "An Azure Key Vault secret: ``azure-kv://VAULT/SECRET[/VERSION]``.\n\n"
            "``secret`` is the secret's name exactly as Key Vault holds it (no\n"
            "``prefix`` or ``name_transform``). The vault is ``vault``, else the\n"
            "``vault_name`` of the source that reads it (``source_options``, else the\n"
            "first configured ``azure-kv`` source)."
        ),
        parameters=(
            TaskParameter("secret", str, "the secret's name (``db-password``; ``[0-9a-zA-Z-]``)."),
            TaskParameter("vault", str, "the vault's name (``my-vault``). Default: the source's vault."),
            TaskParameter("version", str, "a version id. Default: the latest version."),
            KEY,
        ),
        reference=_reference,
        shared_docs=(
            (
                "source_options",
                "settings of a dedicated ``azure-kv`` source, used instead of the configured one "
                '(``{"vault_name": "my-vault"}``); its credentials are still looked up through '
                "``chain`` or the configured chain.",
            ),
        ),
    ),
)
