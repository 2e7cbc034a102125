"""The import diff of docs/migrating-from-prefect-1.md: its ``+`` lines import as written.

(The section's Python blocks are run by the docs runner, tests/docs.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_readme_import_diff_imports_every_name_it_replaces() -> None:
    text = (ROOT / "docs" / "migrating-from-prefect-1.md").read_text(encoding="utf-8")
    (diff,) = re.findall(r"^```diff\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+")]
    assert removed
    assert added
    namespace: dict[str, object] = {}
    exec("\n".join(added), namespace)  # noqa: S102 - the page's own import line
    for line in removed:  # every Prefect 1 name the removed lines import is imported by the new line
        names = [name.strip() for name in line.split(" import ", 1)[1].split(",")]
        assert all(callable(namespace.get(name)) for name in names), line
