"""Client factories: a second ``aws_client("s3")`` against the first build.

Each sample is a fresh interpreter (the client cache is per process): boto3
and authchain are imported first (import cost is the import row's business,
not this one's), then the first ``aws_client("s3")`` is timed, then the
second call (``timeit``, median of repeats), then a rebuild after
``authchain.clients.clear()`` (botocore's parsed service data is still
loaded then, so this is the cheapest a real build gets). No request is
sent: building a client needs no server. boto3 is confined to made-up keys,
no config files and no metadata service.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile

from benchmarks._harness import ROOT, Row, aws_environment, fmt_ratio, fmt_time, main, verdict

CHILD = """
import json, os, statistics, sys, time, timeit
sys.path.insert(0, {root!r})
import boto3, authchain, authchain.clients
from authchain.clients import aws_client, clear
started = time.perf_counter()
first = aws_client("s3")
first_s = time.perf_counter() - started
assert aws_client("s3") is first
timer = timeit.Timer('aws_client("s3")', globals=globals())
number = {number} or timer.autorange()[0]
second = statistics.median(timer.timeit(number) / number for _ in range({repeat}))
rebuilds = []
for _ in range({rebuilds}):
    clear()
    started = time.perf_counter()
    aws_client("s3")
    rebuilds.append(time.perf_counter() - started)
print(json.dumps([first_s, second, statistics.median(rebuilds)]))
"""


def run(quick: bool) -> list[Row]:
    samples: list[list[float]] = []
    code = CHILD.format(
        root=str(ROOT), number=50 if quick else 0, repeat=2 if quick else 7, rebuilds=1 if quick else 5
    )
    with aws_environment(), tempfile.TemporaryDirectory(prefix="authchain-bench-") as folder:
        for _ in range(1 if quick else 5):
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, check=True
            ).stdout
            samples.append(json.loads(out.splitlines()[-1]))
    first = statistics.median(sample[0] for sample in samples)
    second = statistics.median(sample[1] for sample in samples)
    rebuild = statistics.median(sample[2] for sample in samples)
    rows = [
        Row(
            'second `aws_client("s3")`',
            fmt_time(second),
            f"first build {fmt_time(first)} (fresh process, boto3 imported)",
            fmt_ratio(first / second) + " faster",
            "≥ 1000× faster",
            verdict(first >= 1000 * second),
            f"a rebuild after clear() (service data already parsed) takes {fmt_time(rebuild)}: "
            f"{fmt_ratio(rebuild / second)} the cached call",
            {"first": [s[0] for s in samples], "second": [s[1] for s in samples], "rebuild": rebuild},
        ),
    ]
    return rows


if __name__ == "__main__":
    main(run)
