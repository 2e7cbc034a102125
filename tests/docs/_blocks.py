"""Find the fenced code blocks of a Markdown file, with the marker comments above them.

A block may be preceded (directly, no blank line) by marker comments that tell the test
runner what to do with it; readers see them in the source and GitHub hides them:

- ``<!-- run-with: openbao, env-secrets -->``: run it after the named set-ups (in
  ``tests/docs/_setups.py``), which do what a reader's own set-up would: start or point
  at a server, set variables, write a config file. The block itself stays as written.
- ``<!-- not-run: REASON -->``: deliberately not run (it needs a cluster, installs from
  PyPI, ...); it is still checked for syntax.
- ``<!-- covered-by: tests/PATH.py::test_name -->``: another test already runs it.

A marker that is not directly above a fence, or a marker key that is not one of these,
is an error (:func:`extract` raises), so a typo cannot turn a block's test off.

Standard library only: this module only reads text, so issue 19's docs pages can use it
as they are (see ``DOCUMENTS`` in ``test_readme_blocks.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MARKER_KEYS", "Block", "MarkdownError", "extract"]

MARKER_KEYS = ("run-with", "not-run", "covered-by")

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(?P<title>.+?)\s*#*\s*$")
_MARKER = re.compile(r"^<!--\s*(?P<key>[A-Za-z_-]+)\s*:\s*(?P<value>.*?)\s*-->\s*$")


class MarkdownError(ValueError):
    """The file's blocks or markers are malformed (unclosed fence, stray marker, unknown key)."""


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and text, and its markers."""

    path: Path
    label: str  # the document in test ids: "README", "docs-backends-vault"
    line: int  # 1-based line of the opening fence
    section: str  # the nearest heading above it ("" before the first one)
    index: int  # 1-based position among the blocks of that section
    language: str  # the info string's first word, lower-case ("" when none)
    text: str
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """A test id that names the block: ``README-using-it-1``."""
        return f"{self.label}-{_slug(self.section) or 'top'}-{self.index}"

    @property
    def setups(self) -> list[str]:
        """The set-up names of a ``run-with`` marker, in order."""
        raw = self.markers.get("run-with", "")
        return [name.strip() for name in raw.split(",") if name.strip()]

    def where(self) -> str:
        return f"{self.path.name}:{self.line} ({self.section or 'top'}, block {self.index})"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def extract(path: Path, *, root: Path | None = None) -> list[Block]:
    """Every fenced block of ``path`` in order, with its markers.

    Args:
        root: the repository root; test ids then name the document by its path from
            there (``docs/backends/vault.md`` → ``docs-backends-vault``), so two pages
            called ``index.md`` stay apart. Default: the file name without suffix.

    Raises:
        MarkdownError: a fence is never closed, a marker is not directly above a
            fence, or a marker's key is unknown.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    label = "-".join(path.relative_to(root).with_suffix("").parts) if root else path.stem
    blocks: list[Block] = []
    section, per_section = "", 0
    pending: dict[str, str] = {}
    unknown: list[str] = []
    pending_line = 0
    number = 0
    while number < len(lines):
        line = lines[number]
        fence = _FENCE.match(line)
        marker = _MARKER.match(line)
        if fence:
            if unknown:
                raise MarkdownError(
                    f"{path.name}:{number}: unknown marker {unknown[0]!r} above a code fence "
                    f"(known: {', '.join(MARKER_KEYS)})"
                )
            closing = _closing_line(lines, number, fence.group("fence"))
            if closing is None:
                raise MarkdownError(f"{path.name}:{number + 1}: the fence opened here is never closed")
            per_section += 1
            info = fence.group("info").strip()
            blocks.append(
                Block(
                    path=path,
                    label=label,
                    line=number + 1,
                    section=section,
                    index=per_section,
                    language=info.split()[0].lower() if info else "",
                    text="\n".join(_dedent(lines[number + 1 : closing], fence.group("indent"))) + "\n",
                    markers=pending,
                )
            )
            pending = {}
            number = closing + 1
            continue
        if marker:
            key = marker.group("key")
            if key not in MARKER_KEYS:
                unknown.append(key)  # an error only if a fence follows: other comments are prose
            elif key in pending:
                raise MarkdownError(f"{path.name}:{number + 1}: a second {key} marker for one block")
            else:
                pending[key] = marker.group("value")
                pending_line = number + 1
        elif pending:
            raise MarkdownError(f"{path.name}:{pending_line}: a marker must sit directly above a code fence")
        else:
            unknown = []
        heading = _HEADING.match(line)
        if heading:
            section, per_section = heading.group("title").strip("` "), 0
        number += 1
    if pending:
        raise MarkdownError(f"{path.name}:{pending_line}: a marker must sit directly above a code fence")
    return blocks


def _closing_line(lines: list[str], opening: int, fence: str) -> int | None:
    for number in range(opening + 1, len(lines)):
        stripped = lines[number].strip()
        if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            return number
    return None


def _dedent(lines: list[str], indent: str) -> list[str]:
    return [line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines]
