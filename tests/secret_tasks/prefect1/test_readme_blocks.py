"""The README's "Migrating from Prefect 1" Python blocks run as written, each in a
fresh interpreter with no server, config file or Prefect 1 user config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def migration_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Migrating from Prefect 1\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```", section, flags=re.DOTALL | re.MULTILINE)


def test_the_section_has_its_before_and_after_blocks() -> None:
    blocks = migration_blocks()
    assert len(blocks) == 2
    assert "from secret_tasks.prefect1 import" in blocks[0]
    assert "from secret_tasks import" in blocks[1]


@pytest.mark.parametrize("index", [0, 1], ids=["shims", "native"])
def test_a_migration_block_runs_as_written(index: int, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(migration_blocks()[index], encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHCHAIN_", "PREFECT__"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PREFECT__USER_CONFIG_PATH"] = str(tmp_path / "absent.toml")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "example-password-1" not in done.stdout + done.stderr
