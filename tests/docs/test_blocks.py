"""The block extractor: what it finds, and the mistakes in markers it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs._blocks import MarkdownError, extract

DOCUMENT = """\
# Title

```bash
echo top
```

## Using it

<!-- run-with: openbao, env-secrets -->
```python
print("one")
```

<!-- not-run: needs a cluster -->
```toml
# not a heading
[x]
```

<!-- note: an ordinary comment, not above a fence -->
Some prose.

## Output `shown`

````text
```
nested fence
```
````
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "PAGE.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_blocks_sections_languages_and_markers(tmp_path: Path) -> None:
    blocks = extract(_write(tmp_path, DOCUMENT))
    assert [block.id for block in blocks] == [
        "PAGE-title-1",
        "PAGE-using-it-1",
        "PAGE-using-it-2",
        "PAGE-output-shown-1",
    ]
    assert [block.language for block in blocks] == ["bash", "python", "toml", "text"]
    assert blocks[1].setups == ["openbao", "env-secrets"]
    assert blocks[1].text == 'print("one")\n'
    assert blocks[2].markers == {"not-run": "needs a cluster"}
    assert blocks[2].text.startswith("# not a heading")  # a comment inside a block is no section
    assert blocks[3].text == "```\nnested fence\n```\n"
    assert blocks[0].markers == {}
    assert blocks[0].line == 3


def test_ids_name_the_document_by_its_path_from_the_root(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "backends" / "index.md"
    page.parent.mkdir(parents=True)
    page.write_text("## Vault\n\n```toml\n[x]\n```\n", encoding="utf-8")
    assert [block.id for block in extract(page, root=tmp_path)] == ["docs-backends-index-vault-1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```python\nprint(1)\n", "never closed"),
        ("<!-- not-run: why -->\n\n```python\nx = 1\n```\n", "directly above a code fence"),
        ("<!-- not-run: why -->\ntext\n```python\nx = 1\n```\n", "directly above a code fence"),
        ("text\n<!-- run-with: moto -->\n", "directly above a code fence"),
        ("<!-- not_run: why -->\n```python\nx = 1\n```\n", "unknown marker 'not_run'"),
        ("<!-- not-run: a -->\n<!-- not-run: b -->\n```python\nx = 1\n```\n", "a second not-run marker"),
    ],
    ids=["unclosed", "blank-line", "prose-between", "marker-at-end", "typo", "twice"],
)
def test_malformed_markers_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MarkdownError, match=message):
        extract(_write(tmp_path, text))
