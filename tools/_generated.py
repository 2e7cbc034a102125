"""What every tool that writes a generated file shares: ``--check`` or write.

Imported by the tools when they run as scripts (their folder is then first on
``sys.path``); tests load a tool by path and call its ``render`` instead.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(path: Path, text: str, argv: list[str], command: str) -> int:
    """With ``--check`` in ``argv``: exit status 1 (and say so) if ``path`` is not ``text``;
    else write ``text`` to ``path``."""
    if "--check" in argv:
        if path.read_text(encoding="utf-8") != text:
            print(f"{path.name} is stale: run {command}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0
