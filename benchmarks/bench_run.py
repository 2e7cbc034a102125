"""``authchain run`` streaming binary output without newlines (issue 13, item 2).

The child writes random bytes (incompressible, like ``pg_dump -Fc`` or a
compressed ``tar``: no newline to cut at) and ``authchain run`` copies them
through its masker, with one generated value resolved from a ``.env``
(``DB_PASSWORD=dotenv://.env#DB``) so the masker has real forms to look for.
The baseline is the same stream piped through ``cat`` instead, in the same
round (the two alternate, rotating order; the table shows medians). Both
outputs are read to the end by the same counting reader here, which checks
every byte arrived.

Rows: the 128 MB target (≤ 2× ``cat``), the peak RSS of the ``authchain``
process at 16 and 128 MB (bounded: the same few MB whatever the size), the
time at 16/64/128 MB (linear), and, for context, the pure overhead with a
producer that costs nothing (a file in the page cache through ``cat``), where
the interpreter's start-up alone is larger than ``cat``'s whole run.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._harness import ROOT, Row, fmt_bytes, fmt_ratio, fmt_time, main, verdict

MB = 1 << 20


def _drain(stream: object, counted: list[int]) -> None:
    fd = stream.fileno()  # type: ignore[attr-defined]
    while True:
        chunk = os.read(fd, MB)
        if not chunk:
            break
        counted[0] += len(chunk)


def _timed(
    commands: Sequence[Sequence[str]], folder: Path, environment: dict[str, str]
) -> tuple[float, int, int]:
    """Run ``commands`` as a pipeline; return (seconds, bytes out, peak RSS of the first, bytes)."""
    counted = [0]
    started = time.perf_counter()
    processes: list[subprocess.Popen[bytes]] = []
    upstream = None
    for number, command in enumerate(commands):
        last = number == len(commands) - 1
        process = subprocess.Popen(
            list(command),
            cwd=folder,
            env=environment,
            stdin=upstream,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if not last else None,
        )
        if upstream is not None:
            upstream.close()  # the next process holds it now
        upstream = process.stdout
        processes.append(process)
    reader = threading.Thread(target=_drain, args=(upstream, counted))
    reader.start()
    peak = 0
    for number, process in enumerate(processes):
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if number == 0:
            peak = usage.ru_maxrss * 1024  # kilobytes on Linux
    reader.join()
    elapsed = time.perf_counter() - started
    for process in processes:
        if process.returncode != 0:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
    return elapsed, counted[0], peak


def _producer(size: int, source: str) -> list[str]:
    return ["head", "-c", str(size), source]


def run(quick: bool) -> list[Row]:
    if sys.platform != "linux":
        return [Row("`run` streaming 128 MB", "", "", "", "", "skipped", "needs Linux (/dev/urandom, wait4)")]
    sizes = (8 * MB,) if quick else (16 * MB, 64 * MB, 128 * MB)
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="authchain-bench-run-") as name:
        folder = Path(name)
        (folder / ".env").write_text(f"DB={secrets.token_urlsafe(24)}\n", encoding="utf-8")
        environment = {key: value for key, value in os.environ.items() if not key.startswith("AUTHCHAIN_")}
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
        environment["DB_PASSWORD"] = "dotenv://.env#DB"  # noqa: S105 - a reference, not a value
        authchain = [sys.executable, "-m", "authchain.cli", "run", "--"]
        results: dict[tuple[str, int], list[tuple[float, int]]] = {}
        for size in sizes:
            produce = _producer(size, "/dev/urandom")
            cases = {
                "run": [[*authchain, *produce]],
                "cat": [produce, ["cat"]],
            }
            for number in range(rounds if size == sizes[-1] else 1):
                order = list(cases)[number % 2 :] + list(cases)[: number % 2]
                for case in order:
                    seconds, count, peak = _timed(cases[case], folder, environment)
                    if count != size:
                        raise RuntimeError(f"{case}: {count} bytes arrived of {size}")
                    results.setdefault((case, size), []).append((seconds, peak))
        # Context: a producer that costs nothing (a page-cached file).
        largest = sizes[-1]
        blob = folder / "blob.bin"
        with blob.open("wb") as handle:
            for _ in range(largest // MB):
                handle.write(os.urandom(MB))
        file_cases = {"run": [[*authchain, "cat", str(blob)]], "cat": [["cat", str(blob)], ["cat"]]}
        for number in range(rounds):
            order = list(file_cases)[number % 2 :] + list(file_cases)[: number % 2]
            for case in order:
                seconds, count, peak = _timed(file_cases[case], folder, environment)
                if count != largest:
                    raise RuntimeError(f"{case}: {count} bytes arrived of {largest}")
                results.setdefault((f"file-{case}", largest), []).append((seconds, peak))

    def median(case: str, size: int, index: int = 0) -> float:
        values = sorted(item[index] for item in results[(case, size)])
        return values[len(values) // 2]

    largest, smallest = sizes[-1], sizes[0]
    label = f"{largest // MB} MB"
    subject, baseline = median("run", largest), median("cat", largest)
    ratio = subject / baseline
    rss_small, rss_large = median("run", smallest, 1), median("run", largest, 1)
    rows = [
        Row(
            f"`run` streaming {label} of binary output (no newlines)",
            f"{fmt_time(subject)} ({largest / subject / MB:.0f} MB/s)",
            f"same stream through `cat` {fmt_time(baseline)}",
            f"{fmt_ratio(ratio)} cat",
            "≤ 2× cat",
            verdict(ratio <= 2),
            f"child `head -c {largest} /dev/urandom`, one generated value registered; "
            f"each of {rounds} rounds: {', '.join(fmt_time(t) for t, _ in results[('run', largest)])} vs "
            f"{', '.join(fmt_time(t) for t, _ in results[('cat', largest)])}",
        )
    ]
    if not quick:
        rows.append(
            Row(
                "`run` peak memory, 16 MB vs 128 MB streamed",
                f"peak RSS {fmt_bytes(rss_small)} / {fmt_bytes(rss_large)}",
                "—",
                "—",
                "bounded (+ < 8 MB from 16 to 128 MB)",
                verdict(rss_large - rss_small < 8e6),
                "RSS of the authchain process (wait4); before the fix the pending buffer held the whole "
                "output (675 MB at 128 MB)",
            )
        )
        times = {size: median("run", size) for size in sizes}
        per_mb = [times[size] / (size / MB) for size in sizes]
        rows.append(
            Row(
                "`run` cost by size (16 / 64 / 128 MB)",
                " / ".join(fmt_time(times[size]) for size in sizes),
                " / ".join(fmt_time(median("cat", size)) for size in sizes) + " through `cat`",
                "—",
                "linear (before: 4.7 / 39 / 119 s)",
                verdict(times[largest] / times[smallest] < 1.5 * largest / smallest),
                "per MB: " + " / ".join(fmt_time(value) for value in per_mb) + " (start-up included)",
            )
        )
    file_run, file_cat = median("file-run", largest), median("file-cat", largest)
    rows.append(
        Row(
            f"`run` overhead, {label} from the page cache",
            f"`run -- cat FILE` {fmt_time(file_run)} ({largest / file_run / MB:.0f} MB/s)",
            f"`cat FILE`, piped to `cat`, {fmt_time(file_cat)}",
            f"{fmt_ratio(file_run / file_cat)} cat",
            "(a producer that costs nothing, for context)",
            "info",
            "interpreter start-up, import and config are part of it; the masker reads each chunk "
            "in C (bytes.translate, bytes.find) and fingerprints only runs of bytes a form can hold",
        )
    )
    return rows


if __name__ == "__main__":
    main(run)
