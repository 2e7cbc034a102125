"""Mounted secret files: the ``files`` source and ``files://NAME`` references (``source.py``).

One directory, one file per secret: Docker and Compose ``/run/secrets``, a
Kubernetes Secret volume, systemd's ``$CREDENTIALS_DIRECTORY``. See
:mod:`authchain.backends` for what a backend package holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def default_sources(cwd: Path, environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The default chain (no ``sources`` configured) reads the secret files the
    platform handed this process, like the environment: only where it handed some."""
    from authchain.backends.files.source import platform_directories

    found = platform_directories(environ)
    return {"files": {"type": "files", "path": [str(path) for path in found]}} if found else {}
