"""Task functions the distributed tests send to Dask workers.

They live in their own small module so a worker unpickles them by reference
(importing authchain, not pytest and the server fixtures).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from typing import Any

from authchain import SecretRef
from authchain.clients import LazyClient

CARELESS = "careless log of the secret:"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def read_and_store(ref: SecretRef, s3: LazyClient, bucket: str, index: int) -> tuple[str, int, int]:
    """Resolve ``ref`` here, on the worker, and write a digest of it to S3 with a lazily built client.

    Logs the value by mistake (the worker plugin's masking must catch it).
    Returns the digest, this worker's pid and the id of the client it used.
    """
    value = ref.resolve().get_secret_value()
    logging.getLogger("distributed.worker").warning("%s %s", CARELESS, value)
    result = digest(value)
    s3.put_object(Bucket=bucket, Key=f"out/{index}", Body=result.encode())
    return result, os.getpid(), id(s3.get())


_meeting: dict[int, threading.Barrier] = {}
_meeting_lock = threading.Lock()


def _meet(parties: int) -> None:
    """Wait until ``parties`` tasks of this worker process are here, so their misses really overlap.

    Without it, whether Dask starts the next task before the first one's slow
    call returns is up to the scheduler and the machine's load.
    """
    with _meeting_lock:
        barrier = _meeting.setdefault(parties, threading.Barrier(parties))
    barrier.wait(timeout=30)


def timed_resolve(ref: SecretRef, index: int, together: int = 1) -> tuple[int, float, float, str]:
    """Resolve ``ref``; return (pid, start, end, digest): when this worker thread asked and got it.

    With ``together`` > 1 the task first waits for that many tasks on its worker.
    """
    if together > 1:
        _meet(together)
    start = time.monotonic()
    value = ref.resolve().get_secret_value()
    return os.getpid(), start, time.monotonic(), digest(value)


def worker_state() -> dict[str, Any]:
    """What the authchain plugin left on this worker (run with ``client.run``)."""
    from authchain import _default, masking

    probe = "probe-value-4-masking"  # made up here, registered only on this worker
    masking.register(probe)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a handler of our own: no filter of authchain's on it
    probe_logger = logging.getLogger("tests.distributed.probe")
    probe_logger.addHandler(handler)
    probe_logger.propagate = False
    try:
        probe_logger.warning("probe: %s", probe)
    finally:
        probe_logger.removeHandler(handler)
    chain = _default._chain
    return {
        "pid": os.getpid(),
        "chain": repr(chain) if chain is not None else None,
        "mark": os.environ.get("AUTHCHAIN_DASK_TEST_MARK"),
        "masked": stream.getvalue() == "probe: ***\n",
        "prefect_api_url": os.environ.get("PREFECT_API_URL"),
    }
