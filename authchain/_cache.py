"""A chain's cache policy, and the TTL cache and single flight it is made of.

:class:`CachePolicy` is the one place that decides what a chain keeps and for
how long: freshness of found values and remembered "not found" answers,
the chain's remembered answers per name (served without a walk), single
flight for concurrent misses, stale-if-error, and invalidation. The chain's
walk asks it and never touches the parts.

Entries are keyed by (source name, backend key); keys never contain values.
Entries past their TTL are kept for the ``stale_if_error`` grace period so a
failed refresh can fall back to them, as aws-secretsmanager-caching does.

Invalidation is generational: a fetch takes :meth:`TTLCache.generation`
before it asks the backend and stores with ``put(..., since=...)``, which
refuses the answer when its key (or the whole cache) was invalidated in the
meantime. Otherwise a fetch that started before a rotation would put the old
value back for a full TTL right after ``invalidate()`` removed it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from authchain._records import record
from authchain.sources.base import Found, NotFound

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from concurrent.futures import Future

    from authchain.errors import BackendError
    from authchain.sources.base import Key, Source
    from authchain.values import SecretValue

__all__ = ["CachePolicy", "Entry", "FlightCycle", "FlightTimeout", "SingleFlight", "TTLCache"]

logger = logging.getLogger("authchain")

T = TypeVar("T")


@record
class Entry(Generic[T]):
    result: T
    stored_at: float
    ttl: float
    # Where the answer holds besides its age (None: everywhere); a "not found"
    # remembered for one Prefect flow run carries that run. See CachePolicy.hit.
    scope: Hashable = None

    def fresh(self, now: float) -> bool:
        return now - self.stored_at < self.ttl

    def usable_stale(self, now: float, grace: float) -> bool:
        return now - self.stored_at < self.ttl + grace


# Keys remembered as "invalidated at generation N" before the whole map is
# folded into one cache-wide mark (callers that invalidate a new reference per
# request must not grow it without bound).
_MAX_INVALIDATED = 1024


class TTLCache(Generic[T]):
    """A thread-safe dict of entries with an age; expired ones are dropped lazily."""

    def __init__(self, clock: Callable[[], float], grace: float = 0.0) -> None:
        self._clock = clock
        self._grace = grace
        self._entries: dict[Hashable, Entry[T]] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation. A put whose fetch started at an older
        # generation than its key's (or the cache's) last invalidation is refused.
        self._generation = 0
        self._cleared_at = 0
        self._invalidated: dict[Hashable, int] = {}

    def generation(self) -> int:
        """The token a fetch takes before it asks the backend (see :meth:`put`)."""
        with self._lock:
            return self._generation

    def unchanged_since(self, generation: int) -> bool:
        """Whether nothing at all was invalidated since ``generation`` was taken."""
        with self._lock:
            return self._generation == generation

    def get(self, key: Hashable) -> Entry[T] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.usable_stale(self._clock(), self._grace):
                del self._entries[key]
                return None
            return entry

    def put(
        self, key: Hashable, result: T, ttl: float, *, since: int | None = None, scope: Hashable = None
    ) -> bool:
        """Store ``result`` for ``ttl`` seconds; False if it was refused.

        ``since`` is the :meth:`generation` taken before the fetch started: an
        answer fetched before ``key`` (or the whole cache) was invalidated is
        not stored, and does not displace what a later fetch stored. ``scope``
        is kept with the entry (where it applies; None: everywhere).
        """
        with self._lock:
            if since is not None and since < max(self._cleared_at, self._invalidated.get(key, 0)):
                return False
            if ttl <= 0:
                # Not kept; and an older entry must not outlive this answer (an
                # expired value served as stale after the secret was deleted).
                self._entries.pop(key, None)
            else:
                self._entries[key] = Entry(result, self._clock(), ttl, scope)
            return True

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def invalidate(self, key: Hashable) -> None:
        """Drop ``key`` and refuse answers to fetches of it that are already under way."""
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)
            if len(self._invalidated) >= _MAX_INVALIDATED:
                # Folded into one mark: every fetch under way now is refused.
                self._cleared_at = self._generation
                self._invalidated.clear()
            else:
                self._invalidated[key] = self._generation

    def clear(self) -> None:
        """Drop every entry and refuse the answers of every fetch already under way."""
        with self._lock:
            self._generation += 1
            self._cleared_at = self._generation
            self._invalidated.clear()
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class _Call(Generic[T]):
    __slots__ = ("callbacks", "done", "error", "fallback", "loop_thread", "owner", "pending", "result")

    def __init__(self, owner: int | None) -> None:
        self.done = threading.Event()
        # The thread running the call (None: not started yet). Only it settles
        # the call, so a waiter that reaches itself through owners and their
        # waits would wait for ever: see _loop_back.
        self.owner = owner
        self.result: T | None = None
        self.error: BaseException | None = None
        # Run once when the call is settled (None afterwards): how a coroutine
        # waits for it without holding a thread. See SingleFlight.await_call.
        self.callbacks: list[Callable[[], None]] | None = []
        # A job submitted to a pool and not started yet (see SingleFlight.start):
        # a thread that would wait for it runs it instead.
        self.pending: Callable[[], None] | None = None
        # A call running as a task on an event loop (SingleFlight.start_task): that
        # loop's thread, and what a sync caller on that very thread runs instead of
        # waiting (the loop cannot run the task while its thread waits for it).
        self.loop_thread: int | None = None
        self.fallback: Callable[[], T] | None = None


class FlightTimeout(TimeoutError):
    """A follower stopped waiting for another caller's call of the same key."""


