"""Pass a secret from Vault into another task's run kwargs, inside a Prefect flow.

    VAULT_ADDR=... VAULT_TOKEN=... python examples/tasks/vault_secret_flow.py

VaultSecret finds its server in VAULT_ADDR and its token through the chain
(VAULT_TOKEN here). The secret travels between tasks in memory only: the
Secret task's result is never persisted and its run is named after the path.
"""

from __future__ import annotations

import sys

from prefect import flow, task

from authchain import SecretValue
from secret_tasks import VaultSecret


@task
def call_api(token: SecretValue[str]) -> int:
    """Stands in for a real API call; uses the token without ever printing it."""
    return len(token.get_secret_value())


@flow
def nightly_report(path: str = "reporting/api") -> int:
    token = VaultSecret(path=path, key="token")()
    return call_api(token=token)


if __name__ == "__main__":
    used = nightly_report(*sys.argv[1:2])
    print(f"the API task received a token of {used} characters")
