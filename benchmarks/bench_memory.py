"""Memory: the resident-set growth of 10 000 cached secrets.

A fresh interpreter generates 10 000 values of 32 characters and holds them
in the mapping an ``EnvSource`` reads (so the backend's own copy is counted
before the start), resolves every name once through a ``Chain`` (default
``cache_ttl``), collects garbage and reports the RSS delta (``/proc``). A
second interpreter repeats it under ``tracemalloc`` to say which module holds
the memory (left out in ``--quick``). What is cached per secret: the cache
entry, the ``Found`` with its ``SecretValue`` and detail text, and the
masker's registration of the value's encoded forms.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks._harness import ROOT, Row, fmt_bytes, main, verdict

COUNT = 10_000
TARGET = 20e6

CHILD = """
import gc, json, secrets, sys, time
sys.path.insert(0, {root!r})
from benchmarks._harness import rss_bytes
from authchain import Chain
from authchain.backends.env.source import EnvSource
trace = {trace}
values = {{f"BENCH_SECRET_{{n:05d}}": secrets.token_urlsafe(24) for n in range({count})}}
chain = Chain([EnvSource(environ=values)])
chain.resolve("BENCH_SECRET_00000")
chain.clear_cache()
if trace:
    import tracemalloc
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
gc.collect()
rss_before = rss_bytes()
started = time.perf_counter()
for name in values:
    chain.resolve(name)
elapsed = time.perf_counter() - started
gc.collect()
rss_after = rss_bytes()
top = []
if trace:
    after = tracemalloc.take_snapshot()
    for stat in after.compare_to(before, "filename")[:6]:
        frame = stat.traceback[0]
        path = frame.filename.replace(chr(92), "/")
        inside = "/authchain/" in path
        name = "authchain/" + path.rsplit("/authchain/", 1)[1] if inside else path.rsplit("/", 1)[-1]
        top.append([name, stat.size_diff])
print(json.dumps({{"delta": rss_after - rss_before, "seconds": elapsed, "top": top}}))
"""


def _child(trace: bool) -> dict[str, object]:
    code = CHILD.format(root=str(ROOT), count=COUNT, trace=trace)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result: dict[str, object] = json.loads(out.splitlines()[-1])
    return result


def run(quick: bool) -> list[Row]:
    runs = [_child(trace=False) for _ in range(1 if quick else 3)]
    deltas = sorted(float(r["delta"]) for r in runs)  # type: ignore[arg-type]
    delta = deltas[len(deltas) // 2]
    seconds = sorted(float(r["seconds"]) for r in runs)[len(runs) // 2]  # type: ignore[arg-type]
    note = f"{COUNT} cold resolves took {seconds:.2f} s ({seconds / COUNT * 1e6:.0f} µs each)"
    data: dict[str, object] = {"deltas": deltas}
    if not quick:
        traced = _child(trace=True)
        top = traced["top"]
        shown = ", ".join(f"{name} {fmt_bytes(size)}" for name, size in top)  # type: ignore[attr-defined]
        note += f"; tracemalloc, by module: {shown}"
        data["tracemalloc"] = top
    return [
        Row(
            f"memory: {COUNT:,} cached secrets",
            f"RSS +{fmt_bytes(delta)} ({delta / COUNT:,.0f} bytes per secret)",
            "—",
            "—",
            "< 20 MB",
            verdict(delta < TARGET),
            note,
            data,
        )
    ]


if __name__ == "__main__":
    main(run)
