"""Rotation races: ``invalidate()``/``clear_cache()`` during a fetch, and ``close()`` during lookups.

A fetch that started before an invalidation holds the value from before the
rotation. Its answer may go to the callers already waiting on it, but it must
not land in the cache (or the remembered-answer fast path, the negative cache,
the stale-if-error fallback) where it would be served for a full TTL after the
caller asked for it to be forgotten; and callers arriving after the
invalidation must start a new fetch instead of joining the old one.

``close()`` while many threads resolve gives each of them its answer or a
``ChainClosedError``: never ``RuntimeError: cannot schedule new futures after
shutdown``, a ``CancelledError`` or a hang, and nothing is reopened.

Every race is pinned with Events and Barriers (a backend call that blocks
until the test lets it go), never with sleeps, and every wait is bounded, so
the tests give the same answer on a busy 2-core machine.
"""

from __future__ import annotations

import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from authchain import BackendError, Chain, SecretNotFound, SecretValue
from authchain.errors import AuthChainError, ChainClosedError, SourceUnavailableError
from authchain.sources.base import Found, Key, NotFound, Source
from tests.hardening.conftest import make_backend
from tests.servers.proxy import TCPProxy

WAIT = 30.0  # bound on every wait; the happy path takes milliseconds


def canary() -> str:
    return f"rot-{secrets.token_hex(12)}"


