"""The cache policy on its own: freshness, remembered answers, single flight, stale-if-error, invalidation.

The chain's tests (tests/chain/test_cache.py, tests/chain/test_answers.py,
tests/hardening/test_rotation_races.py) show the same rules through
``Chain``; these pin them on :class:`authchain._cache.CachePolicy` directly,
with a hand-driven clock, so a change of policy shows here first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable

import pytest

from authchain._cache import CachePolicy, FlightCycle
from authchain.errors import BackendError
from authchain.sources.base import Found, NotFound
from authchain.testing import MemorySource, canary
from authchain.values import Attempt, SecretValue
from tests._waiting import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScopedSource(MemorySource):
    """A source whose "not found" holds for one scope, and whose answers depend on a context."""

    def __init__(self) -> None:
        super().__init__({}, name="scoped")
        self.scope: Hashable = None
        self.context: Hashable = None

    def absence_scope(self) -> Hashable:
        return self.scope

    def context_key(self) -> Hashable:
        return self.context


def found() -> Found:
    return Found(SecretValue(canary("cache-policy")), "somewhere")


def unavailable(source: MemorySource) -> Attempt:
    return Attempt(source.name, source.type, "unavailable", "unavailable: not here")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source() -> MemorySource:
    return MemorySource({}, name="mem")


def test_a_found_value_is_fresh_for_the_ttl_then_gone(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    result = found()
    policy.store(source, "K", result, policy.generation())
    entry = policy.hit(source, "K")
    assert entry is not None
    assert entry.result is result
    clock.now += 10
    assert policy.hit(source, "K") is None


def test_not_found_is_kept_only_for_the_negative_ttl(clock: Clock, source: MemorySource) -> None:
    forgetful = CachePolicy(clock, ttl=10)
    forgetful.store(source, "K", NotFound("no K"), forgetful.generation())
    assert forgetful.hit(source, "K") is None

    remembering = CachePolicy(clock, ttl=10, negative_ttl=2)
    remembering.store(source, "K", NotFound("no K"), remembering.generation())
    assert remembering.hit(source, "K") is not None
    clock.now += 2
    assert remembering.hit(source, "K") is None


def test_a_scoped_absence_holds_for_its_scope_as_long_as_a_value_would(clock: Clock) -> None:
    source = ScopedSource()
    source.scope = "run-1"
    policy = CachePolicy(clock, ttl=10)
    policy.store(source, "K", NotFound("no K"), policy.generation())
    assert policy.hit(source, "K") is not None
    source.scope = "run-2"
    assert policy.hit(source, "K") is None, "another run asks again"
    source.scope = "run-1"
    clock.now += 10
    assert policy.hit(source, "K") is None


def test_stale_if_error_serves_an_expired_value_within_the_grace_and_says_so(
    clock: Clock, source: MemorySource, caplog: pytest.LogCaptureFixture
) -> None:
    policy = CachePolicy(clock, ttl=10, stale_if_error=5)
    result = found()
    policy.store(source, "K", result, policy.generation())
    clock.now += 12
    assert policy.hit(source, "K") is None, "expired: a refresh is due"
    with caplog.at_level(logging.WARNING, logger="authchain"):
        assert policy.stale(source, "K", BackendError("down")) is result
    assert "serving the cached value" in caplog.text
    assert result.value.get_secret_value() not in caplog.text
    clock.now += 3
    assert policy.stale(source, "K", BackendError("down")) is None


def test_stale_if_error_never_serves_a_remembered_absence(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10, negative_ttl=10, stale_if_error=5)
    policy.store(source, "K", NotFound("no K"), policy.generation())
    clock.now += 12
    assert policy.stale(source, "K", BackendError("down")) is None


def test_an_answer_fetched_before_an_invalidation_is_not_stored(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    since = policy.generation()  # the fetch starts
    policy.invalidate([(source, "K")])  # the secret is rotated meanwhile
    policy.store(source, "K", found(), since)
    assert policy.hit(source, "K") is None
    policy.store(source, "K", found(), policy.generation())  # a fetch started afterwards
    assert policy.hit(source, "K") is not None


def test_clear_drops_every_entry_and_refuses_fetches_under_way(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    policy.store(source, "A", found(), policy.generation())
    since = policy.generation()
    policy.clear()
    assert policy.hit(source, "A") is None
    policy.store(source, "B", found(), since)
    assert policy.hit(source, "B") is None


def test_a_caller_arriving_during_a_load_gets_its_outcome_without_loading(
    clock: Clock, source: MemorySource
) -> None:
    policy = CachePolicy(clock, ttl=10)
    call, leads = policy.claim(source, "K")  # a load is under way, led from here
    assert leads
    assert policy.claim(source, "K") == (call, False), "a second caller joins, it does not lead"
    loads: list[int] = []
    answers: list[object] = []
    follower = threading.Thread(
        target=lambda: answers.append(policy.fetch_once(source, "K", lambda: loads.append(1), wait=10))
    )
    follower.start()
    result = found()
    policy.settle(source, "K", call, result, None)
    follower.join(10)
    assert answers == [result]
    assert loads == [], "the follower shared the leader's load"


def test_a_failed_load_fails_its_followers_too(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    call, _ = policy.claim(source, "K")
    follower, _ = policy.claim(source, "K")
    policy.settle(source, "K", call, None, BackendError("down"))
    with pytest.raises(BackendError, match="down"):
        policy.wait(follower, 1)


def test_after_an_invalidation_a_new_caller_starts_its_own_load(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    release = threading.Event()
    started = threading.Event()
    old, new = found(), found()

    def slow() -> Found:
        started.set()
        release.wait(10)
        return old

    leader = threading.Thread(target=lambda: policy.fetch_once(source, "K", slow, wait=10))
    leader.start()
    started.wait(10)
    policy.invalidate([(source, "K")])
    assert policy.fetch_once(source, "K", lambda: new, wait=1) is new
    release.set()
    leader.join(10)


def test_an_answer_is_remembered_only_past_unavailable_sources(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    result = found()
    skipped = MemorySource({}, name="skipped")
    policy.store(source, "K", result, policy.generation())

    not_found = Attempt("skipped", "memory", "not_found", "no K")
    policy.remember("NAME", [skipped], [not_found], (source, "K"), result.value, policy.generation())
    assert policy.answer("NAME") is None, "a source that said 'not found' is asked again"

    passed_over = [unavailable(skipped)]
    policy.remember("NAME", [skipped], passed_over, (source, "K"), result.value, policy.generation())
    assert policy.answer("NAME") is result.value
    clock.now += 10
    assert policy.answer("NAME") is None, "only while the winner's entry is fresh"


def test_a_remembered_answer_ends_when_a_passed_over_source_changes_context(clock: Clock) -> None:
    policy = CachePolicy(clock, ttl=10)
    winner, passed = MemorySource({}, name="winner"), ScopedSource()
    passed.context = "outside a run"
    result = found()
    policy.store(winner, "K", result, policy.generation())
    policy.remember("NAME", [passed], [unavailable(passed)], (winner, "K"), result.value, policy.generation())
    assert policy.answer("NAME") is result.value
    passed.context = "inside a run"
    assert policy.answer("NAME") is None


def test_nothing_is_remembered_after_an_invalidation_during_the_walk_or_after_close(
    clock: Clock, source: MemorySource
) -> None:
    closed = threading.Event()
    policy = CachePolicy(clock, ttl=10, closed=closed)
    result = found()
    since = policy.generation()
    policy.invalidate([(source, "OTHER")])
    policy.store(source, "K", result, policy.generation())
    policy.remember("NAME", [], [], (source, "K"), result.value, since)
    assert policy.answer("NAME") is None

    policy.remember("NAME", [], [], (source, "K"), result.value, policy.generation())
    assert policy.answer("NAME") is result.value
    closed.set()
    policy.forget_answers()
    assert policy.answer("NAME") is None
    policy.remember("NAME", [], [], (source, "K"), result.value, policy.generation())
    assert policy.answer("NAME") is None


def test_any_invalidation_forgets_every_remembered_answer(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    result = found()
    policy.store(source, "K", result, policy.generation())
    policy.remember("NAME", [], [], (source, "K"), result.value, policy.generation())
    policy.invalidate([(source, "UNRELATED")])
    assert policy.answer("NAME") is None, "another name or reference may share the (source, key)"


def test_a_view_shares_entries_but_keeps_its_own_answers(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    view = policy.view()
    result = found()
    view.store(source, "K", result, view.generation())
    assert policy.hit(source, "K") is not None, "a value fetched through a view is the same value"
    view.remember("NAME", [], [], (source, "K"), result.value, view.generation())
    assert view.answer("NAME") is result.value
    assert policy.answer("NAME") is None


# -- single flight for coroutines (aresolve) ---------------------------------------


def test_a_coroutine_and_a_thread_share_one_flight_started_for_the_coroutine() -> None:
    """The thread joins the flight a coroutine started in the pool: one load, one answer.

    The thread is let in only once the flight's load is running, and the load ends only
    once the thread waits for that flight (or has started its own load, which fails the
    test): the order comes from events, not from sleeps.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from authchain import _cache

    policy = CachePolicy(Clock(), ttl=60)
    source = MemorySource({}, name="mem")
    started = threading.Event()
    release = threading.Event()
    loads: list[str] = []
    answer = found()

    def load() -> Found:
        loads.append("coroutine's")
        started.set()
        release.wait(10)
        return answer

    def own_load() -> Found:
        loads.append("thread's")
        return found()

    thread_returned = threading.Event()

    def in_thread() -> object:
        try:
            return policy.fetch_once(source, "K", own_load, wait=10)
        finally:
            thread_returned.set()

    with ThreadPoolExecutor(2) as pool:

        async def scenario() -> tuple[object, object]:
            waiting = asyncio.ensure_future(
                policy.afetch_once(source, "K", load, submit=pool.submit, dropped=RuntimeError, wait=None)
            )
            assert await asyncio.to_thread(started.wait, 10), "the coroutine's flight never ran"
            flight, leads = policy.claim(source, "K")
            assert not leads, "the coroutine's flight is under way"
            thread = asyncio.ensure_future(asyncio.to_thread(in_thread))

            def thread_waits_or_loads() -> bool:
                joined = any(call is flight for call, _ in list(_cache._waiting.values()))
                return joined or "thread's" in loads or thread_returned.is_set()

            await asyncio.to_thread(
                wait_for, thread_waits_or_loads, what="the thread to join the flight", timeout=10
            )
            release.set()
            return await waiting, await thread

        first, second = asyncio.run(scenario())
    assert first is answer
    assert second is answer
    assert loads == ["coroutine's"]


