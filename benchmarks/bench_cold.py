"""Cold start: the first ``resolve`` of a fresh process, and how it grows with the environment.

Every sample is a fresh interpreter timed from the outside (wall clock of the
whole process, start-up included), with byte code compiled once into a
temporary ``PYTHONPYCACHEPREFIX`` by a warm-up run, as an installed package
would have it. Subjects and baselines alternate round by round (rotating
order); the table shows medians and differences of medians from one run.

The interpreters run in temporary virtual environments built here, offline,
in a second: ``python -m venv --without-pip``, then authchain "installed" as
an installer leaves it (an ``authchain-<version>.dist-info`` with the entry
points of ``pyproject.toml``, a console script, and a ``.pth`` line to this
checkout). The benchmark's own environment is not used directly: its
editable install loads ``pathlib``, ``re`` and ``enum`` into *every*
interpreter through a ``.pth`` hook, which would hide what authchain itself
imports.

- The cold-start rows use a venv that also sees every package of the
  running environment (a ``.pth`` line to its site-packages: all extras,
  pydantic-settings, about 200 distributions).
- The growth row uses venvs of 50, 180 and 400 distributions: authchain and
  small generated ones (a package, a ``dist-info`` with ``METADATA``,
  ``RECORD`` and, for every other one, an ``entry_points.txt``), and compares
  the first ``resolve`` with what one scan of every distribution's entry
  points costs in the same venv (what it cost before issue 18).

``AUTHCHAIN_BENCH_ROOT`` points the venvs at another checkout of authchain;
``AUTHCHAIN_BENCH_BEFORE`` adds one (say, the commit before a change) whose
first ``resolve`` and CLI run in the same rounds, for a before/after in one run.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from benchmarks._harness import ROOT, Row, fmt_time, main, verdict


def _signed(seconds: float) -> str:
    return ("+" if seconds >= 0 else "−") + fmt_time(abs(seconds))


TARGET_RESOLVE = 0.025
TARGET_CLI = 0.040
# FACTS.md: `import pydantic_settings` took 120 ms on the machine the targets come from; the
# same import here gives a rough speed factor for this (shared, often busy) machine.
FACTS_PYDANTIC_SETTINGS = 0.120
SIZES = (50, 180, 400)
NAME = "AUTHCHAIN_BENCH_COLD"
# Loaded on the first-resolve path before issue 18; each is reported if it is again.
HEAVY = ("dataclasses", "pathlib", "email", "importlib.metadata", "inspect", "tempfile", "hashlib", "shlex")

PYDANTIC = (
    "from pydantic import SecretStr\n"
    "from pydantic_settings import BaseSettings\n"
    "class S(BaseSettings):\n"
    f"    {NAME.lower()}: SecretStr\n"
    f"S().{NAME.lower()}.get_secret_value()"
)
STATEMENTS = {
    "bare": "pass",
    "os.environ": f"import os; os.environ[{NAME!r}]",
    "resolve": f"import authchain; authchain.resolve({NAME!r})",
    "import": "import authchain",
    "pydantic-settings": PYDANTIC,
    "pydantic-import": "import pydantic_settings",  # for the machine-speed factor (FACTS.md)
}
CHECK_MODULES = (
    "import sys, authchain; authchain.resolve({name!r}); "
    "print(' '.join(m for m in {heavy!r} if m in sys.modules) or '-'); "
    "import importlib.metadata as md; print(len(list(md.distributions())))"
)
SCAN = "import importlib.metadata as md; md.entry_points(group='authchain.sources')"
# Counts the metadata files a statement opens (deterministic, unlike a time on a busy machine).
COUNT_READS = (
    "import sys\n"
    "reads = []\n"
    "sys.addaudithook(lambda event, args: reads.append(1) if event == 'open' and "
    "'.dist-info' in str(args[0]) else None)\n"
    "{code}\n"
    "print('INNER:', len(reads))"
)


def _root(before: bool = False) -> Path:
    if before:
        return Path(os.environ["AUTHCHAIN_BENCH_BEFORE"]).resolve()
    return Path(os.environ.get("AUTHCHAIN_BENCH_ROOT") or ROOT).resolve()


def _entry_point_text(root: Path) -> str:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = dict(project.get("entry-points", {}))
    groups["console_scripts"] = project.get("scripts", {})
    return "".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items()) + "\n"
        for group, entries in groups.items()
        if entries
    )


def make_venv(folder: Path, *, generated: int, shared: bool, before: bool = False) -> Path:
    """A venv with authchain (this checkout), ``generated`` small distributions and, when
    ``shared``, every package of the running environment; returns its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    root = _root(before)
    version = _version(root)
    info = site / f"authchain-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: authchain\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(_entry_point_text(root))
    (info / "RECORD").write_text("")
    (site / "authchain.pth").write_text(f"{root}\n")  # before shared.pth: this checkout first
    if shared:
        (site / "shared.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for number in range(generated):
        _generated_distribution(site, number)
    script = folder / "bin" / "authchain"
    script.write_text(f"#!{python}\nimport sys\nfrom authchain.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return python


def _version(root: Path) -> str:
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no version in {root / 'pyproject.toml'}")
    return found.group(1)


def _generated_distribution(site: Path, number: int) -> None:
    name = f"benchdist{number:04d}"
    package = site / name
    package.mkdir()
    (package / "__init__.py").write_text(f'"""Generated for the growth benchmark."""\nVALUE = {number}\n')
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: generated\nRequires-Dist: packaging\n"
    )
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    if number % 2 == 0:
        (info / "entry_points.txt").write_text(f"[console_scripts]\n{name} = {name}:main\n")


def _environment(cache: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONPROFILEIMPORTTIME", "VIRTUAL_ENV")
        and not k.startswith("AUTHCHAIN_")
    }
    env["PYTHONPYCACHEPREFIX"] = cache
    env[NAME] = "cold-start-benchmark-value"  # not a secret: a fixed marker value
    return env


def _sample(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, float | None]:
    """(wall seconds, CPU seconds: user + system, and the ``INNER:`` seconds the process
    printed, if it did) of one fresh process.

    CPU time comes from ``wait4``: on a shared machine under load, wall time
    also counts the time the process waited for a core, CPU time does not.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[-1]!r} exited with {process.returncode}")
    inner = None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("INNER:"):
            inner = float(line[len("INNER:") :])
    return wall, usage.ru_utime + usage.ru_stime, inner


def _timed(code: str) -> str:
    """``code`` that also prints how long it took inside the process (no start-up, no exit)."""
    return f"import time as _t; _s = _t.perf_counter()\n{code}\nprint('INNER:', _t.perf_counter() - _s)"


Medians = dict[str, float]


def _rounds(
    commands: dict[str, list[str]], env: dict[str, str], cwd: str, rounds: int
) -> tuple[Medians, Medians, Medians]:
    """Median wall, CPU and inner seconds of each command, rounds interleaved in rotating
    order (after a warm-up run of each, which compiles the byte code)."""
    for command in commands.values():
        _sample(command, env, cwd)
    samples: dict[str, list[tuple[float, float, float | None]]] = {label: [] for label in commands}
    labels = list(commands)
    for number in range(rounds):
        shift = number % len(labels)
        for label in labels[shift:] + labels[:shift]:
            samples[label].append(_sample(commands[label], env, cwd))

    def median(index: int) -> Medians:
        found = {}
        for label, values in samples.items():
            picked = [value[index] for value in values if value[index] is not None]
            if picked:
                found[label] = statistics.median(picked)  # type: ignore[type-var]
        return found

    return median(0), median(1), median(2)


def _check(python: Path, env: dict[str, str], cwd: str) -> tuple[str, int]:
    out = subprocess.run(
        [str(python), "-c", CHECK_MODULES.format(name=NAME, heavy=HEAVY)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return out[0], int(out[1])


def _importtime(python: Path, env: dict[str, str], cwd: str) -> str:
    """The largest cumulative imports of the first resolve (one ``-X importtime`` run)."""
    err = subprocess.run(
        [str(python), "-X", "importtime", "-c", STATEMENTS["resolve"]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    top: list[tuple[int, str]] = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, label = line[len("import time:") :].split("|")
        if label.startswith("  "):  # only top-level imports: each counts its children
            continue
        top.append((int(cumulative), label.strip()))
    top.sort(reverse=True)
    return ", ".join(f"{name} {fmt_time(us / 1e6)}" for us, name in top[:6])


def run(quick: bool) -> list[Row]:
    rounds = 3 if quick else 21
    growth_rounds = 2 if quick else 15
    sizes = SIZES[:2] if quick else SIZES
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="authchain-bench-cold-") as folder:
        base = Path(folder)
        cache, cwd = base / "pyc", base / "cwd"
        cache.mkdir()
        cwd.mkdir()  # no authchain.toml, no .env: the default chain, no config file
        env = _environment(str(cache))
        python = make_venv(base / "full", generated=0, shared=True)
        commands = {label: [str(python), "-c", code] for label, code in STATEMENTS.items()}
        commands["cli"] = [str(base / "full" / "bin" / "authchain"), "resolve", NAME]
        if quick:
            commands.pop("import")
            commands.pop("pydantic-import")
        if os.environ.get("AUTHCHAIN_BENCH_BEFORE"):  # another checkout, measured in the same rounds
            old = make_venv(base / "before", generated=0, shared=True, before=True)
            commands["resolve (before)"] = [str(old), "-c", STATEMENTS["resolve"]]
            commands["cli (before)"] = [str(base / "before" / "bin" / "authchain"), "resolve", NAME]
            if "import" in commands:
                commands["import (before)"] = [str(old), "-c", STATEMENTS["import"]]
        loaded, distributions = _check(python, env, str(cwd))
        wall, cpu, _ = _rounds(commands, env, str(cwd), rounds)
        where = _importtime(python, env, str(cwd))
        rows.extend(_cold_rows(wall, cpu, loaded, distributions, where))
        # All sizes in the same rounds: a change of load hits every size alike.
        growth_commands: dict[str, list[str]] = {}
        counted: dict[int, int] = {}
        reads: dict[int, tuple[float | None, float | None]] = {}
        for size in sizes:
            venv = make_venv(base / f"n{size}", generated=size - 1, shared=False)
            counted[size] = _check(venv, env, str(cwd))[1]
            reads[size] = (
                _sample([str(venv), "-c", COUNT_READS.format(code=STATEMENTS["resolve"])], env, str(cwd))[2],
                _sample([str(venv), "-c", COUNT_READS.format(code=SCAN)], env, str(cwd))[2],
            )
            growth_commands[f"{size}:bare"] = [str(venv), "-c", "pass"]
            growth_commands[f"{size}:resolve"] = [str(venv), "-c", _timed(STATEMENTS["resolve"])]
            growth_commands[f"{size}:scan"] = [str(venv), "-c", _timed(SCAN)]
        g_wall, g_cpu, g_inner = _rounds(growth_commands, env, str(cwd), growth_rounds)
        growth = [
            {
                "distributions": counted[size],
                "resolve": g_inner[f"{size}:resolve"],
                "scan": g_inner[f"{size}:scan"],
                "resolve_cpu": g_cpu[f"{size}:resolve"] - g_cpu[f"{size}:bare"],
                "scan_cpu": g_cpu[f"{size}:scan"] - g_cpu[f"{size}:bare"],
                "bare_wall": g_wall[f"{size}:bare"],
                "resolve_reads": reads[size][0] or 0,
                "scan_reads": reads[size][1] or 0,
            }
            for size in sizes
        ]
    rows.append(_growth_row(growth))
    return rows


def _cold_rows(
    wall: dict[str, float], cpu: dict[str, float], loaded: str, distributions: int, where: str
) -> list[Row]:
    def extra(label: str) -> float:
        return cpu[label] - cpu["bare"]

    def extra_wall(label: str) -> float:
        return wall[label] - wall["bare"]

    def both(label: str) -> str:
        return f"{_signed(extra(label))} CPU (wall {_signed(extra_wall(label))})"

    resolve, cli = extra("resolve"), extra("cli")
    environ, pydantic = extra("os.environ"), extra("pydantic-settings")
    data: dict[str, object] = {"wall": wall, "cpu": cpu, "distributions": distributions, "loaded": loaded}
    context = (
        f"{distributions} distributions visible; medians of fresh processes, byte code cached; "
        f"`python -c pass` {fmt_time(cpu['bare'])} CPU, {fmt_time(wall['bare'])} wall"
    )
    if "import" in cpu:
        context += f"; `import authchain` alone {both('import')}"
    heavy = "none of " + ", ".join(HEAVY) if loaded == "-" else loaded
    if "pydantic-import" in cpu:
        factor = FACTS_PYDANTIC_SETTINGS / extra("pydantic-import")
        context += (
            "; scaled to the FACTS.md machine by `import pydantic_settings` "
            f"({_signed(extra('pydantic-import'))} CPU here, 120 ms there): "
            f"resolve ≈ {fmt_time(resolve * factor)}, CLI ≈ {fmt_time(cli * factor)}"
        )
    if "resolve (before)" in cpu:
        context += (
            f"; the same in the same rounds with AUTHCHAIN_BENCH_BEFORE's checkout: resolve "
            f"{both('resolve (before)')}, CLI {both('cli (before)')}"
            + (f", `import authchain` {both('import (before)')}" if "import (before)" in cpu else "")
        )
    return [
        Row(
            'first `resolve("X")` from env, fresh process, over `python -c pass`',
            both("resolve"),
            f"`import os; os.environ['X']` {both('os.environ')}",
            f"{_signed(resolve - environ)} over os.environ",
            "≤ 25 ms over `python -c pass`",
            verdict(resolve <= TARGET_RESOLVE),
            f"{context}; loaded on the way: {heavy}; where the time goes (-X importtime, one run): {where}",
            data,
        ),
        Row(
            'first `resolve("X")` vs pydantic-settings, fresh process',
            both("resolve"),
            f"`import pydantic_settings` + one `SecretStr` field read {both('pydantic-settings')}",
            f"{pydantic / resolve:.1f}× lighter" if resolve > 0 else "—",
            "(peer, for context)",
            "info",
        ),
        Row(
            "`authchain resolve X` (CLI), fresh process, over `python -c pass`",
            both("cli"),
            f"`import os; os.environ['X']` {both('os.environ')}; "
            f"pydantic-settings {both('pydantic-settings')}",
            f"{_signed(cli - environ)} over os.environ",
            "≤ 40 ms over `python -c pass`",
            verdict(cli <= TARGET_CLI),
            "the console script as an installer writes it (argparse and the masked output included)",
        ),
    ]


def _growth_row(growth: list[dict[str, float]]) -> Row:
    counts = " / ".join(f"{point['distributions']:.0f}" for point in growth)
    resolves = " / ".join(fmt_time(point["resolve"]) for point in growth)
    scans = " / ".join(fmt_time(point["scan"]) for point in growth)
    first, last = growth[0], growth[-1]
    grew = last["resolve"] - first["resolve"]
    scan_grew = last["scan"] - first["scan"]
    # Flat: the first resolve opens as many metadata files at every size (counted, so
    # noise-free), and its time grows by under half what one scan's grows by (a loose
    # bound: on a busy machine medians of fresh processes move by ±10%).
    opened = [point["resolve_reads"] for point in growth]
    scan_opened = " / ".join(f"{point['scan_reads']:.0f}" for point in growth)
    flat = len(set(opened)) == 1 and grew < max(0.002, scan_grew / 2)
    return Row(
        f"first `resolve` as the environment grows ({counts} distributions)",
        f"`import authchain; resolve(X)` {resolves} (in-process); metadata opens (tried or done): "
        + " / ".join(f"{value:.0f}" for value in opened),
        f"one entry-point scan (`importlib.metadata.entry_points`, as the first resolve did before): "
        f"{scans}; metadata opens: {scan_opened}",
        f"{first['distributions']:.0f}→{last['distributions']:.0f}: resolve {_signed(grew)}, "
        f"scan {_signed(scan_grew)}",
        "flat, not linear",
        verdict(flat),
        "venvs of authchain + generated distributions only (half with console_scripts entry points), "
        "all sizes in the same rounds; in-process time (perf_counter around the statement); "
        "CPU over `python -c pass`: resolve "
        + " / ".join(_signed(point["resolve_cpu"]) for point in growth)
        + ", scan "
        + " / ".join(_signed(point["scan_cpu"]) for point in growth)
        + "; `python -c pass` wall "
        + " / ".join(fmt_time(point["bare_wall"]) for point in growth),
        {"growth": growth},
    )


if __name__ == "__main__":
    main(run)
