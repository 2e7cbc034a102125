"""A ``.env`` file: the ``dotenv`` source and ``dotenv://PATH#KEY`` references (``source.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def default_sources(cwd: Path, environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The default chain (no ``sources`` configured) reads ``./.env``: the working
    directory's, not a config file's folder (there is no config file)."""
    return {"dotenv": {"type": "dotenv", "path": str(cwd / ".env")}}
