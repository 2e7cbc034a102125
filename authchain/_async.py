"""The chain's walk for async code: ``Chain.aresolve`` and ``Chain.aresolve_many``.

Same walk, cache, single flight, retries and deadline as the sync verbs; what
differs is where a backend call runs:

- A source with a native async path (``has_native_async()``: Vault) is asked
  on the event loop itself: ``aget`` makes its requests there, as a task that
  settles the single-flight call (``SingleFlight.start_task``). Threads join
  it as any call; if the loop stops under it, a thread finishes the fetch.
- Every other source's ``get`` (an SDK call that blocks: boto3, keyring, the
  Prefect client, google-cloud's gRPC stub) runs on the chain's bounded
  ``async_workers`` pool, as the job of a single-flight call
  (``authchain._cache``). A coroutine waits for that call through a callback,
  holding no thread, and a thread calling ``resolve`` for the same key joins
  the same call (and runs its job itself if the pool has not started it yet,
  so pool threads waiting for jobs queued behind them cannot deadlock).

Why not the pool for Vault too: a thread running hvac/requests holds the GIL
the loop needs for 1.2-1.6 ms of every read, so eight of them keep the loop
waiting for milliseconds at a time (benchmarks/RESULTS.md, "Heartbeat"). Why
not the SDKs' async clients: of the SDKs used here only
google-cloud-secret-manager has a solid one, and its grpc.aio channel belongs
to one event loop, while a chain's flight must also serve threads and other
loops, and outlive a cancelled caller.

A lookup costs the loop a few hundred microseconds all told, so a burst of
them takes turns: a few start, or finish a fetch, per pass of the loop
(:func:`take_turn`), and other coroutines keep running in between.

Cancelling an awaiting task stops its wait only: the fetch goes on (in its
task or thread) for the other waiters and stores a whole answer or nothing.
The deadline bounds the wait too: where a sync caller stays in an SDK call that
started before its deadline, a coroutine stops waiting when it passes.

Sources that answer without a request (``is_local()``: the environment, a
``.env`` file read once per change) are asked on the loop, as they are asked
without single flight in sync code.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from authchain._cache import FlightTimeout
from authchain._retry import acall_with_retry, current_deadline, time_left
from authchain._trail import EXPLICIT_NOT_PASSED, aguarded, failed, pick_field, recorded, register
from authchain.errors import BackendError, SecretNotFound, SourceUnavailableError
from authchain.sources.base import Found, Key, NotFound, Source
from authchain.values import Attempt, SecretValue

if TYPE_CHECKING:
    from concurrent.futures import Future

    from authchain._chain import Chain, NameOrRef, _Target

__all__ = ["afirst", "awalk_many", "off_loop", "take_turn"]

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


PASS_BUDGET = 2
"""Lookups that start, start a fetch or finish one in one pass of an event loop; the others wait, in
order, for later passes.

