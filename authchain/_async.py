"""The chain's walk for async code: ``Chain.aresolve`` and ``Chain.aresolve_many``.

Same walk, cache, single flight, retries and deadline as the sync verbs; what
differs is where a backend call runs. The event loop only plans, reads the
cache and waits; every ``source.get`` (an SDK call that blocks: boto3, hvac,
keyring, the Prefect client, google-cloud's gRPC stub) runs on the chain's
bounded ``async_workers`` pool, as the job of a single-flight call
(``authchain._cache``). A coroutine waits for that call through a callback,
holding no thread, and a thread calling ``resolve`` for the same key joins
the same call (and runs its job itself if the pool has not started it yet,
so pool threads waiting for jobs queued behind them cannot deadlock).

Why a pool and not the SDKs' async clients: of the SDKs used here only
google-cloud-secret-manager has a solid async client, and its grpc.aio channel
belongs to one event loop, while a chain's flight must also serve threads and
other loops, and outlive a cancelled caller. One way of fetching keeps one
set of semantics (retries, masking of SDK log records, credential lookups).

Cancelling an awaiting task stops its wait only: the fetch goes on in its
thread for the other waiters and stores a whole answer or nothing. The
deadline bounds the wait too: where a sync caller stays in an SDK call that
started before its deadline, a coroutine stops waiting when it passes.

Sources that answer without a request (``is_local()``: the environment, a
``.env`` file read once per change) are asked on the loop, as they are asked
without single flight in sync code.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from authchain._cache import FlightTimeout
from authchain._retry import current_deadline, time_left
from authchain._trail import EXPLICIT_NOT_PASSED, failed, pick_field, recorded
from authchain.errors import BackendError, SecretNotFound, SourceUnavailableError
from authchain.sources.base import Found, Key, NotFound, Source
from authchain.values import Attempt, SecretValue

if TYPE_CHECKING:
    from concurrent.futures import Future

    from authchain._chain import Chain, NameOrRef, _Target

__all__ = ["afirst", "off_loop"]

T = TypeVar("T")
Result = Found | NotFound


async def afirst(
    chain: Chain, name: NameOrRef, *, remember: bool = False
) -> tuple[SecretValue[Any], Attempt]:
    """``Chain._first`` for a coroutine: the same walk, each fetch off the loop."""
    label, targets, _ = chain._plan(name)
    since = chain._cache.generation()  # an invalidate() during the walk: nothing is remembered
    attempts = [EXPLICIT_NOT_PASSED]
    for number, target in enumerate(targets):
        attempt, value = await _aask(chain, target)
        attempts.append(attempt)
        if value is not None:
            chain._won(name, label, targets[: number + 1], attempts, value, since, remember=remember)
            return value, attempt
    raise SecretNotFound(name if isinstance(name, str) else str(name), attempts)


async def _aask(chain: Chain, target: _Target) -> tuple[Attempt, SecretValue[Any] | None]:
    """``Chain._ask`` (errors raised) for a coroutine."""
    source = target.source
    failure: BackendError | None = None
    try:
        result, cached = await _afetch(chain, source, target.key)
        if target.field is not None:
            result = pick_field(result, target.field, source.describe_key(target.key))
    except SourceUnavailableError as error:
        return Attempt(source.name, source.type, "unavailable", f"unavailable: {error}"), None
    except BackendError as error:
        failure = error
    if failure is not None:
        return failed(source, failure, True), None
    return recorded(source, result, cached)


async def _afetch(chain: Chain, source: Source, key: Key) -> tuple[Result, bool]:
    """``Chain._fetch`` for a coroutine: cache → the shared flight, whose job runs on the pool."""
    entry = chain._cache.hit(source, key)
    if entry is not None:
        return entry.result, True
    try:
        if source.is_local():
            return chain._load_local(source, key), False
        pool = chain._async_executor()
        # The job runs in a copy of this context: the deadline and the
        # credential-lookup exclusions travel with it, as in resolve_many.
        context = contextvars.copy_context()

        def submit(job: Callable[[], None]) -> Future[None]:
            return pool.submit(job)

        loader = chain._loader(source, key)

        def load() -> Result:  # in the pool, or in a sync caller that took the job over
            return context.run(loader)

        result = await chain._cache.afetch_once(
            source, key, load, submit=submit, dropped=chain._closed_error, wait=time_left()
        )
        return result, False
    except FlightTimeout:
        # Unlike a thread stuck in an SDK call, a coroutine can stop waiting:
        # it gives up when the deadline passes, leader or not, and the fetch
        # goes on in its thread for anyone else (and the cache).
        deadline = current_deadline()
        seconds = f"{deadline.seconds:g}s " if deadline is not None else ""
        error = BackendError(
            f"{source.describe_key(key)} was still being fetched when the {seconds}deadline "
            "of this lookup passed",
            retryable=True,
        )
    except BackendError as failure:
        error = failure
    return chain._stale_or_raise(source, key, error), True


async def off_loop(chain: Chain, function: Callable[[], T]) -> T:
    """``function()`` on the chain's async pool, awaited without holding the loop.

    Cancelling the awaiting task leaves the job running (it fills the cache
    with whole answers only); a job the pool drops because the chain was
    closed is a ``ChainClosedError``, not a cancellation of the caller.
    """
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = loop.create_future()
    pool = chain._async_executor()

    def finished(future: Future[T]) -> None:  # in the pool's thread
        def deliver() -> None:
            if outcome.done():
                return
            if future.cancelled():
                outcome.set_exception(chain._closed_error())
            elif future.exception() is not None:
                outcome.set_exception(future.exception())  # type: ignore[arg-type]
            else:
                outcome.set_result(future.result())

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(deliver)

    try:
        job = pool.submit(contextvars.copy_context().run, function)
    except RuntimeError:  # "cannot schedule new futures after shutdown"
        if chain.closed:
            raise chain._closed_error() from None
        raise
    job.add_done_callback(finished)
    return await outcome
