"""A Prefect 1 flow's secret handling, running under Prefect 3: the imports changed, nothing else
in the task code.

    VAULT_ADDR=... PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS='{"VAULT_TOKEN": "..."}' \\
    PREFECT__CONTEXT__SECRETS__AWS_CREDENTIALS='{"ACCESS_KEY": "...", "SECRET_ACCESS_KEY": "..."}' \\
    ETL_BATCH_SIZE=250 python examples/prefect1_migration/etl_flow.py

The Secret tasks are configured as Prefect 1 configured them (``name=``,
``max_retries=``, ``retry_delay=timedelta(...)``, ``tags=``), take their
credentials from Prefect 1's local secrets (``PREFECT__CONTEXT__SECRETS__*``
or ``[context.secrets]`` in ``~/.prefect/config.toml``), and hand plain
``dict``/``str``/``int`` values to the user's tasks, which use them as they
always did (``db["password"]``, ``get_boto_client(..., credentials=...)``,
``except ValueError``). The one other change is the flow itself, because
Prefect 3 has no ``with Flow(...)`` block: it is a decorated function that
calls each task (the Prefect 1 block is kept below in a comment).
"""

from __future__ import annotations

from datetime import timedelta

# Prefect 1:
#   from prefect import Flow, task
#   from prefect.tasks.aws.secrets_manager import AWSSecretsManager
#   from prefect.tasks.secrets import EnvVarSecret, PrefectSecret
#   from prefect.tasks.secrets.vault_secret import VaultSecret
#   from prefect.utilities.aws import get_boto_client
from prefect import flow, task

from secret_tasks.prefect1 import AWSSecretsManager, EnvVarSecret, PrefectSecret, VaultSecret, get_boto_client

# -- unchanged Prefect 1 task code ------------------------------------------------------------

db_credentials = AWSSecretsManager(
    "etl/db", name="db-credentials", max_retries=2, retry_delay=timedelta(seconds=1), tags=["secrets"]
)
api_settings = VaultSecret("secret/t/etl-api")
batch_size = EnvVarSecret("ETL_BATCH_SIZE", cast=int)
aws_credentials = PrefectSecret("AWS_CREDENTIALS")


@task
def connect(db: dict, api: dict, batch: int) -> str:
    """Stands in for opening a connection: uses the values, never prints them."""
    login = {"user": db["username"], "password": db["password"], "api_token": api["token"]}
    return f"connected as {login['user']} with a token of {len(login['api_token'])} characters, batch {batch}"


@task
def count_secrets(credentials: dict) -> int:
    client = get_boto_client("secretsmanager", credentials=credentials, region_name="us-east-1")
    return len(client.list_secrets()["SecretList"])


@task
def optional_setting() -> str:
    try:
        return PrefectSecret("ETL_OPTIONAL").run()
    except ValueError:  # Prefect 1 raised ValueError for a missing local secret; so do the shims
        return "no ETL_OPTIONAL secret, using the default"


# -- the flow: Prefect 1's `with Flow("etl") as flow:` block, as a Prefect 3 flow ---------------
#
#   with Flow("etl") as flow:
#       summary = connect(db_credentials, api_settings, batch_size)
#       count = count_secrets(aws_credentials)
#       optional = optional_setting()
#   flow.run()


@flow(name="etl")
def etl() -> tuple[str, int, str]:
    summary = connect(db_credentials(), api_settings(), batch_size())
    count = count_secrets(aws_credentials())
    optional = optional_setting()
    return summary, count, optional


if __name__ == "__main__":
    summary, count, optional = etl()
    print(summary)
    print(f"{count} secrets visible with the AWS_CREDENTIALS keys")
    print(optional)
