"""One bounded wait for what the suite's servers and SDKs do in the background.

Prefect records task runs, flow-run states and log lines asynchronously (events and
batched log shipping reach the API after the flow has returned); Dask workers report
later still. A test reads such a thing only through :func:`wait_for`: it polls until the
predicate gives a truthy value or the bound passes, and then fails saying what it waited
for and what it saw last. The bound is generous: on a loaded 2-core machine the API's
background services can lag by seconds; a passing test pays only for what it needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0


def wait_for(
    probe: Callable[[], T],
    *,
    until: Callable[[T], object] = bool,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.1,
    what: str,
) -> T:
    """Call ``probe`` until ``until(result)`` is truthy, then return that result.

    ``probe`` is what is read (rows of a table, a list of files); ``until`` says when it is
    complete (by default: non-empty). After ``timeout`` seconds this raises
    ``AssertionError`` naming ``what`` and the last result (which must not hold a secret:
    probes return names, states and masked messages).
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        result = probe()
        if until(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g}s for {what}; last seen: {result!r:.2000}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