def test_a_coroutine_stops_waiting_at_its_timeout_and_the_flight_goes_on() -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from authchain._cache import FlightTimeout

    policy = CachePolicy(Clock(), ttl=60)
    source = MemorySource({}, name="mem")
    release = threading.Event()
    answer = found()

    def load() -> Found:
        release.wait(10)
        return answer

    with ThreadPoolExecutor(1) as pool:

        async def scenario() -> object:
            with pytest.raises(FlightTimeout):
                await policy.afetch_once(
                    source, "K", load, submit=pool.submit, dropped=RuntimeError, wait=0.05
                )
            release.set()
            # The same flight, still running for others: joined, not started again.
            return await policy.afetch_once(
                source, "K", lambda: found(), submit=pool.submit, dropped=RuntimeError, wait=10
            )

        assert asyncio.run(scenario()) is answer


def test_a_job_the_pool_drops_settles_the_flight_with_the_reason() -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    policy = CachePolicy(Clock(), ttl=60)
    source = MemorySource({}, name="mem")
    release = threading.Event()
    pool = ThreadPoolExecutor(1)
    blocker = pool.submit(release.wait, 10)  # the one worker is busy: the flight's job queues

    class Dropped(Exception):
        pass

    async def scenario() -> None:
        waiting = asyncio.ensure_future(
            policy.afetch_once(source, "K", lambda: found(), submit=pool.submit, dropped=Dropped, wait=10)
        )
        await asyncio.sleep(0.05)
        pool.shutdown(wait=False, cancel_futures=True)
        release.set()
        with pytest.raises(Dropped):
            await waiting

    asyncio.run(scenario())
    blocker.result(10)
    # Nothing is left claimed: the next caller leads a new flight.
    assert policy.claim(source, "K")[1] is True


