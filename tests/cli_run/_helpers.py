"""Running ``authchain run`` as a real subprocess from a project folder of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RUN = [sys.executable, "-m", "authchain.cli", "run"]


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without authchain settings or stray references."""
    from authchain.refs import is_reference

    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AUTHCHAIN_") and not is_reference(value)
    }
    environment.update(extra or {})
    return environment


def run(
    folder: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """``authchain run ARGS`` in ``folder``; output kept as bytes (the child may write binary)."""
    return subprocess.run(
        [*RUN, *args],
        cwd=folder,
        env=clean_environment(env),
        capture_output=True,
        timeout=timeout,
        input=stdin.encode() if stdin is not None else None,
    )


def child(code: str) -> list[str]:
    """The argv of a Python child running ``code``."""
    return ["--", sys.executable, "-c", code]
