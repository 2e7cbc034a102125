"""Environment variables: the ``env`` source and ``env://NAME`` references (``source.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def default_sources(cwd: Path, environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The default chain (no ``sources`` configured) reads the environment."""
    return {"env": {"type": "env"}}