class FlightCycle(RuntimeError):
    """Waiting for this call would close a loop of threads, each waiting for a call the next one runs.

    None of them would ever return (or all only at their deadline): a call
    runs inside another when a source fetches its own credentials, so two
    threads warming two sources that keep each other's credentials can each
    lead one fetch and wait for the other's. ``contexts`` holds what each
    thread in the loop passed to :meth:`SingleFlight.wait`, starting with the
    thread that found the loop; the caller names the cycle from them.
    """

    def __init__(self, contexts: tuple[object, ...]) -> None:
        super().__init__("callers waiting for each other's calls")
        self.contexts = contexts


# The wait-for graph of every single flight in the process: the call each
# blocked thread waits for, with its caller's context. A loop in it is a
# deadlock (importlib keeps the same graph for its module locks, and raises
# _DeadlockError instead of hanging). Process-wide, not per SingleFlight: a
# loop may run through the flights of two chains' views.
_waits_lock = threading.Lock()
_waiting: dict[int, tuple[_Call[Any], object]] = {}


def _loop_back(call: _Call[Any], me: int) -> tuple[object, ...] | None:
    """The contexts of the threads between ``call`` and ``me``, if waiting for it loops back to
    ``me`` (``_waits_lock`` held, so no wait starts or ends meanwhile)."""
    contexts: list[object] = []
    seen: set[int] = set()
    while not call.done.is_set():
        owner = call.owner
        if owner is None or owner in seen:  # not started, or a loop that does not pass through me
            return None
        if owner == me:
            return tuple(contexts)
        seen.add(owner)
        waited = _waiting.get(owner)
        if waited is None:  # the owner is working, not waiting
            return None
        call, context = waited
        contexts.append(context)
    return None


