"""Each benchmark script runs once in its quick mode, so the scripts do not rot.

Not a performance test: the numbers are ignored, only that every script
runs, starts and stops its own servers, and hands back well-formed rows. The
real run is ``make bench`` (docs/performance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import BENCHMARKS  # the runner's list: a new benchmark is smoke-tested too

ROOT = Path(__file__).resolve().parent.parent

STATUSES = {"met", "MISSED", "met (proposed)", "MISSED (proposed)", "info", "skipped"}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_in_quick_mode(name: str, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert rows, "a benchmark must report at least one row"
    for row in rows:
        assert row["measure"], row
        assert row["status"] in STATUSES, row
    assert "| measure" in result.stdout  # the table was printed


def test_run_lists_every_benchmark() -> None:
    from benchmarks.run import BENCHMARKS as listed

    assert set(listed) == set(BENCHMARKS)
    on_disk = {path.stem for path in (ROOT / "benchmarks").glob("bench_*.py")}
    assert on_disk == set(BENCHMARKS)