class Gate:
    """Holds backend calls until :meth:`release`; counts the calls that arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self._only: set[int] | None = None
        self.arrived = 0
        self._arrivals = threading.Condition(self._lock)

    def close(self, only: set[int] | None = None) -> None:
        """Hold calls from now on; ``only``: just the calls with these arrival numbers (1-based)."""
        self._only = only
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def passing(self) -> None:
        """Called by a backend call: count it, then wait while the gate is closed for it."""
        with self._arrivals:
            self.arrived += 1
            number = self.arrived
            self._arrivals.notify_all()
        if self._only is None or number in self._only:
            assert self._open.wait(WAIT), "the test never released the gate"

    def wait_for(self, count: int) -> None:
        with self._arrivals:
            assert self._arrivals.wait_for(lambda: self.arrived >= count, WAIT), (
                f"only {self.arrived} of {count} backend calls arrived"
            )


class Rotating(Source):
    """A backend whose calls read the current value, then wait at the gate.

    The value is read *before* the gate, as a real server answers before the
    answer travels back: a call held at the gate carries the pre-rotation value.
    """

    type = "rotating"

    def __init__(self, *, batches: bool = False, concurrent: bool = True, **common: Any) -> None:
        super().__init__(**common)
        self.values: dict[str, str] = {}
        self.failing = False
        self.gate = Gate()
        self.calls = 0
        self.closed = 0
        self._lock = threading.Lock()
        self.batches = batches  # type: ignore[misc]
        self.concurrent = concurrent  # type: ignore[misc]

    def key_for(self, name: str) -> Key:
        return name

    def _read(self, key: Key) -> Found | NotFound:
        with self._lock:
            self.calls += 1
            value = self.values.get(str(key))
            failing = self.failing
        if failing:
            raise BackendError("injected outage (HTTP 503)", retryable=False)
        if value is None:
            return NotFound(f"{key} does not exist")
        return Found(SecretValue(value), f"{key} read")

    def get(self, key: Key) -> Found | NotFound:
        answer = self._read(key)
        self.gate.passing()
        return answer

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Found | NotFound | BackendError]:
        answers: dict[Key, Found | NotFound | BackendError] = {key: self._read(key) for key in keys}
        self.gate.passing()
        return answers

    def close(self) -> None:
        self.closed += 1


class Unavailable(Source):
    """Passed over as *unavailable*, so the chain remembers the answer after it (the fast path)."""

    type = "nowhere"

    def key_for(self, name: str) -> Key:
        return name

    def get(self, key: Key) -> Found | NotFound:
        raise SourceUnavailableError("not here")


def in_thread(function: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def finished(thread: threading.Thread, outcome: dict[str, Any]) -> Any:
    thread.join(WAIT)
    assert not thread.is_alive(), "the caller hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def plain(value: Any) -> str:
    assert isinstance(value, SecretValue)
    return str(value.get_secret_value())


Forget = Callable[[Chain, str], None]
FORGET: dict[str, Forget] = {
    "invalidate": lambda chain, name: chain.invalidate(name),
    "clear_cache": lambda chain, name: chain.clear_cache(),
}


@pytest.fixture
def released() -> Iterator[list[Gate]]:
    """Gates to open at the end of a test whatever happened, so no thread stays parked."""
    gates: list[Gate] = []
    yield gates
    for gate in gates:
        gate.release()


# -- invalidate()/clear_cache() while a fetch is under way -----------------------------------


@pytest.mark.parametrize("forget", sorted(FORGET))
@pytest.mark.parametrize("remembered", [False, True], ids=["walk", "fast-path"])
def test_a_fetch_from_before_the_invalidation_is_not_cached(
    forget: str, remembered: bool, released: list[Gate]
) -> None:
    """The old fetch lands first, before anyone asks again."""
    old, new = canary(), canary()
    source = Rotating()
    released.append(source.gate)
    sources: list[Source] = [Unavailable(), source] if remembered else [source]
    chain = Chain(sources, cache_ttl=3600, deadline=WAIT)
    source.values["TOKEN"] = old
    source.gate.close(only={1})
    before, before_outcome = in_thread(lambda: chain.resolve("TOKEN"))
    source.gate.wait_for(1)  # the backend answered `old`; the answer is on its way back

    source.values["TOKEN"] = new  # the rotation, then the caller says so
    FORGET[forget](chain, "TOKEN")
    source.gate.release()
    assert plain(finished(before, before_outcome)) == old  # its own caller may see the old value
    for _ in range(3):
        assert plain(chain.resolve("TOKEN")) == new, "the pre-rotation value came back from the cache"
        assert plain(chain.resolve_many(["TOKEN"])["TOKEN"]) == new
    assert source.calls == 2, "one new fetch, then the new value is cached"


@pytest.mark.parametrize("forget", sorted(FORGET))
@pytest.mark.parametrize("remembered", [False, True], ids=["walk", "fast-path"])
def test_the_old_fetch_landing_after_the_new_one_does_not_overwrite_it(
    forget: str, remembered: bool, released: list[Gate]
) -> None:
    """The old fetch lands last: the dangerous order. The cache and the
    remembered answer must keep the new value (the old one would otherwise be
    remembered with the new entry's expiry). A caller after the invalidation
    starts its own fetch: were it to join the held one, it would hang here."""
    old, new = canary(), canary()
    source = Rotating()
    released.append(source.gate)
    sources: list[Source] = [Unavailable(), source] if remembered else [source]
    chain = Chain(sources, cache_ttl=3600, deadline=WAIT)
    source.values["TOKEN"] = old
    source.gate.close(only={1})
    before, before_outcome = in_thread(lambda: chain.resolve("TOKEN"))
    source.gate.wait_for(1)

    source.values["TOKEN"] = new
    FORGET[forget](chain, "TOKEN")
    assert plain(chain.resolve("TOKEN")) == new
    assert before.is_alive(), "the old fetch is still held"
    source.gate.release()
    assert plain(finished(before, before_outcome)) == old
    assert source.calls == 2
    for _ in range(3):
        assert plain(chain.resolve("TOKEN")) == new, "the old fetch put its value back"
        assert plain(chain.resolve_many(["TOKEN"])["TOKEN"]) == new
    assert source.calls == 2, "the new value stayed cached"


def test_a_not_found_from_before_the_invalidation_is_not_negatively_cached(released: list[Gate]) -> None:
    created = canary()
    source = Rotating()
    released.append(source.gate)
    chain = Chain([source], cache_ttl=3600, negative_ttl=3600, deadline=WAIT)
    source.gate.close(only={1})
    before, before_outcome = in_thread(lambda: chain.resolve("TOKEN", default=None))
    source.gate.wait_for(1)  # the backend said "not found"

    source.values["TOKEN"] = created
    chain.invalidate("TOKEN")
    source.gate.release()
    assert finished(before, before_outcome) is None
    assert plain(chain.resolve("TOKEN")) == created
    assert source.calls == 2


def test_no_stale_if_error_fallback_to_a_value_fetched_before_the_invalidation(
    released: list[Gate],
) -> None:
    old, new = canary(), canary()
    now = [0.0]
    source = Rotating()
    released.append(source.gate)
    chain = Chain([source], cache_ttl=10, stale_if_error=3600, deadline=0, clock=lambda: now[0])
    source.values["TOKEN"] = old
    source.gate.close()
    before, before_outcome = in_thread(lambda: chain.resolve("TOKEN"))
    source.gate.wait_for(1)
    source.values["TOKEN"] = new
    chain.invalidate("TOKEN")
    source.gate.release()
    assert plain(finished(before, before_outcome)) == old

    now[0] = 20.0  # past the TTL, inside the stale-if-error grace period
    source.failing = True
    with pytest.raises(BackendError) as raised:
        chain.resolve("TOKEN")
    shown = "".join(traceback.format_exception(raised.value))
    assert old not in shown
    assert new not in shown


def test_batch_fetch_from_before_clear_cache_is_not_cached(released: list[Gate]) -> None:
    names = ["ALPHA", "BETA", "GAMMA"]
    old = {name: canary() for name in names}
    new = {name: canary() for name in names}
    source = Rotating(batches=True)
    released.append(source.gate)
    chain = Chain([source], cache_ttl=3600, deadline=WAIT)
    source.values.update(old)
    source.gate.close(only={1})
    before, before_outcome = in_thread(lambda: chain.resolve_many(names))
    source.gate.wait_for(1)  # one batch call, answered with the old values

    source.values.update(new)
    chain.clear_cache()
    # A batch of its own, not a wait on the old one (which is still held).
    assert {name: plain(v) for name, v in chain.resolve_many(names).items()} == new
    source.gate.release()
    assert {name: plain(v) for name, v in finished(before, before_outcome).items()} == old
    calls = source.calls
    assert {name: plain(v) for name, v in chain.resolve_many(names).items()} == new
    assert {name: plain(chain.resolve(name)) for name in names} == new
    assert source.calls == calls


def test_invalidating_one_name_of_a_batch_under_way(released: list[Gate]) -> None:
    """Only the invalidated key is refused; the batch's other answers are cached as usual."""
    old_a, new_a, b = canary(), canary(), canary()
    source = Rotating(batches=True)
    released.append(source.gate)
    chain = Chain([source], cache_ttl=3600, deadline=WAIT)
    source.values.update({"A": old_a, "B": b})
    source.gate.close()
    before, before_outcome = in_thread(lambda: chain.resolve_many(["A", "B"]))
    source.gate.wait_for(1)
    source.values["A"] = new_a
    chain.invalidate("A")
    source.gate.release()
    assert {k: plain(v) for k, v in finished(before, before_outcome).items()} == {"A": old_a, "B": b}
    calls = source.calls
    assert plain(chain.resolve("B")) == b
    assert source.calls == calls, "B's answer was cached"
    assert plain(chain.resolve("A")) == new_a
    assert source.calls == calls + 1


def test_invalidate_with_many_waiters_and_late_arrivals(released: list[Gate]) -> None:
    """Waiters that joined before the invalidation may get the old value; every
    caller that starts after it gets the new one, and so does the cache."""
    old, new = canary(), canary()
    source = Rotating()
    released.append(source.gate)
    chain = Chain([source], cache_ttl=3600, deadline=WAIT)
    source.values["TOKEN"] = old
    source.gate.close()
    early = [in_thread(lambda: chain.resolve("TOKEN")) for _ in range(8)]
    source.gate.wait_for(1)
    source.values["TOKEN"] = new
    chain.invalidate("TOKEN")
    source.gate.release()
    late = [in_thread(lambda: chain.resolve("TOKEN")) for _ in range(8)]
    assert {plain(finished(*caller)) for caller in late} == {new}
    assert {plain(finished(*caller)) for caller in early} <= {old, new}
    assert plain(chain.resolve("TOKEN")) == new


# -- the same race through a real server ------------------------------------------------------


class HoldingProxy(TCPProxy):
    """Holds the server's next answer (once ``armed``; every answer while
    ``hold_all``) until ``go`` is set.

    The server has already read the secret when its answer is held, so the
    held answer carries the value from before the rotation.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(upstream)
        self.armed = threading.Event()
        self.hold_all = False
        self.holding = threading.Event()
        self.go = threading.Event()
        self.held = 0
        self._held = threading.Condition()

    def _answered(self, chunk: bytes) -> None:
        if self.hold_all or self.armed.is_set():
            self.armed.clear()
            with self._held:
                self.held += 1
                self._held.notify_all()
            self.holding.set()
            self.go.wait(WAIT)

    def wait_held(self, count: int) -> None:
        with self._held:
            assert self._held.wait_for(lambda: self.held >= count, WAIT), f"{self.held} of {count} held"


def held_backend(
    kind: str, request: pytest.FixtureRequest
) -> tuple[Any, HoldingProxy, Callable[[str, str], None]]:
    """``kind`` on its real server behind a :class:`HoldingProxy`, and how to rotate a secret there."""
    if kind == "vault":
        from tests.servers.openbao import OpenBao

        openbao: OpenBao = request.getfixturevalue("openbao")
        host, port = openbao.url.removeprefix("http://").split(":")
        upstream = (host, int(port))
    else:  # in front of the suite's counting proxy, so the backend still counts requests
        counting: TCPProxy = request.getfixturevalue("moto_proxy")
        upstream = ("127.0.0.1", counting.port)
    proxy = HoldingProxy(upstream).start()
    request.addfinalizer(proxy.stop)
    request.addfinalizer(proxy.go.set)
    option = "url" if kind == "vault" else "endpoint_url"
    # Request timeouts and the deadline longer than any hold: a held answer must
    # not turn into a client-side timeout and a retry that reads the new value.
    backend = make_backend(kind, request, timeout=4 * WAIT, **{option: proxy.url})
    if kind == "vault":
        rotate = backend.put
    else:
        client, prefix = backend.extras["client"], backend.extras["prefix"]

        def rotate(name: str, value: str) -> None:
            client.put_secret_value(SecretId=prefix + name, SecretString=value)

    return backend, proxy, rotate


@pytest.mark.parametrize(
    ("kind", "many"),
    [("vault", False), ("aws-sm", False), ("aws-sm", True)],
    ids=["vault", "aws-sm", "aws-sm-batch"],
)
def test_invalidate_during_a_read_through_the_real_server(
    kind: str, many: bool, request: pytest.FixtureRequest
) -> None:
    backend, proxy, rotate = held_backend(kind, request)
    old, new, warm, other = canary(), canary(), canary(), canary()
    backend.put("WARM", warm)
    backend.put("TOKEN", old)
    backend.put("OTHER", other)
    chain = backend.chain(cache_ttl=3600, deadline=4 * WAIT)
    assert plain(chain.resolve("WARM")) == warm  # client built, credentials read: only reads from here on

    def lookup() -> str:
        if many:
            got = chain.resolve_many(["TOKEN", "OTHER"])
            assert plain(got["OTHER"]) == other
            return plain(got["TOKEN"])
        return plain(chain.resolve("TOKEN"))

    proxy.clear()
    proxy.armed.set()
    before, before_outcome = in_thread(lookup)
    assert proxy.holding.wait(WAIT), "the read never reached the server"
    assert proxy.count(lambda r: "/TOKEN" in r.target or b"TOKEN" in r.body) == 1
    rotate("TOKEN", new)
    chain.invalidate("TOKEN")
    if many:  # else the next batch would rightly wait for OTHER, still held in the old one
        chain.invalidate("OTHER")
    assert lookup() == new  # its own read: the held one is not joined
    assert before.is_alive()
    proxy.go.set()
    assert finished(before, before_outcome) == old
    reads = backend.calls("TOKEN")
    for _ in range(3):
        assert plain(chain.resolve("TOKEN")) == new
        assert plain(chain.resolve_many(["TOKEN"])["TOKEN"]) == new  # the cache itself, no fast path
    assert backend.calls("TOKEN") == reads, "the new value is the cached one"
    chain.close()


# -- close() while lookups are under way -------------------------------------------------------


CLOSE_SHAPES = {
    "pool": {"concurrent": True, "batches": False},
    "batch": {"concurrent": True, "batches": True},
    "sequential": {"concurrent": False, "batches": False},
}


@pytest.mark.parametrize("shape", sorted(CLOSE_SHAPES))
def test_close_while_64_threads_call_resolve_many(shape: str, released: list[Gate]) -> None:
    """Every name misses in the first source (held at its gate until after the
    close) and is in the second, so every caller is still under way when
    ``close()`` runs: each must get ``ChainClosedError`` and the second source
    must never be asked."""
    callers, per_caller = 64, 4
    values = {f"N{i:03d}": canary() for i in range(callers * per_caller)}
    first = Rotating(name="first", **CLOSE_SHAPES[shape])
    second = Rotating(name="second", **CLOSE_SHAPES[shape])
    released.append(first.gate)
    second.values.update(values)
    chain = Chain([first, second], cache_ttl=3600, max_workers=8, deadline=WAIT)
    names = sorted(values)
    start = threading.Barrier(callers + 1)
    outcomes: list[Any] = [None] * callers

    def caller(number: int) -> None:
        mine = names[number * per_caller : (number + 1) * per_caller]
        start.wait(WAIT)
        try:
            got = chain.resolve_many(mine)
            outcomes[number] = {name: plain(value) for name, value in got.items()}
        except BaseException as error:
            outcomes[number] = error

    first.gate.close()
    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(callers)]
    for thread in threads:
        thread.start()
    start.wait(WAIT)
    first.gate.wait_for(4)  # lookups are under way, the rest are queued or on their way
    chain.close()
    first.gate.release()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a caller hung after close()"

    wrong = [o for o in outcomes if not isinstance(o, ChainClosedError)]
    assert wrong == [], [o if isinstance(o, dict) else f"{type(o).__name__}: {o}" for o in wrong[:3]]
    for error in outcomes:
        assert isinstance(error, AuthChainError)
        assert "closed" in str(error)
        shown = "".join(traceback.format_exception(error))
        assert not any(value in shown for value in values.values())
        assert "cannot schedule new futures" not in shown
    assert second.calls == 0, "nothing was asked after close(): no source was reopened"
    assert first.calls <= callers * per_caller
    assert first.closed >= 1
    assert second.closed >= 1


def test_a_closed_chain_refuses_every_verb_and_reopens_nothing() -> None:
    value = canary()
    source = Rotating()
    source.values["TOKEN"] = value
    chain = Chain([Unavailable(), source], cache_ttl=3600)
    assert plain(chain.resolve("TOKEN")) == value  # remembered: the fast path would answer
    assert plain(chain.resolve_many(["TOKEN", "TOKEN"])["TOKEN"]) == value
    chain.close()
    chain.close()  # twice is fine
    calls = source.calls
    attempts: list[Callable[[], object]] = [
        lambda: chain.resolve("TOKEN"),
        lambda: chain.resolve("TOKEN", default=None),
        lambda: chain.resolve("TOKEN", explicit="given"),
        lambda: chain.resolve("rotating://TOKEN"),
        lambda: chain.resolve_many(["TOKEN", "OTHER"]),
        lambda: chain.resolve_many(["TOKEN"], default=None),
        lambda: chain.explain("TOKEN"),
        chain.check,
    ]
    for attempt in attempts:
        with pytest.raises(ChainClosedError) as raised:
            attempt()
        assert value not in "".join(traceback.format_exception(raised.value))
    with pytest.raises(ChainClosedError), chain:
        pass  # a new ``with`` does not reopen it
    assert source.calls == calls
    chain.invalidate("TOKEN")  # forgetting is harmless on a closed chain
    chain.clear_cache()


def test_the_pool_threads_end_after_close() -> None:
    source = Rotating()
    source.values.update({"A": canary(), "B": canary(), "C": canary()})
    chain = Chain([source], max_workers=3)
    chain.resolve_many(["A", "B", "C"])
    pool = chain._pool
    assert pool is not None
    workers = list(pool._threads)
    assert workers
    chain.close()
    with pytest.raises(ChainClosedError):
        chain.resolve_many(["A", "B", "C"])
    assert chain._pool is None, "no new pool after close()"
    deadline = time.monotonic() + WAIT
    while any(thread.is_alive() for thread in workers):
        assert time.monotonic() < deadline, "close() left the pool's threads running"
        threading.Event().wait(0.01)


def test_close_during_a_lookup_that_then_fails_is_still_chain_closed(released: list[Gate]) -> None:
    """A backend error caused by the close (its client was shut under it) is reported as the close."""
    source = Rotating()
    released.append(source.gate)
    chain = Chain([source], cache_ttl=3600, deadline=WAIT)
    source.gate.close()
    caller, outcome = in_thread(lambda: chain.resolve("MISSING"))
    source.gate.wait_for(1)
    chain.close()
    source.gate.release()
    with pytest.raises(ChainClosedError):
        finished(caller, outcome)
    with pytest.raises(ChainClosedError):
        chain.resolve("MISSING", default=None)
    assert not isinstance(ChainClosedError("x"), (SecretNotFound, BackendError))


@pytest.mark.parametrize("verb", ["resolve", "resolve_many", "explain"])
def test_reset_default_chain_under_a_running_call_moves_it_to_the_new_default(
    verb: str, released: list[Gate]
) -> None:
    """``reset_default_chain()`` closes the old default while another thread uses
    it: the module-level call is made again on the new default, not failed."""
    import authchain
    from authchain._default import reset_default_chain, set_default_chain

    value = canary()
    held = Rotating(name="held")
    released.append(held.gate)
    old_default = Chain([held, Rotating(name="second")], deadline=WAIT)
    new_source = Rotating(name="fresh")
    new_source.values["TOKEN"] = value
    new_default = Chain([new_source], deadline=WAIT)
    calls: dict[str, Callable[[], Any]] = {
        "resolve": lambda: plain(authchain.resolve("TOKEN")),
        "resolve_many": lambda: plain(authchain.resolve_many(iter(["TOKEN"]))["TOKEN"]),
        "explain": lambda: authchain.explain("TOKEN").winner,
    }
    previous = set_default_chain(old_default)
    try:
        held.gate.close()
        caller, outcome = in_thread(calls[verb])
        held.gate.wait_for(1)
        reset_default_chain()  # closes old_default under the call
        set_default_chain(new_default)
        held.gate.release()
        got = finished(caller, outcome)
        if verb == "explain":
            assert got is not None
            assert got.source == "fresh"
        else:
            assert got == value
        assert new_source.calls == 1
        # A chain passed by the caller is not swapped for another one.
        with pytest.raises(ChainClosedError):
            authchain.resolve("TOKEN", chain=old_default)
    finally:
        set_default_chain(previous)
        new_default.close()


def test_close_while_threads_read_from_the_real_server(request: pytest.FixtureRequest) -> None:
    """OpenBao behind a proxy that holds every answer: close() while 16 callers'
    reads are in flight or queued. Each caller gets its values or
    ChainClosedError, and no request leaves for the server after close()."""
    backend, proxy, _ = held_backend("vault", request)
    values = {f"S{i:02d}": canary() for i in range(32)}
    for name, value in values.items():
        backend.put(name, value)
    backend.put("WARM", "warm-value")
    chain = backend.chain(cache_ttl=3600, deadline=4 * WAIT, max_workers=8)
    assert plain(chain.resolve("WARM")) == "warm-value"
    names = sorted(values)
    callers = 16
    start = threading.Barrier(callers + 1)
    outcomes: list[Any] = [None] * callers

    def caller(number: int) -> None:
        mine = names[number * 2 : number * 2 + 2]
        start.wait(WAIT)
        try:
            outcomes[number] = {k: plain(v) for k, v in chain.resolve_many(mine).items()}
        except BaseException as error:
            outcomes[number] = error

    proxy.hold_all = True
    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(callers)]
    for thread in threads:
        thread.start()
    start.wait(WAIT)
    proxy.wait_held(8)  # every pool thread is parked in a read; the other reads are queued
    sent = len(proxy.requests)
    chain.close()
    proxy.go.set()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a caller hung after close()"
    assert len(proxy.requests) == sent, "a read was sent after close()"
    closed = [o for o in outcomes if isinstance(o, ChainClosedError)]
    answered = [o for o in outcomes if isinstance(o, dict)]
    assert len(closed) + len(answered) == callers, [type(o).__name__ for o in outcomes]
    assert closed, "the queued reads were refused"
    for number, outcome in enumerate(outcomes):
        if isinstance(outcome, dict):
            assert outcome == {name: values[name] for name in names[number * 2 : number * 2 + 2]}
    for error in closed:
        shown = "".join(traceback.format_exception(error))
        assert not any(value in shown for value in values.values())


def test_generations_stay_bounded_when_many_keys_are_invalidated() -> None:
    """Invalidating a new key per request must not grow the cache's bookkeeping
    without bound; folding it into one cache-wide mark still refuses every
    answer fetched before the invalidations."""
    from authchain._cache import _MAX_INVALIDATED, TTLCache

    cache: TTLCache[str] = TTLCache(time.monotonic)
    since = cache.generation()  # a fetch of "kept" starts
    for number in range(3 * _MAX_INVALIDATED):
        cache.invalidate(("src", f"key-{number}"))
    assert len(cache._invalidated) <= _MAX_INVALIDATED
    assert cache.put(("src", "key-5"), "old", 60, since=since) is False
    assert cache.put(("src", "key-5"), "new", 60, since=cache.generation()) is True
    assert cache.get(("src", "key-5")) is not None
    later = cache.generation()
    cache.invalidate(("src", "other"))
    assert cache.put(("src", "kept"), "value", 60, since=later) is True, "only the invalidated key is refused"


# -- the same through aresolve / aresolve_many (authchain._async) ------------------------------


@pytest.mark.parametrize("forget", sorted(FORGET))
@pytest.mark.parametrize("verb", ["aresolve", "aresolve_many"])
def test_an_async_fetch_from_before_the_invalidation_is_not_cached(
    forget: str, verb: str, released: list[Gate]
) -> None:
    """The coroutine's fetch runs on the async pool: the generation check holds there too."""
    import asyncio

    old, new = canary(), canary()
    source = Rotating(batches=verb == "aresolve_many")
    released.append(source.gate)
    chain = Chain([source], cache_ttl=3600, deadline=WAIT)
    source.values["TOKEN"] = old

    async def ask() -> str:
        if verb == "aresolve":
            return plain(await chain.aresolve("TOKEN"))
        return plain((await chain.aresolve_many(["TOKEN"]))["TOKEN"])

    async def scenario() -> list[str]:
        source.gate.close(only={1})
        before = asyncio.ensure_future(ask())
        await asyncio.to_thread(source.gate.wait_for, 1)  # the old answer is on its way back
        source.values["TOKEN"] = new
        FORGET[forget](chain, "TOKEN")
        source.gate.release()
        assert await asyncio.wait_for(before, WAIT) == old
        return [await asyncio.wait_for(ask(), WAIT) for _ in range(3)]

    try:
        assert asyncio.run(scenario()) == [new] * 3, "the pre-rotation value came back from the cache"
        assert plain(chain.resolve("TOKEN")) == new
        assert source.calls == 2, "one new fetch, then the new value is cached"
    finally:
        chain.close()


@pytest.mark.parametrize("verb", ["aresolve", "aresolve_many"])
def test_close_while_64_coroutines_await_lookups(verb: str, released: list[Gate]) -> None:
    """``close()`` from another thread while 64 coroutines wait: each gets its answer or a
    ``ChainClosedError``, never ``RuntimeError`` from the shut-down pool, a cancellation or a hang."""
    import asyncio

    callers = 64
    values = {f"N{i:03d}": canary() for i in range(callers)}
    first = Rotating(name="first", batches=verb == "aresolve_many")
    second = Rotating(name="second", batches=verb == "aresolve_many")
    released.append(first.gate)
    second.values.update(values)
    chain = Chain([first, second], cache_ttl=3600, deadline=WAIT, async_workers=8)
    names = sorted(values)

    async def one(number: int) -> Any:
        if verb == "aresolve":
            return await chain.aresolve(names[number])
        return await chain.aresolve_many(names[number : number + 4])

    async def scenario() -> list[Any]:
        first.gate.close()
        tasks = [asyncio.ensure_future(one(number)) for number in range(callers)]
        await asyncio.to_thread(first.gate.wait_for, 4)  # lookups are under way, more are queued
        await asyncio.to_thread(chain.close)
        first.gate.release()
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
        return list(done)

    outcomes = asyncio.run(scenario())
    wrong = [o for o in outcomes if not isinstance(o, ChainClosedError)]  # every name waits in `first`
    assert wrong == [], [o if isinstance(o, dict) else f"{type(o).__name__}: {o}" for o in wrong[:3]]
    for outcome in outcomes:
        shown = "".join(traceback.format_exception(outcome))
        assert not any(value in shown for value in values.values())
        assert "cannot schedule new futures" not in shown
    assert second.calls == 0, "nothing was asked after close(): no source was reopened"
