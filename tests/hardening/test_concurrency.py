"""Concurrency: 32 threads and 500 asyncio tasks (sync calls in threads, aresolve) on overlapping names.

One chain holds every backend (OpenBao, moto's Secrets Manager and SSM, the
gRPC GCP fake, a file keyring, Prefect's API, the environment and a ``.env``
file), each seeded with names whose values are all different canaries. The
callers resolve random overlapping subsets, one by one and with
``resolve_many``, while a ticker thread moves the chain's (injected) clock
forward by half the TTL at a time, so cached answers expire under their
feet. The promises checked: no exception, never a value that belongs to
another name, and single flight: a key is fetched again only after its TTL
has run out, so no backend is asked for a name more often than once per TTL
of clock time (plus the first fetch), however many callers wanted it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from authchain import Chain
from authchain.backends.env.source import EnvSource
from authchain.sources.base import Source
from authchain.testing import canary
from tests.hardening.conftest import BACKENDS, Backend, make_backend

pytestmark = pytest.mark.timeout(120)

TTL = 10.0
PER_BACKEND = 3


class TickingClock:
    """The chain's clock: it only moves when :meth:`tick` moves it (TTL/2 at a time)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.ticks = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        with self._lock:
            self.now += TTL / 2
            self.ticks += 1

    def most_fetches(self) -> int:
        """A key is fetched again only after TTL of clock time: at most this many fetches."""
        return self.ticks // 2 + 1


class Fetches:
    """When (on the chain's clock) each source was asked for each key."""

    def __init__(self) -> None:
        self.times: dict[tuple[str, Any], list[float]] = {}
        self.local: set[str] = set()
        self._lock = threading.Lock()

    def watch(self, source: Source, clock: TickingClock) -> None:
        get, get_many = source.get, source.get_many
        if source.is_local():
            self.local.add(source.name)

        def record(key: Any) -> None:
            with self._lock:
                self.times.setdefault((source.name, key), []).append(clock())

        def watched_get(key: Any) -> Any:
            record(key)
            return get(key)

        def watched_get_many(keys: Any) -> Any:
            keys = list(keys)
            for key in keys:
                record(key)
            return get_many(keys)

        source.get = watched_get  # type: ignore[method-assign]
        source.get_many = watched_get_many  # type: ignore[method-assign]

    def too_close(self) -> list[str]:
        """Keys asked for twice within one TTL of clock time: single flight + TTL forbid it.

        Sources that answer locally (``is_local()``: env, .env) are left out: the
        chain reads them without single flight on purpose (nothing to share,
        see ``Chain._load_local``), so callers that miss together each read.
        """
        found = []
        with self._lock:
            for (source, key), times in self.times.items():
                if source in self.local:
                    continue
                ordered = sorted(times)
                gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
                if any(gap < TTL for gap in gaps):
                    found.append(f"{source} {key!r}: {len(times)} fetches, gaps {gaps}")
        return found


@dataclass
class World:
    backends: list[Backend]
    targets: list[tuple[str, str, Backend | None]] = field(default_factory=list)
    """(what to resolve, the value it must give, the backend it reaches by reference)."""
    bare: list[str] = field(default_factory=list)
    fetches: Fetches = field(default_factory=lambda: Fetches())

    def chain(self, clock: TickingClock) -> Chain:
        sources: list[Source] = [backend.source for backend in self.backends]
        for source in sources:
            self.fetches.watch(source, clock)
        creds = {key: value for backend in self.backends for key, value in backend.creds.items()}
        sources.append(EnvSource(environ=creds, name="creds"))
        return Chain(
            sources, cache_ttl=TTL, negative_ttl=TTL, clock=clock, deadline=3600, max_workers=8, backoff=0.01
        )


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    backends = [make_backend(kind, request) for kind in BACKENDS]
    world = World(backends)
    for backend in backends:
        assert backend.reference is not None
        for number in range(PER_BACKEND):
            name = f"C{number}"
            value = canary(f"{backend.kind}-{name}")
            backend.put(name, value)
            world.targets.append((backend.reference(name), value, backend))
    # Bare names walk every store (each says "not found", negatively cached) down to env/dotenv.
    for backend in backends[-2:]:
        name, value = f"BARE_{backend.kind.upper()}", canary(f"bare-{backend.kind}")
        backend.put(name, value)
        world.targets.append((name, value, None))
        world.bare.append(name)
    return world


