"""Prefect Secret blocks: the ``prefect`` source and ``prefect://BLOCK`` references
(``source.py``); it answers only inside a flow or task run by default.

See :mod:`authchain.backends` for what a backend package holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def default_sources(cwd: Path, environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The default chain (no ``sources`` configured) asks Prefect's Secret blocks:
    the source answers only inside a flow or task run, so elsewhere it costs nothing."""
    return {"prefect": {"type": "prefect"}}
