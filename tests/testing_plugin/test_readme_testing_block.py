"""The "Testing your code" page's fixture example (docs/testing.md) runs as a user's test file, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.testing_plugin.test_fixture_covers_tasks import _isolate

pytest_plugins = ["pytester"]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def _testing_block() -> str:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("\n## The `authchain_secrets` fixture\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the fixture section of docs/testing.md has no python block"
    return str(blocks[0])


def test_the_readme_testing_example_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _isolate(pytester, monkeypatch)
    monkeypatch.setenv("API_TOKEN", "from-the-real-environment")
    pytester.makepyfile(test_settings=_testing_block())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=300)
    result.assert_outcomes(passed=2)
