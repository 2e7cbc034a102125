"""The Prefect flow of the distributed tests: 20 mapped tasks reading secrets by reference."""

from __future__ import annotations

from prefect import flow, get_run_logger, task, unmapped

from authchain import SecretRef
from authchain.clients import LazyClient, aws_client, lazy
from tests.distributed.jobs import CARELESS, read_and_store


@task
def read_and_store_task(ref: SecretRef, s3: LazyClient, bucket: str, index: int) -> tuple[str, int, int]:
    # A careless run-log line: it goes to the Prefect API, so the DB search sees it masked or not.
    get_run_logger().warning("%s %s", CARELESS, ref.resolve().get_secret_value())
    return read_and_store(ref, s3, bucket, index)


@flow
def fan_out(refs: list[SecretRef], bucket: str) -> list[tuple[str, int, int]]:
    """Map one task per reference; each task gets the reference and a lazy S3 client, never a value."""
    s3 = lazy(aws_client, "s3")  # built on each worker from its own environment
    futures = read_and_store_task.map(refs, unmapped(s3), unmapped(bucket), list(range(len(refs))))
    return [future.result() for future in futures]