A lookup costs the loop 0.3-0.6 ms all told (planning, the flight, the answer's
masker registration, the cache; the request and its parsing for a source with a
native path): ``asyncio.gather`` of a hundred ``aresolve`` calls would otherwise
hold the loop for tens of milliseconds in one pass, and every other coroutine
with it (benchmarks/RESULTS.md, "Heartbeat")."""


class _Turns:
    """One event loop's turnstile (see :func:`take_turn`); used only on the loop's thread."""

    __slots__ = ("loop", "queued", "started", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)
        self.started = 0  # lookups started in this pass
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self.queued = False  # a new pass is due: _new_pass is scheduled

    def new_pass(self) -> None:
        """Let the next ``PASS_BUDGET`` waiters go (they run in the next pass), and come back if
        more wait. Nobody waiting: nothing is scheduled (a loop with nothing to do must sleep);
        the next lookup to start schedules the next reset."""
        self.queued = False
        self.started = 0
        while self.waiting and self.started < PASS_BUDGET:
            turn = self.waiting.popleft()
            if not turn.done():  # a waiter cancelled meanwhile gives its turn on
                turn.set_result(None)
                self.started += 1
        if self.waiting:
            self.next_pass()

    def next_pass(self) -> None:
        if not self.queued:
            self.queued = True
            loop = self.loop()
            if loop is not None:
                loop.call_soon(self.new_pass)  # runs after what is ready now: in the next pass


_turns = threading.local()


async def take_turn() -> None:
    """Start now, or wait (first come, first served) for a later pass of the loop once
    ``PASS_BUDGET`` lookups started in this one."""
    loop = asyncio.get_running_loop()
    turns: _Turns | None = getattr(_turns, "turns", None)
    if turns is None or turns.loop() is not loop:
        turns = _turns.turns = _Turns(loop)
    if turns.started < PASS_BUDGET and not turns.waiting:
        turns.started += 1
        turns.next_pass()
        return
    turn: asyncio.Future[None] = loop.create_future()
    turns.waiting.append(turn)
    turns.next_pass()
    try:
        await turn
    except asyncio.CancelledError:
        with contextlib.suppress(ValueError):
            turns.waiting.remove(turn)
        raise


async def awalk_many(
    chain: Chain, plans: Mapping[str, Sequence[_Target]]
) -> tuple[dict[str, SecretValue[Any]], dict[str, list[Attempt]]]:
    """``_batch.walk_many`` for a coroutine: the same steps, sources and trails. A group whose
    source has a native async path is asked on the loop (its lookups gathered, taking turns);
    a local source's on the loop, as ``aresolve`` asks it; any other group on the pool, as
    ``resolve_many`` asks it (a batch call, the ``max_workers`` pool or a loop)."""
    from authchain._batch import ask_group, record_answers, step_groups

    results: dict[str, SecretValue[Any]] = {}
    trails: dict[str, list[Attempt]] = {label: [EXPLICIT_NOT_PASSED] for label in plans}
    depth = 0
    while groups := step_groups(plans, results, depth):
        for group in groups:
            source = group[0][1].source
            if source not in _warmed:
                await _warm(source)
            if source.has_native_async():
                answered = await _aask_each(chain, group)
            elif source.is_local():
                answered = {label: chain._ask(target, raise_errors=True) for label, target in group}
            else:
                answered = await off_loop(chain, lambda group=group: ask_group(chain, group))  # type: ignore[misc]
            record_answers(answered, results, trails)
        depth += 1
    return results, trails


async def _aask_each(
    chain: Chain, group: list[tuple[str, _Target]]
) -> dict[str, tuple[Attempt, SecretValue[Any] | None]]:
    """Each name of ``group`` asked on the loop, all at once; the first error (in the group's
    order, as the pool's futures are read in sync code) raised once all are done."""

    async def one(target: _Target) -> tuple[Attempt, SecretValue[Any] | None]:
        await take_turn()
        return await _aask(chain, target)

    outcomes = await asyncio.gather(*(one(target) for _, target in group), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return {label: outcome for (label, _), outcome in zip(group, outcomes, strict=True)}  # type: ignore[misc]


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
        if source not in _warmed:
            await _warm(source)
        # A job runs in a copy of this context: the deadline and the
        # credential-lookup exclusions travel with it, as in resolve_many.
        context = contextvars.copy_context()
        if source.has_native_async():
            loader = chain._loader(source, key)

            def hand_over(job: Callable[[], None]) -> object:  # the loop stopped under the fetch
                return chain._async_executor().submit(job)

            result = await chain._cache.afetch_on_loop(
                source,
                key,
                _native_loader(chain, source, key),
                fallback=lambda: context.copy().run(loader),  # a copy each: two threads may run it
                hand_over=hand_over,
                stopped=lambda: _loop_stopped(source, key),
                wait=time_left(),
            )
            return result, False
        pool = chain._async_executor()

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


_warmed: weakref.WeakSet[Source] = weakref.WeakSet()


async def _warm(source: Source) -> None:
    """``source.warm_for_async()`` in a thread, once (its SDK import must not stall the loop)."""
    if type(source).warm_for_async is not Source.warm_for_async:
        with contextlib.suppress(Exception):  # the lookup raises it, as sync code does
            await asyncio.to_thread(source.warm_for_async)
    _warmed.add(source)


def _native_loader(chain: Chain, source: Source, key: Key) -> Callable[[], Awaitable[Result]]:
    """``Chain._loader`` for a source with a native async path: retry → ``await source.aget`` →
    masker → cache, all on the event loop (the task runs in a copy of the caller's context,
    so the deadline and the credential-lookup exclusions apply)."""
    policy = chain._policy_for(source)

    async def attempt() -> Result:
        chain._check_open()  # each attempt: a retry never reopens a closed source's client
        return await source.aget(key)

    async def load() -> Result:
        await take_turn()  # fetches that start together prepare their requests a few per pass
        since = chain._cache.generation()  # taken before the backend is asked
        again = chain._cache.hit(source, key)  # a flight that just landed
        if again is not None:
            return again.result
        result: Result = await acall_with_retry(
            aguarded(source, attempt),
            policy,
            sleep=_sleeper(chain),
            jitter=chain._jitter,
            label=source.name,
            what=lambda: source.describe_key(key),
        )
        await take_turn()  # answers that arrive together are registered a few per pass
        register([result], source.name)
        chain._store(source, key, result, since)
        return result

    return load


def _sleeper(chain: Chain) -> Callable[[float], Awaitable[None]]:
    """The backoff between attempts: ``asyncio.sleep``, or the chain's own sleep seam when a test set one."""
    if chain._sleep is time.sleep:
        return asyncio.sleep

    async def seam(seconds: float) -> None:
        chain._sleep(seconds)

    return seam


def _loop_stopped(source: Source, key: Key) -> BackendError:
    return BackendError(
        f"{source.describe_key(key)}: the event loop fetching it stopped before the fetch ended",
        retryable=True,
    )


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