class SingleFlight(Generic[T]):
    """Concurrent callers for one key share one call of the function.

    :meth:`do` covers one key. A batch call claims several keys at once
    (:meth:`claim`), fetches the ones it leads in one request, settles each
    (:meth:`settle`), and waits (:meth:`wait`) for the keys another caller
    was already fetching, so a key is never fetched twice at the same time
    whichever way it was asked for.
    """

    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call[T]] = {}
        self._lock = threading.Lock()
        self._tasks: set[Any] = set()  # the running start_task jobs

    def claim(self, key: Hashable) -> tuple[_Call[T], bool]:
        """The call in flight for ``key`` and whether this caller leads it (and must settle it)."""
        with self._lock:
            call = self._calls.get(key)
            if call is not None:
                return call, False
            call = self._calls[key] = _Call(threading.get_ident())
            return call, True

    def forget(self, key: Hashable) -> None:
        """Callers from now on start a new call for ``key`` instead of joining the one running.

        The running call still hands its outcome to those already waiting on
        it (used when ``key`` is invalidated while a fetch is under way).
        """
        with self._lock:
            self._calls.pop(key, None)

    def forget_all(self) -> None:
        """:meth:`forget` every key."""
        with self._lock:
            self._calls.clear()

    def settle(self, key: Hashable, call: _Call[T], result: T | None, error: BaseException | None) -> None:
        """Hand a led call's outcome to everyone waiting on it, and end the flight."""
        call.result, call.error = result, error
        with self._lock:
            if self._calls.get(key) is call:
                del self._calls[key]
            callbacks, call.callbacks = call.callbacks, None
        call.done.set()
        for callback in callbacks or ():
            callback()

    def start(
        self,
        key: Hashable,
        function: Callable[[], T],
        submit: Callable[[Callable[[], None]], Future[None]],
        dropped: Callable[[], BaseException],
    ) -> _Call[T]:
        """The call running for ``key``, or a new one that ``submit`` runs elsewhere (a thread pool).

        The submitted job settles the call itself, so the outcome reaches every
        waiter (threads and coroutines alike) even when the coroutine that
        started it is cancelled or its event loop is gone. A job the pool drops
        unrun (shut down with ``cancel_futures``) settles it with ``dropped()``.
        """
        call, leader = self.claim(key)
        if not leader:
            return call

        def job() -> None:
            with self._lock:  # run once: by the pool, or by a thread that would wait for it
                if call.pending is not job:
                    return
                call.pending = None
                call.owner = threading.get_ident()
            self._run_and_settle(key, call, function)

        call.owner = None  # runs in whichever thread takes the job
        call.pending = job
        try:
            future = submit(job)
        except BaseException as error:  # the pool is shut down: the waiters get why
            call.pending = None
            self.settle(key, call, None, error)
            return call

        def if_dropped(future: Future[None]) -> None:
            if future.cancelled():
                with self._lock:
                    unrun, call.pending = call.pending is job, None
                if unrun:
                    self.settle(key, call, None, dropped())

        future.add_done_callback(if_dropped)
        return call

    def start_task(
        self,
        key: Hashable,
        function: Callable[[], Awaitable[T]],
        *,
        fallback: Callable[[], T],
        hand_over: Callable[[Callable[[], None]], object],
        stopped: Callable[[], BaseException],
    ) -> _Call[T]:
        """The call running for ``key``, or a new one awaiting ``function()`` as a task on the running loop.

        The task settles the call itself, so cancelling the coroutine that
        started it stops only that coroutine's wait. If the task itself is
        cancelled (the loop stops: ``asyncio.run`` cancels what is left), the
        fetch goes on as ``fallback()`` in a thread ``hand_over`` starts, for
        the other waiters and the cache, as a pool's job would; if that cannot
        start, the call ends with ``stopped()``. A sync caller on the loop's own
        thread runs ``fallback()`` itself instead of waiting (see :meth:`wait`).
        """
        import asyncio

        call, leader = self.claim(key)
        if not leader:
            return call
        call.loop_thread, call.fallback = call.owner, fallback

        def in_a_thread() -> None:
            call.owner = threading.get_ident()
            self._run_and_settle(key, call, fallback)

        async def job() -> None:
            try:
                result = await function()
            except asyncio.CancelledError:
                call.owner = call.loop_thread = None  # no longer this loop's: threads wait for the hand-over
                try:
                    hand_over(in_a_thread)
                except BaseException:
                    self.settle(key, call, None, stopped())
                raise
            except BaseException as error:
                self._settle_failure(key, call, error)
                return
            self.settle(key, call, result, None)

        task = asyncio.get_running_loop().create_task(job())
        self._tasks.add(task)  # the loop keeps only a weak reference to its tasks
        task.add_done_callback(self._tasks.discard)
        return call

    def _run_and_settle(self, key: Hashable, call: _Call[T], function: Callable[[], T]) -> None:
        """``function()`` as the led ``call``: its outcome settled for every waiter (an
        interruption such as ``KeyboardInterrupt`` is settled too, then raised on)."""
        try:
            result = function()
        except BaseException as error:
            self._settle_failure(key, call, error)
            return
        self.settle(key, call, result, None)

    def _settle_failure(self, key: Hashable, call: _Call[T], error: BaseException) -> None:
        """Settle ``call`` with ``error`` for its waiters; an interruption (not an ``Exception``)
        is then raised on in the thread or task that ran it."""
        self.settle(key, call, None, error)
        if not isinstance(error, Exception):
            raise error

    async def await_call(self, call: _Call[T], timeout: float | None = None) -> T:
        """:meth:`wait` for a coroutine: the event loop goes on, no thread is held.

        Cancelling the awaiting coroutine only stops *this* wait; the call goes
        on for everyone else (nothing of it runs on this loop).

        Raises:
            FlightTimeout: not settled within ``timeout`` seconds (None: no limit).
        """
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        def settled() -> None:  # runs in the thread that settles the call
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there
                loop.call_soon_threadsafe(wake)

        with self._lock:
            if call.callbacks is not None:
                call.callbacks.append(settled)
        if call.callbacks is None and not future.done():
            future.set_result(None)  # already settled
        try:
            await asyncio.wait_for(future, None if timeout is None else max(timeout, 0.0))
        except asyncio.TimeoutError:
            raise FlightTimeout(f"still waiting for another caller's fetch after {timeout:g}s") from None
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def wait(self, call: _Call[T], timeout: float | None = None, *, context: object = None) -> T:
        """The outcome of a call another caller leads (raised if it failed).

        A call whose job still sits in a pool's queue is run here instead:
        a pool thread waiting for a job queued behind it (``aresolve_many``
        runs ``resolve_many`` on the pool its flights use) would otherwise
        wait for ever once every thread of the pool does the same.

        ``context`` is what this caller is doing, handed to whoever finds this
        wait in a loop (:class:`FlightCycle`).

        Raises:
            FlightTimeout: not settled within ``timeout`` seconds (None: no limit).
            FlightCycle: the call's thread waits, directly or through others,
                for a call this thread runs.
        """
        job = call.pending
        if job is not None:
            job()  # a no-op if the pool started it meanwhile
        me = threading.get_ident()
        if call.loop_thread == me and call.fallback is not None and not call.done.is_set():
            # A task on the loop of this thread, which waits here instead of running
            # the loop: the task could never end. Fetch once more here instead.
            return call.fallback()
        with _waits_lock:
            loop = _loop_back(call, me)
            if loop is None:
                _waiting[me] = (call, context)
        if loop is not None:
            raise FlightCycle((context, *loop))
        try:
            done = call.done.wait(None if timeout is None else max(timeout, 0.0))
        finally:
            with _waits_lock:
                del _waiting[me]
        if not done:
            raise FlightTimeout(f"still waiting for another caller's fetch after {timeout:g}s")
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def do(
        self, key: Hashable, function: Callable[[], T], *, wait: float | None = None, context: object = None
    ) -> T:
        """Call ``function`` for ``key``, or wait for the call already running for it.

        A caller that finds a call running waits at most ``wait`` seconds (None:
        as long as it takes), then raises :class:`FlightTimeout`; the running
        call goes on for the others. A wait that would never end raises
        :class:`FlightCycle` (see :meth:`wait`, which ``context`` is for).
        """
        call, leader = self.claim(key)
        if not leader:
            return self.wait(call, wait, context=context)
        try:
            result = function()
        except BaseException as error:
            self.settle(key, call, None, error)
            raise
        self.settle(key, call, result, None)
        return result


