"""Read secrets on Dask workers from references, inside a Prefect flow.

    VAULT_ADDR=... VAULT_TOKEN=... PREFECT_API_URL=... \\
        python examples/dask/reports_on_dask.py BUCKET vault://secret/reporting/db#password ...

The flow hands each task a ``SecretRef`` and a lazy S3 client, never a value
or a client: every Dask worker resolves the reference itself, through its own
chain and cache (one Vault call per worker and secret, however many tasks
need it), and builds its own S3 client on first use. The ``authchain.dask``
preload sets that chain up on each worker and masks secret values in its logs.

The workers of this temporary cluster inherit this process's environment
(``VAULT_ADDR``, ``VAULT_TOKEN``, ``AWS_*``, ``PREFECT_API_URL``); on a real
cluster they get it from their own deployment. Point them at a real Prefect
API: without one, every worker process starts a temporary Prefect server.
"""

from __future__ import annotations

import sys

from prefect import flow, task, unmapped
from prefect_dask import DaskTaskRunner

from authchain import SecretRef
from authchain.clients import LazyClient, aws_client, lazy

RUNNER = DaskTaskRunner(
    cluster_kwargs={
        "n_workers": 2,
        "threads_per_worker": 2,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "preload": ["authchain.dask"],  # each worker: its own authchain chain, cache and log masking
    }
)


@task
def write_report(ref: SecretRef, s3: LazyClient, bucket: str, day: int) -> str:
    """Runs on a worker: resolve the password there, use it, write the report with the lazy client."""
    password = ref.resolve()  # a SecretValue; str() and logs show **********
    body = f"report for day {day}: signed in with a password of {len(password.get_secret_value())} chars"
    key = f"reports/day-{day}.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return key


@flow(task_runner=RUNNER)
def nightly_reports(bucket: str, refs: list[SecretRef]) -> list[str]:
    s3 = lazy(aws_client, "s3")  # travels as the factory call; built on each worker
    futures = write_report.map(refs, unmapped(s3), unmapped(bucket), list(range(len(refs))))
    return [future.result() for future in futures]


if __name__ == "__main__":  # the worker processes import this file again: keep the run below
    bucket, *references = sys.argv[1:]
    keys = nightly_reports(bucket, [SecretRef.parse(text) for text in references])
    print(f"wrote {len(keys)} reports to s3://{bucket}/reports/")
