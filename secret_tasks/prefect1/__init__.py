"""Prefect 1's task-library names over authchain: migrate by changing the import line.

    # before: from prefect.tasks.secrets import PrefectSecret, EnvVarSecret
    #         from prefect.tasks.aws.secrets_manager import AWSSecretsManager
    #         from prefect.utilities.aws import get_boto_client
    from secret_tasks.prefect1 import PrefectSecret, EnvVarSecret, AWSSecretsManager, get_boto_client

Named ``prefect1`` because that is what it is for: the names and signatures
of Prefect 1's ``prefect.tasks.secrets``, ``prefect.tasks.aws``,
``prefect.tasks.gcp``, ``prefect.utilities.aws`` and
``prefect.utilities.tasks``, gathered in one import path beside the native
tasks, so a reader sees at once which code still speaks Prefect 1 (and
``grep prefect1`` finds what is left to move to the native tasks).

Each shim maps its arguments and delegates to a native Secret task or
client factory, so the chain, references, caching and masking apply; it
returns what Prefect 1 returned (a plain ``str``, a ``dict`` from JSON,
``cast`` applied), runs as a Prefect 3 task whose result is never
persisted, and every value it returns was registered with the masker. See
docs/migrating-from-prefect-1.md for the differences and the way on
to ``SecretValue``.
"""

from secret_tasks.prefect1._aws import AWSParametersManager, AWSSecretsManager, get_boto_client
from secret_tasks.prefect1._gcp import GCPSecret
from secret_tasks.prefect1._secrets import EnvVarSecret, PrefectSecret, VaultSecret
from secret_tasks.prefect1._task import SecretBase, defaults_from_attrs
from secret_tasks.prefect1._values import Prefect1SecretKeyError, Prefect1SecretNotFound

__all__ = [
    "AWSParametersManager",
    "AWSSecretsManager",
    "EnvVarSecret",
    "GCPSecret",
    "Prefect1SecretKeyError",
    "Prefect1SecretNotFound",
    "PrefectSecret",
    "SecretBase",
    "VaultSecret",
    "defaults_from_attrs",
    "get_boto_client",
]