Result = Found | NotFound
# name -> (expires at, value, (source, context_key) of each source passed over)
Answer = tuple[float, "SecretValue[Any]", tuple[tuple["Source", Hashable], ...]]


class CachePolicy:
    """What a chain keeps, for how long, and when it forgets: one object, its own tests.

    Args:
        clock: monotonic seconds (a seam for tests).
        ttl: seconds a found value is reused (0: not kept).
        negative_ttl: seconds a "not found" is remembered (0: never).
        stale_if_error: seconds past ``ttl`` a found value may still be served
            when its refresh fails with a ``BackendError`` (logged).
        closed: set when the chain is closed; nothing is remembered after it.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        ttl: float,
        negative_ttl: float = 0.0,
        stale_if_error: float = 0.0,
        closed: threading.Event | None = None,
    ) -> None:
        self._clock = clock
        self.ttl, self.negative_ttl, self.stale_if_error = ttl, negative_ttl, stale_if_error
        self._entries: TTLCache[Result] = TTLCache(clock, grace=stale_if_error)
        self._flights: SingleFlight[Result] = SingleFlight()
        # The chain's last answer per name, served without a walk until the
        # winner's cache entry expires: see remember().
        self._answers: dict[str, Answer] = {}
        # Held while answers are remembered or forgotten, so an answer found
        # before an invalidate() cannot be remembered after it.
        self._answers_lock = threading.Lock()
        self._closed = closed if closed is not None else threading.Event()

    def view(self) -> CachePolicy:
        """A policy sharing these entries and flights but with answers of its own.

        For a chain's view without some sources: its answers are not the
        chain's answers, but a value either fetched is the same value.
        """
        view = object.__new__(CachePolicy)
        view.__dict__.update(self.__dict__)
        view._answers = {}
        return view

    # -- freshness ----------------------------------------------------------

    def generation(self) -> int:
        """The token a fetch takes before it asks the backend (see :meth:`store`)."""
        return self._entries.generation()

    def hit(self, source: Source, key: Key) -> Entry[Result] | None:
        """The cached answer for ``key`` if it is fresh and holds here (its scope is this one's)."""
        entry = self._entries.get((source.name, key))
        if entry is None or not entry.fresh(self._clock()):
            return None
        if entry.scope is not None and entry.scope != source.absence_scope():
            return None
        return entry

    def store(self, source: Source, key: Key, result: Result, since: int) -> None:
        """Cache ``result`` unless its key was invalidated after ``since`` (the fetch's start).

        A "not found" from a source with an :meth:`~Source.absence_scope` (the
        Prefect source inside a run: a block missing now stays missing for the
        run) is kept as long as a found value would be (``ttl``, or
        ``negative_ttl`` if longer), but only for that scope: the next flow run
        asks again, and ``invalidate()``/``clear()`` drop it as any entry.
        """
        if isinstance(result, Found):
            self._entries.put((source.name, key), result, self.ttl, since=since)
            return
        scope = source.absence_scope()
        if scope is None:
            self._entries.put((source.name, key), result, self.negative_ttl, since=since)
        else:
            ttl = max(self.ttl, self.negative_ttl)
            self._entries.put((source.name, key), result, ttl, since=since, scope=scope)

    def stale(self, source: Source, key: Key, error: BackendError) -> Found | None:
        """An expired value still inside the ``stale_if_error`` grace period, if any (logged)."""
        entry = self._entries.get((source.name, key))
        if entry is None or not isinstance(entry.result, Found):
            return None
        logger.warning(
            "%s: refresh of %s failed (%s); serving the cached value for up to %gs more",
            source.name,
            source.describe_key(key),
            error.message,
            self.stale_if_error,
        )
        return entry.result

    # -- single flight --------------------------------------------------------

    def fetch_once(
        self,
        source: Source,
        key: Key,
        load: Callable[[], Result],
        *,
        wait: float | None,
        context: object = None,
    ) -> Result:
        """``load()``, or the outcome of the call already running for ``key`` (see :class:`SingleFlight`)."""
        return self._flights.do((source.name, key), load, wait=wait, context=context)

    async def afetch_once(
        self,
        source: Source,
        key: Key,
        load: Callable[[], Result],
        *,
        submit: Callable[[Callable[[], None]], Future[None]],
        dropped: Callable[[], BaseException],
        wait: float | None,
    ) -> Result:
        """:meth:`fetch_once` for a coroutine: ``load`` runs through ``submit`` (a thread
        pool), never on the event loop, and the flight is the one sync callers join."""
        call = self._flights.start((source.name, key), load, submit, dropped)
        return await self._flights.await_call(call, wait)

    async def afetch_on_loop(
        self,
        source: Source,
        key: Key,
        load: Callable[[], Awaitable[Result]],
        *,
        fallback: Callable[[], Result],
        hand_over: Callable[[Callable[[], None]], object],
        stopped: Callable[[], BaseException],
        wait: float | None,
    ) -> Result:
        """:meth:`afetch_once` for a source with a native async path: ``load()`` runs as a task on
        this event loop (no thread), and the flight is still the one sync callers join
        (see :meth:`SingleFlight.start_task`)."""
        call = self._flights.start_task(
            (source.name, key), load, fallback=fallback, hand_over=hand_over, stopped=stopped
        )
        return await self._flights.await_call(call, wait)

    def claim(self, source: Source, key: Key) -> tuple[_Call[Result], bool]:
        """The flight for ``key`` and whether this caller leads it (a batch claims each key)."""
        return self._flights.claim((source.name, key))

    def settle(
        self,
        source: Source,
        key: Key,
        call: _Call[Result],
        result: Result | None,
        error: BaseException | None,
    ) -> None:
        """End a flight this caller leads, handing its outcome to those waiting."""
        self._flights.settle((source.name, key), call, result, error)

    def wait(self, call: _Call[Result], timeout: float | None, *, context: object = None) -> Result:
        """The outcome of a flight another caller leads.

        Raises:
            FlightTimeout, FlightCycle: see :meth:`SingleFlight.wait`.
        """
        return self._flights.wait(call, timeout, context=context)

    # -- remembered answers -----------------------------------------------------

    def answer(self, name: str) -> SecretValue[Any] | None:
        """The remembered answer for ``name``, if still fresh and its passed-over sources still cannot answer.

        The fast path of ``Chain.resolve``: no lock, no walk, no log line.
        """
        answer = self._answers.get(name)
        if answer is not None and self._clock() < answer[0]:
            for source, context in answer[2]:
                if source.context_key() != context:
                    return None
            return answer[1]
        return None

    def remember(
        self,
        name: str,
        passed: Sequence[Source],
        attempts: Sequence[Any],
        winner: tuple[Source, Key],
        value: SecretValue[Any],
        since: int,
    ) -> None:
        """Keep the answer for ``name`` while the winner's cache entry is fresh.

        Only when every source passed over was *unavailable* here (Prefect
        outside a run, keyring without a backend), never "not found": a source
        that said "not found" is asked again on the next resolve, as before.
        A passed-over source's ``context_key()`` is kept with the answer and
        checked on each use, so entering a Prefect run drops it. Nothing is
        kept if anything was invalidated since the walk began (``since``): the
        value may be the one the invalidation was meant to drop.
        """
        if any(attempt.outcome != "unavailable" for attempt in attempts):
            return
        entry = self._entries.get((winner[0].name, winner[1]))
        if entry is None or not entry.fresh(self._clock()):
            return
        guards = tuple(
            (source, context) for source in passed if (context := source.context_key()) is not None
        )
        with self._answers_lock:
            if self._closed.is_set() or not self._entries.unchanged_since(since):
                return
            self._answers[name] = (entry.stored_at + entry.ttl, value, guards)

    # -- invalidation -----------------------------------------------------------

    def invalidate(self, keys: Iterable[tuple[Source, Key]]) -> None:
        """Forget ``keys`` and every remembered answer, fetches under way included.

        Their answers go to the callers already waiting for them but are not
        cached, and a caller arriving after this returns starts a new fetch
        instead of joining theirs. So the value from before a rotation cannot
        come back for a full TTL.
        """
        with self._answers_lock:
            for source, key in keys:
                self._entries.invalidate((source.name, key))
                self._flights.forget((source.name, key))
            # Every remembered answer goes: another name or a reference may have
            # been answered from the same (source, key).
            self._answers.clear()

    def clear(self) -> None:
        """Forget everything, and the answers of fetches under way (see :meth:`invalidate`)."""
        with self._answers_lock:
            self._entries.clear()
            self._flights.forget_all()
            self._answers.clear()

    def forget_answers(self) -> None:
        """Drop the remembered answers (the chain was closed; entries stay until it is dropped)."""
        with self._answers_lock:
            self._answers.clear()
