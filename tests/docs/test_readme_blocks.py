"""Every fenced block of the README and of the docs pages runs as written, or says visibly why not.

Each block is one test, named after its section and position (``README-using-it-1``):

- ``python``: run as a script in a fresh interpreter, in an empty temporary folder, with
  no credentials and the SDKs' cloud-metadata probes off (``tests/_offline.py``); it must
  exit 0 and print no secret a set-up planted;
- ``toml``: parsed, then loaded by ``Chain.from_config`` (every profile it defines too),
  and each ``[clients.KIND]`` table checked by that client's settings loader: a config
  that raises fails the test;
- ``bash``/``sh``/``shell``/``console``: run with ``bash -e -o pipefail``;
- anything else (``text``, no language): not runnable by itself, so it must be marked.

The markers above a block (``tests/docs/_blocks.py``) choose set-ups from
``tests/docs/_setups.py`` (``run-with``), hand the block to another test that runs it
(``covered-by``) or say why it is not run (``not-run``, still syntax-checked). A block
with no marker that cannot be run fails: nothing is skipped silently.

``DOCUMENTS`` is the list of Markdown files checked: the README and every page under ``docs/``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.docs._blocks import MARKER_KEYS, Block, MarkdownError, extract
from tests.docs._setups import ROOT, SETUPS, Context, run_python

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# The README and the pages of the docs site.
DOCUMENTS: list[Path] = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

PYTHONS = ("python", "py", "python3")
SHELLS = ("bash", "sh", "shell", "console")


def _extract_all() -> tuple[dict[Path, list[Block]], dict[Path, str]]:
    """The blocks of every document; a malformed one is reported by ``test_documents_parse``
    (failing one test) instead of a collection error that would stop the whole suite."""
    blocks: dict[Path, list[Block]] = {}
    errors: dict[Path, str] = {}
    for document in DOCUMENTS:
        try:
            blocks[document] = extract(document, root=ROOT)
        except MarkdownError as error:
            blocks[document], errors[document] = [], str(error)
    return blocks, errors


BLOCKS, ERRORS = _extract_all()
ALL_BLOCKS = [block for blocks in BLOCKS.values() for block in blocks]


@pytest.mark.parametrize(
    "document", DOCUMENTS, ids=[str(document.relative_to(ROOT)) for document in DOCUMENTS]
)
def test_documents_parse(document: Path) -> None:
    """Every fence is closed, every marker sits on a block and has a known key; and the README
    has blocks (a docs page may be prose only)."""
    assert document not in ERRORS, ERRORS.get(document)
    if document.name == "README.md":
        assert BLOCKS[document], f"{document.name} has no code block: is DOCUMENTS right?"


@pytest.mark.timeout(300)  # a block may be the first to start a server on a loaded machine
@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.id for block in ALL_BLOCKS])
def test_block(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if "not-run" in block.markers:
        assert block.markers["not-run"], f"{block.where()}: say why the block is not run"
        assert not set(block.markers) - {"not-run"}, f"{block.where()}: not-run goes alone"
        _check_syntax(block, tmp_path)
        return
    if "covered-by" in block.markers:
        _check_covering_test(block)
        return
    ctx = Context.fresh(block, BLOCKS[block.path], tmp_path, request)
    for name in block.setups:
        assert name in SETUPS, f"{block.where()}: unknown set-up {name!r}; known: {', '.join(SETUPS)}"
        SETUPS[name](ctx)
    if ctx.verified:
        return
    if block.language in PYTHONS:
        ctx.write_config()
        ctx.check_output(run_python(ctx, block.text))
    elif block.language == "toml":
        _load_config(ctx)
    elif block.language in SHELLS:
        ctx.write_config()
        ctx.check_output(_run_shell(ctx))
    else:
        pytest.fail(
            f"{block.where()}: a {block.language or 'plain'} block cannot be run by itself; mark it "
            "<!-- run-with: SETUP --> (a verifying set-up), <!-- covered-by: TEST --> "
            "or <!-- not-run: WHY -->"
        )


def test_block_ids_are_unique_and_markers_known() -> None:
    ids = [block.id for block in ALL_BLOCKS]
    assert len(ids) == len(set(ids))
    for block in ALL_BLOCKS:
        assert set(block.markers) <= set(MARKER_KEYS)
        assert len(block.markers) <= 1 or "run-with" not in block.markers, block.where()


# -- what each language means -------------------------------------------------------


def _load_config(ctx: Context) -> None:
    """Parse the block, load it as the config loader does, and each profile and client table."""
    from authchain import Chain

    data = tomllib.loads(ctx.block.text)
    path = ctx.tmp_path / "authchain.toml"
    path.write_text(ctx.block.text, encoding="utf-8")
    for profile in [None, *data.get("profiles", {})]:
        with Chain.from_config(path, profile=profile, environ=ctx.env) as chain:
            for kind in data.get("clients", {}):
                _client_settings(kind, chain)


def _client_settings(kind: str, chain: Any) -> None:
    """The ``[clients.KIND]`` table as the factory reads it (unknown keys, types, ``${VAR}``)."""
    from authchain.backends.aws import client as aws
    from authchain.backends.azure import client as azure
    from authchain.backends.gcp import client as gcp
    from authchain.backends.keyring import client as keyring
    from authchain.backends.vault import client as vault
    from authchain.clients import _base

    options = {
        "aws": aws.OPTIONS,
        "azure": azure.OPTIONS,
        "gcp": gcp.OPTIONS,
        "keyring": keyring.OPTIONS,
        "vault": vault._options(),
    }
    _base.client_settings(kind, chain, options[kind], {})


def _run_shell(ctx: Context) -> subprocess.CompletedProcess[str]:
    script = ctx.block.text
    if ctx.block.language == "console":  # keep the commands, drop the output shown
        script = "\n".join(line[2:] for line in script.splitlines() if line.startswith("$ ")) + "\n"
    path = ctx.tmp_path / "block.sh"
    path.write_text(script, encoding="utf-8")
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", str(path)],
        cwd=ctx.tmp_path,
        env=ctx.env,
        input=ctx.stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _check_syntax(block: Block, tmp_path: Path) -> None:
    """What can be checked of a block that is not run: it parses."""
    if block.language in PYTHONS:
        compile(block.text, block.where(), "exec")
    elif block.language == "toml":
        tomllib.loads(block.text)
    elif block.language in SHELLS:
        path = tmp_path / "block.sh"
        path.write_text(block.text, encoding="utf-8")
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{block.where()}: {result.stderr}"


def _check_covering_test(block: Block) -> None:
    """The named test exists and reads the README, so the marker cannot outlive it."""
    target = block.markers["covered-by"]
    match = re.fullmatch(r"(?P<path>tests/[\w/]+\.py)::(?P<name>test_\w+)", target)
    assert match, f"{block.where()}: covered-by takes tests/PATH.py::test_name, not {target!r}"
    path = ROOT / match.group("path")
    assert path.is_file(), f"{block.where()}: {match.group('path')} does not exist"
    text = path.read_text(encoding="utf-8")
    assert f"def {match.group('name')}(" in text, f"{block.where()}: no {match.group('name')} in {path.name}"
    assert block.path.name in text, f"{block.where()}: {path.name} does not read {block.path.name}"
