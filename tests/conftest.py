"""Shared fixtures. Every module in tests/servers/ is a fixture plugin: each
starts one real server on 127.0.0.1 for the session and stops it at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

# Server modules import each other (e.g. the proxy); rewrite asserts in all of them.
pytest.register_assert_rewrite("tests.servers")

pytest_plugins = sorted(
    f"tests.servers.{path.stem}"
    for path in (Path(__file__).parent / "servers").glob("*.py")
    if not path.name.startswith("_")
)