def test_a_thread_waiting_for_a_queued_job_runs_it_instead_of_waiting_for_ever() -> None:
    """The pool's only thread waits (sync) for a flight whose job is queued behind it."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    policy = CachePolicy(Clock(), ttl=60)
    source = MemorySource({}, name="mem")
    answer = found()
    pool = ThreadPoolExecutor(1)
    inside = threading.Event()
    go = threading.Event()

    def sync_caller() -> object:  # what resolve_many does on the pool for aresolve_many
        inside.set()
        go.wait(10)
        return policy.fetch_once(source, "K", lambda: found(), wait=10)

    async def scenario() -> tuple[object, object]:
        occupying = asyncio.wrap_future(pool.submit(sync_caller))
        await asyncio.to_thread(inside.wait, 10)
        # The flight's job queues behind sync_caller, which will wait for it.
        flight = asyncio.ensure_future(
            policy.afetch_once(source, "K", lambda: answer, submit=pool.submit, dropped=RuntimeError, wait=10)
        )
        await asyncio.sleep(0.05)
        go.set()
        return await flight, await occupying

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 20)) == (answer, answer)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def test_two_threads_each_waiting_for_the_flight_the_other_leads_is_a_cycle_not_a_hang(
    clock: Clock, source: MemorySource
) -> None:
    """The shape of a credential cycle across threads: one thread leads A and needs B, the
    other leads B and needs A. The wait that closes the loop raises at once (with each
    thread's context, the finder's first); its flight's failure then ends the other wait."""
    policy = CachePolicy(clock, ttl=10)
    both_lead = threading.Barrier(2)
    outcomes: dict[str, BaseException] = {}

    def lead_then_need(mine: str, theirs: str) -> None:
        def load() -> Found:
            both_lead.wait(10)  # both flights are led before either is waited for
            return policy.fetch_once(source, theirs, found, wait=None, context=f"{mine} needs {theirs}")

        try:
            policy.fetch_once(source, mine, load, wait=None, context=f"asked for {mine}")
        except BaseException as error:
            outcomes[mine] = error

    threads = [
        threading.Thread(target=lead_then_need, args=pair, daemon=True) for pair in (("A", "B"), ("B", "A"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads), "the two waits deadlocked"
    cycles = [error for error in outcomes.values() if isinstance(error, FlightCycle)]
    assert len(outcomes) == 2
    assert all(isinstance(error, FlightCycle) for error in outcomes.values()), outcomes
    # One thread found the loop; the other got the same error through the flight that failed.
    assert cycles[0] is cycles[1]
    assert cycles[0].contexts in (("A needs B", "B needs A"), ("B needs A", "A needs B"))
    assert policy.claim(source, "A")[1]
    assert policy.claim(source, "B")[1], "nothing is left claimed"


def test_waiting_for_a_flight_this_thread_leads_is_a_cycle(clock: Clock, source: MemorySource) -> None:
    policy = CachePolicy(clock, ttl=10)
    call, leads = policy.claim(source, "K")
    assert leads
    with pytest.raises(FlightCycle) as caught:
        policy.wait(call, None, context="here")
    assert caught.value.contexts == ("here",)
    policy.settle(source, "K", call, found(), None)


def test_a_chain_of_waits_that_does_not_loop_waits_for_its_leader(clock: Clock, source: MemorySource) -> None:
    """Three threads in a row (C waits for B's flight, B for A's): no loop, so no error; all
    get A's answer once A settles."""
    policy = CachePolicy(clock, ttl=10)
    a_call, _ = policy.claim(source, "A")
    answers: list[object] = []
    b_started = threading.Event()

    def b() -> None:
        def load() -> Found:
            b_started.set()
            result = policy.wait(a_call, 20, context="B needs A")
            assert isinstance(result, Found)
            return result

        answers.append(policy.fetch_once(source, "B", load, wait=20, context="asked for B"))

    def c() -> None:
        b_started.wait(10)
        answers.append(policy.fetch_once(source, "B", found, wait=20, context="C needs B"))

    threads = [threading.Thread(target=b, daemon=True), threading.Thread(target=c, daemon=True)]
    for thread in threads:
        thread.start()
    assert b_started.wait(10)

    from authchain import _cache

    def both_waiting() -> bool:  # B on A's flight, C on B's: the chain of waits has formed
        waits = [context for _, context in list(_cache._waiting.values())]
        return "B needs A" in waits and "C needs B" in waits

    wait_for(both_waiting, what="B to wait for A and C for B", timeout=10)
    result = found()
    policy.settle(source, "A", a_call, result, None)
    for thread in threads:
        thread.join(20)
    assert answers == [result, result]
