#!/usr/bin/env python3
"""One entry point for working on authchain: ``python3 dev.py demo|test|lint|bench|docs``.

Standard library only, so it runs on a fresh machine with Python 3.10+. It
creates ``.venv`` next to this file and installs what the command needs
(re-installing only when ``pyproject.toml`` or the extras change).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def run(*command: str | Path, cwd: Path = ROOT) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    result = subprocess.run([str(part) for part in command], cwd=cwd)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv(extras: str) -> None:
    """Create .venv and install authchain (editable) with ``extras``, once per change."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this file must run on any python3 to say so
        sys.exit("authchain needs Python 3.10 or newer")
    if not PYTHON.exists():
        print(f"creating {VENV.name}/", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".authchain-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    installed = stamp.read_text().split() if stamp.exists() else []
    if digest in installed:
        return
    target = f".[{extras}]" if extras else "."
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target)
    stamp.write_text("\n".join([*installed, digest]))


def demo() -> None:
    ensure_venv("")
    run(PYTHON, "demo.py", cwd=ROOT / "examples" / "quickstart")


def lint() -> None:
    ensure_venv("all,dev")
    run(PYTHON, "-m", "ruff", "check", ".")
    run(PYTHON, "-m", "ruff", "format", "--check", ".")
    run(PYTHON, "-m", "mypy")


def test() -> None:
    lint()
    run(PYTHON, "-m", "pytest", "-q", *sys.argv[2:])


def bench() -> None:
    """Every benchmark with its baselines (servers on 127.0.0.1, started and stopped here);
    a full run also writes the table into benchmarks/RESULTS.md. ``--quick``: smoke mode."""
    ensure_venv("all,bench")
    arguments = sys.argv[2:]
    if "--quick" not in arguments and "--write" not in arguments:
        arguments = [*arguments, "--write", str(ROOT / "benchmarks" / "RESULTS.md")]
    run(PYTHON, "-m", "benchmarks.run", *arguments)


def docs() -> None:
    """Build the docs site into site/ (strict: a dead link or a missing reference fails);
    ``--serve``: serve it on 127.0.0.1:8000 and rebuild on changes."""
    ensure_venv("all,docs")
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # Material's notice about MkDocs 2, not a problem here
    if "--serve" in sys.argv[2:]:
        run(PYTHON, "-m", "mkdocs", "serve", "--strict", "--dev-addr", "127.0.0.1:8000")
    else:
        run(PYTHON, "-m", "mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"))


COMMANDS = {"demo": demo, "test": test, "lint": lint, "bench": bench, "docs": docs}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [pytest or benchmark args]")
    COMMANDS[sys.argv[1]]()
