"""The docs site builds with ``mkdocs build --strict``, and the build fails when it should.

A dead link between pages, a link to a missing file of the repository, an API
reference to a name that does not exist, or a generated part that cannot be
made (``tools/mkdocs_hooks.py``) each fail the build; the last two tests plant
a broken page and a dead link in a copy of the docs to show that they do.
The build fetches nothing from the network (Material's fonts are off).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._tools import load_tool
from tests.docs._setups import ROOT

# No skip when MkDocs is missing: the test extra installs the docs extra, and a suite that
# cannot build the docs must say so.


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of the checkout at ``root`` into ``site``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(root)}
    command = ["build", "--strict", "--config-file", str(root / "mkdocs.yml"), "--site-dir", str(site)]
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", *command],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _every_public_name_is_in_the_reference(site: Path) -> None:
    """Each name of the public modules' ``__all__`` has its entry, rendered from its docstring."""
    import authchain
    import authchain.clients
    import authchain.testing
    import secret_tasks

    pages = {
        authchain: "authchain",
        authchain.clients: "clients",
        authchain.testing: "testing",
        secret_tasks: "secret_tasks",
    }
    for module, page in pages.items():
        html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
        for name in module.__all__:
            if name.startswith("__"):
                continue
            homes = (module.__name__, getattr(module, name).__module__)
            assert any(f'id="{home}.{name}"' in html for home in homes), f"{module.__name__}.{name}"


def _copy(tmp_path: Path) -> Path:
    """A copy of what the build reads: the config, the pages, the hooks, the README and the
    files pages link to, so a planted fault cannot touch the checkout."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", root)
    shutil.copy(ROOT / "README.md", root)
    for folder in ("docs", "tools", "benchmarks", "examples"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for package in ("authchain", "secret_tasks"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.timeout(300)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = _build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    site = tmp_path / "site"
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "authchain keyring set" in cli  # generated from the parser
    vault = (site / "backends" / "vault" / "index.html").read_text(encoding="utf-8")
    assert "forbidden_as_missing" in vault  # generated from the Option declarations
    _every_public_name_is_in_the_reference(site)
    for page in site.rglob("*.html"):  # nothing is fetched from elsewhere when a page opens
        text = page.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in text, page
        assert not re.search(r'src="https?://|<link[^>]*href="https?://', text), page
        assert "<!-- generated:" not in text, page
        assert "The docs site shows" not in text, page


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("[a page](no-such-page.md)", "no-such-page.md"),
        ("[a file](../no/such/file.py)", "dead link"),
        ("<!-- generated: settings no-such-type -->", "no-such-type"),
        ("::: authchain.no_such_name", "no_such_name"),
    ],
    ids=["dead-page-link", "dead-file-link", "unknown-source-type", "missing-reference"],
)
def test_a_planted_fault_fails_the_build(tmp_path: Path, fault: str, message: str) -> None:
    root = _copy(tmp_path)
    page = root / "docs" / "concepts.md"
    page.write_text(page.read_text(encoding="utf-8") + f"\n\n{fault}\n", encoding="utf-8")
    result = _build(root, tmp_path / "site")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


# -- the generated parts, without a build ---------------------------------------------------


def _hooks() -> Any:
    return load_tool("mkdocs_hooks")


def test_every_source_type_and_client_kind_has_a_settings_table() -> None:
    from authchain._declarations import client_kinds
    from authchain._registry import registered_types

    hooks = _hooks()
    for type_name in registered_types():
        table = hooks.source_settings(type_name)
        if type_name != "memory":  # a testing tool, registered by the pytest plugin: no settings
            assert table.startswith("| key | type | default | meaning |"), type_name
    for kind in client_kinds():
        assert "`" in hooks.client_settings(kind), kind


def test_the_backend_tables_list_every_built_in_backend_and_client_kind() -> None:
    """A new backend's page and declarations are enough: the tables that list backends are generated."""
    from authchain._declarations import client_kinds
    from authchain._registry import builtin_types

    hooks = _hooks()
    types = hooks.fill("<!-- generated: source-types -->", "page.md")
    forms = hooks.fill("<!-- generated: reference-forms -->", "page.md")
    for type_name, target in builtin_types().items():
        package = target.split(".")[2]
        assert f"`{type_name}`" in types
        assert f"](backends/{package}.md)" in types
        assert f"| `{type_name}://" in forms
    clients = hooks.fill("<!-- generated: all-client-settings -->", "page.md")
    assert clients.count("| key | type | default | meaning |") == len(client_kinds())
    for kind in client_kinds():
        assert f"`[clients.{kind}]` ([" in clients
    nav = hooks.on_config({"nav": [{"Home": "index.md"}, {"Backends": []}]})["nav"]
    pages = [page for entry in nav[1]["Backends"] for page in entry.values()]
    packages = {target.split(".")[2] for target in builtin_types().values()}
    assert sorted(pages) == sorted(f"backends/{package}.md" for package in packages)
    with pytest.raises(hooks.GenerationError, match=r"no page docs/backends/nowhere\.md"):
        hooks._backend_page("nowhere")


def test_a_generated_part_replaces_its_comment_and_the_note_for_github() -> None:
    hooks = _hooks()
    page = "before\n<!-- generated: exit-codes -->\n*The docs site shows a table here.*\nafter\n"
    filled = hooks.fill(page, "page.md")
    assert "| 0 | ok |" in filled
    assert "generated:" not in filled
    assert "The docs site shows" not in filled
    assert filled.startswith("before\n")
    assert filled.endswith("\nafter\n")
    with pytest.raises(hooks.GenerationError, match="unknown generated part 'nonsense'"):
        hooks.fill("<!-- generated: nonsense -->", "page.md")


def test_a_readme_section_reads_on_a_docs_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = _hooks()
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# authchain\n\n## Layout\n\nSee [the chain](authchain/_chain.py), [concepts](docs/concepts.md#x)"
        " and [a site](https://example.test).\n\n### Layers\n\ntext\n\n## Next\n\nother\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(hooks, "ROOT", tmp_path)
    section = hooks.readme_section("Layout")
    assert "[the chain](../authchain/_chain.py)" in section
    assert "[concepts](concepts.md#x)" in section
    assert "[a site](https://example.test)" in section
    assert "\n## Layers\n" in section
    assert "other" not in section
    assert "README.md" in hooks.readme_section("Not there yet")


def test_a_settings_table_shows_each_numeric_range() -> None:
    from authchain.config import TOP_LEVEL

    table = _hooks().options_table(TOP_LEVEL.values())
    retries = next(line for line in table.splitlines() if line.startswith("| `retries`"))
    assert f"(0 to {TOP_LEVEL['retries'].maximum:g})" in retries
    files = _hooks().source_settings("files")
    assert "(1 to 67108864)" in files
