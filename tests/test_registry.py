"""Source types come from the ``authchain.sources`` entry points alone.

The built-in table in ``authchain._registry`` is a fallback for a checkout
whose metadata was never installed; it is never preferred to the metadata.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from authchain import _registry
from authchain.backends.env.source import EnvSource


@pytest.fixture
def no_testing_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_testing", {})
    monkeypatch.setattr(_registry, "_loaded", {})


def test_installed_metadata_alone_says_which_types_exist(
    monkeypatch: pytest.MonkeyPatch, no_testing_types: None
) -> None:
    monkeypatch.setattr(_registry, "_metadata_installed", lambda: True)
    monkeypatch.setattr(
        _registry, "_entry_points", lambda: {"env": "authchain.backends.env.source:EnvSource"}
    )
    assert _registry.registered_types() == {"env": "authchain.backends.env.source:EnvSource"}
    assert _registry.load_source_class("env") is EnvSource
    with pytest.raises(_registry.ConfigError, match="unknown source type 'vault'"):
        _registry.load_source_class("vault")  # in the built-in table, but not installed


def test_the_built_in_table_serves_only_a_checkout_without_metadata(
    monkeypatch: pytest.MonkeyPatch, no_testing_types: None
) -> None:
    monkeypatch.setattr(_registry, "_metadata_installed", lambda: False)
    monkeypatch.setattr(_registry, "_entry_points", dict)
    assert set(_registry.registered_types()) == set(_registry._BUILTIN)
    assert _registry.load_source_class("env") is EnvSource


def test_the_built_in_table_matches_pyproject() -> None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["entry-points"][
        "authchain.sources"
    ]
    assert declared == _registry._BUILTIN
