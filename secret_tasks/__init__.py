"""secret_tasks: one Secret task per backend, on a small task base.

Configure at ``__init__``, override at ``run``; call outside a flow and it
just runs, call inside a Prefect 3 flow and it runs as a Prefect task whose
result is never persisted. See docs/tasks.md.
"""

from secret_tasks.base import Task, defaults_from_attrs
from secret_tasks.secrets import (
    AWSParameterStoreSecret,
    AWSSecretsManagerSecret,
    AzureKeyVaultSecret,
    ChainSecret,
    DotenvSecret,
    EnvVarSecret,
    FilesSecret,
    GCPSecretManagerSecret,
    KeyringSecret,
    PrefectSecret,
    SecretTask,
    VaultSecret,
)

__all__ = [
    "AWSParameterStoreSecret",
    "AWSSecretsManagerSecret",
    "AzureKeyVaultSecret",
    "ChainSecret",
    "DotenvSecret",
    "EnvVarSecret",
    "FilesSecret",
    "GCPSecretManagerSecret",
    "KeyringSecret",
    "PrefectSecret",
    "SecretTask",
    "Task",
    "VaultSecret",
    "defaults_from_attrs",
]
