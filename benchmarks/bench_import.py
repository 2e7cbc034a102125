"""Import cost: ``import authchain`` over a bare interpreter, next to pydantic-settings and Prefect.

Each sample is a fresh interpreter (``subprocess``) timed from the outside
(wall clock of the whole process) and from the inside (``perf_counter``
around the import statement, which leaves out interpreter start-up and so is
the less noisy "extra" number). Rounds alternate bare / authchain /
pydantic-settings / prefect. Byte code is compiled once into a temporary
``PYTHONPYCACHEPREFIX`` by a warm-up run and reused, as an installed package
would (this workplace sets ``PYTHONDONTWRITEBYTECODE``, which would otherwise
make every import compile from source). A last run lists any SDK module that
``import authchain`` loaded, and ``-X importtime`` says where the time goes.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks._harness import Row, fmt_ratio, fmt_time, main, verdict

SDK_PACKAGES = (
    "boto3",
    "botocore",
    "hvac",
    "requests",
    "urllib3",
    "google",
    "grpc",
    "keyring",
    "prefect",
    "httpx",
    "pydantic",
    "dotenv",
)
TARGET_EXTRA = 0.015
FACTS_PYDANTIC_SETTINGS = 0.120
CHILD = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"


def _environment(cache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def _sample(statement: str, env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(wall seconds of the whole interpreter, seconds of the statement inside it)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(statement=statement)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return time.perf_counter() - started, float(out.split()[-1])


def _importtime(env: dict[str, str], cwd: str, runs: int) -> list[tuple[str, float]]:
    """Where ``import authchain`` spends its time, from ``-X importtime`` (median of runs).

    authchain's own modules count their self time (``authchain (own code)``); each
    other module they import first counts its cumulative time under its own
    name (``dataclasses`` includes the ``inspect`` it pulls in).
    """
    totals: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import authchain"],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        per_run: dict[str, float] = collections.defaultdict(float)
        for node in _tree(err):
            if node.name == "authchain":
                _attribute(node, per_run)
        for group, seconds in per_run.items():
            totals[group].append(seconds)
    ranked = sorted(((statistics.median(v), k) for k, v in totals.items()), reverse=True)
    return [(name, seconds) for seconds, name in ranked]


class _Node:
    def __init__(self, name: str, depth: int, self_s: float, cumulative_s: float) -> None:
        self.name, self.depth, self.self_s, self.cumulative_s = name, depth, self_s, cumulative_s
        self.children: list[_Node] = []


def _tree(importtime: str) -> list[_Node]:
    """The import tree (``-X importtime`` prints children before their parent)."""
    pending: list[_Node] = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, label = line[len("import time:") :].split("|")
        depth = (len(label) - len(label.lstrip()) - 1) // 2
        node = _Node(label.strip(), depth, int(self_us) / 1e6, int(cumulative_us) / 1e6)
        while pending and pending[-1].depth > depth:
            node.children.insert(0, pending.pop())
        pending.append(node)
    return pending


def _attribute(node: _Node, totals: dict[str, float]) -> None:
    totals["authchain (own code)"] += node.self_s
    for child in node.children:
        if child.name.startswith("authchain"):
            _attribute(child, totals)
        else:
            totals[child.name] += child.cumulative_s


LIST_NEW = (
    "import sys, json; before = set(sys.modules); import authchain; "
    "print(json.dumps([m for m, mod in sys.modules.items() if m not in before and mod is not None]))"
)


def run(quick: bool) -> list[Row]:
    rounds = 2 if quick else 15
    prefect_rounds = 1 if quick else 5
    with tempfile.TemporaryDirectory(prefix="authchain-bench-pyc-") as cache:
        env = _environment(cache)
        cwd = cache
        added = json.loads(
            subprocess.run(
                [sys.executable, "-c", LIST_NEW], env=env, cwd=cwd, capture_output=True, text=True, check=True
            ).stdout
        )
        sdk = sorted(m for m in added if m.split(".")[0] in SDK_PACKAGES)
        stdlib = [m for m in added if not m.startswith("authchain")]
        statements = {
            "bare": "pass",
            "authchain": "import authchain",
            # What any authchain must load (it logs, and SecretValue is Generic):
            "floor": "import logging, typing",
            # Every module outside authchain that `import authchain` loads, alone:
            "stdlib": "import " + ", ".join(stdlib),
            "pydantic_settings": "import pydantic_settings",
            "prefect": "import prefect",
        }
        for statement in statements.values():  # warm-up: compile byte code into the cache
            _sample(statement, env, cwd)
        wall: dict[str, list[float]] = {label: [] for label in statements}
        inner: dict[str, list[float]] = {label: [] for label in statements}
        labels = list(statements)
        for number in range(rounds):
            shift = number % len(labels)
            for label in labels[shift:] + labels[:shift]:
                if label == "prefect" and number >= prefect_rounds:
                    continue
                outer, inside = _sample(statements[label], env, cwd)
                wall[label].append(outer)
                inner[label].append(inside)
        breakdown = _importtime(env, cwd, 1 if quick else 5)

    med = {label: statistics.median(values) for label, values in inner.items()}
    wall_med = {label: statistics.median(values) for label, values in wall.items()}
    extra = med["authchain"]
    wall_extra = wall_med["authchain"] - wall_med["bare"]
    ok = extra <= TARGET_EXTRA and not sdk
    top = ", ".join(f"{name} {fmt_time(seconds)}" for name, seconds in breakdown[:10])
    # FACTS.md measured `import pydantic_settings` at 120 ms on its machine: the
    # same import here gives a rough speed factor for this (shared) machine.
    scaled = extra * FACTS_PYDANTIC_SETTINGS / med["pydantic_settings"]
    data: dict[str, Any] = {
        "inner": inner,
        "wall": wall,
        "sdk_modules": sdk,
        "stdlib_modules": stdlib,
        "importtime_self": breakdown,
    }
    rows = [
        Row(
            "`import authchain` over `python -c pass`",
            f"+{fmt_time(extra)} (wall +{fmt_time(wall_extra)}); SDK modules: {', '.join(sdk) or 'none'}",
            f"bare interpreter {fmt_time(wall_med['bare'])} (wall)",
            fmt_ratio(wall_med["authchain"] / wall_med["bare"]) + " bare start-up (wall)",
            "≤ 15 ms extra, no SDK module",
            verdict(ok),
            f"modules outside authchain that it loads, imported alone: {fmt_time(med['stdlib'])} "
            f"(`import logging, typing` alone, the floor of any authchain: {fmt_time(med['floor'])}); "
            f"scaled to the FACTS.md machine by pydantic-settings' import time: ≈ {fmt_time(scaled)}; "
            f"where the time goes (-X importtime, median): {top}",
            data,
        ),
        Row(
            "`import authchain` over `import logging, typing`",
            f"+{fmt_time(extra - med['floor'])} (authchain's own share)",
            f"`import logging, typing` alone {fmt_time(med['floor'])}",
            "—",
            "(what no authchain can avoid, for context)",
            "info",
        ),
        Row(
            "`import authchain` vs `import pydantic_settings`",
            f"+{fmt_time(extra)}",
            f"+{fmt_time(med['pydantic_settings'])}",
            fmt_ratio(med["pydantic_settings"] / extra) + " lighter",
            "(peer, for context)",
            "info",
        ),
        Row(
            "`import authchain` vs `import prefect`",
            f"+{fmt_time(extra)}",
            f"+{fmt_time(med['prefect'])}",
            fmt_ratio(med["prefect"] / extra) + " lighter",
            "(peer, for context)",
            "info",
        ),
    ]
    return rows


if __name__ == "__main__":
    main(run)