@pytest.fixture
def ticking() -> Iterator[Callable[[], TickingClock]]:
    """Start a ticker (every 150 ms) for the clock; stopped at the end of the test."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start() -> TickingClock:
        clock = TickingClock()

        def run() -> None:
            while not stop.wait(0.15):
                clock.tick()

        thread = threading.Thread(target=run, name="ticker", daemon=True)
        thread.start()
        threads.append(thread)
        return clock

    yield start
    stop.set()
    for thread in threads:
        thread.join(5)


class Checker:
    """Collects exceptions and wrong values from every caller, without printing values."""

    def __init__(self, world: World) -> None:
        self.expected = {text: value for text, value, _ in world.targets}
        self.errors: list[str] = []
        self.wrong: list[str] = []
        self.checked = 0
        self._lock = threading.Lock()

    def check(self, text: str, got: Any) -> None:
        with self._lock:
            self.checked += 1
            if got.get_secret_value() != self.expected[text]:
                self.wrong.append(text)

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.errors.append(f"{type(error).__name__}: {error}")


def call_counts_are_single_flight(world: World, clock: TickingClock) -> None:
    assert world.fetches.times, "fetches were recorded"
    assert world.fetches.too_close() == [], "a key was fetched again before its TTL ran out"
    bound = clock.most_fetches()
    over: list[str] = []
    for backend in world.backends:
        if backend.kind == "dotenv":  # a file read per change, not per name: nothing to count
            continue
        names = [f"C{number}" for number in range(PER_BACKEND)] + world.bare
        for name in names:
            calls = backend.calls(name)
            if calls > bound:
                over.append(f"{backend.kind} {name}: {calls} fetches > {bound}")
    assert over == [], "more fetches than single flight and the TTL allow"


def test_32_threads_resolving_overlapping_names(world: World, ticking: Callable[[], TickingClock]) -> None:
    clock = ticking()
    chain = world.chain(clock)
    checker = Checker(world)
    start = threading.Barrier(32)

    def caller(seed: int) -> None:
        rnd = random.Random(seed)
        start.wait()
        rounds = 0
        # At least 15 rounds each, and on until the TTL has expired several times: a fast
        # machine finishes 15 rounds before the ticker has moved the clock at all.
        while rounds < 15 or (clock.ticks < 5 and time.monotonic() < started + 30):
            rounds += 1
            batch = rnd.sample(world.targets, k=rnd.randint(1, 6))
            try:
                if rnd.random() < 0.35:
                    answers = chain.resolve_many([text for text, _, _ in batch])
                    for text, _, _ in batch:
                        checker.check(text, answers[text])
                else:
                    for text, _, _ in batch:
                        checker.check(text, chain.resolve(text))
            except Exception as error:
                checker.failed(error)

    started = time.monotonic()
    threads = [threading.Thread(target=caller, args=(seed,)) for seed in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not any(thread.is_alive() for thread in threads), "every caller finished"
    assert checker.errors == []
    assert checker.wrong == [], "a name got another name's value"
    assert checker.checked > 32 * 15
    assert clock.ticks >= 4, "the TTL expired under the callers several times"
    call_counts_are_single_flight(world, clock)
    assert time.monotonic() - started < 60
    chain.close()


def test_500_asyncio_tasks_resolving_overlapping_names(
    world: World, ticking: Callable[[], TickingClock]
) -> None:
    clock = ticking()
    chain = world.chain(clock)
    checker = Checker(world)

    async def one(seed: int) -> None:
        rnd = random.Random(seed)
        batch = rnd.sample(world.targets, k=rnd.randint(1, 4))
        texts = [text for text, _, _ in batch]
        try:
            if seed % 4 == 0:
                loop = asyncio.get_running_loop()
                answers = await loop.run_in_executor(None, chain.resolve_many, texts)
                for text in texts:
                    checker.check(text, answers[text])
            elif seed % 4 == 1:
                answers = await chain.aresolve_many(texts)
                for text in texts:
                    checker.check(text, answers[text])
            elif seed % 4 == 2:
                # aresolve and the threads below share the cache and the flights
                for text in texts:
                    checker.check(text, await chain.aresolve(text))
            else:
                for text in texts:
                    checker.check(text, await asyncio.to_thread(chain.resolve, text))
        except Exception as error:
            checker.failed(error)

    async def everyone() -> None:
        for wave in range(5):  # five waves of 100, so the clock ticks between them too
            await asyncio.gather(*(one(wave * 100 + seed) for seed in range(100)))
            await asyncio.sleep(0.05)

    asyncio.run(everyone())
    assert checker.errors == []
    assert checker.wrong == [], "a name got another name's value"
    assert checker.checked >= 500
    call_counts_are_single_flight(world, clock)
    chain.close()


def stampede(chain: Chain, name: str, callers: int = 64) -> list[str]:
    """``callers`` threads released at once on one name, half through ``resolve_many``."""
    results: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(callers)

    def caller(many: bool) -> None:
        start.wait()
        got = chain.resolve_many([name])[name] if many else chain.resolve(name)
        with lock:
            results.append(got.get_secret_value())

    threads = [threading.Thread(target=caller, args=(number % 2 == 0,)) for number in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.parametrize("kind", ["vault", "aws-sm", "gcp-sm"])
def test_single_flight_under_a_stampede_on_one_cold_key(kind: str, request: pytest.FixtureRequest) -> None:
    """64 callers, one cold key, a slow backend: exactly one request reaches the server."""
    backend = make_backend(kind, request)
    value = canary()
    backend.put("COLD", value)
    if kind == "aws-sm":
        backend.extras["proxy"].latency = 0.2
    elif kind == "gcp-sm":
        backend.extras["fake"].delay("AccessSecretVersion", 0.2)
    results = stampede(backend.chain(cache_ttl=60), "COLD")
    assert results == [value] * 64
    assert backend.calls("COLD") == 1, "one request for 64 concurrent callers"
