"""Source types come from the ``authchain.sources`` entry points alone.

A checkout whose metadata was never installed finds the built-ins in
``authchain/backends/`` instead (no table to keep in step with pyproject);
that is never preferred to the metadata.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
    monkeypatch.setattr(_registry, "_own_entry_points", lambda: None)
    monkeypatch.setattr(
        _registry, "_entry_points", lambda: {"env": "authchain.backends.env.source:EnvSource"}
    )
    assert _registry.registered_types() == {"env": "authchain.backends.env.source:EnvSource"}
    assert _registry.load_source_class("env") is EnvSource
    with pytest.raises(_registry.ConfigError, match="unknown source type 'vault'"):
        _registry.load_source_class("vault")  # a built-in package, but not installed


def _pyproject_entry_points() -> dict[str, str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared: dict[str, str] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "entry-points"
    ]["authchain.sources"]
    return declared


def test_a_checkout_without_metadata_finds_the_built_ins_in_the_backend_packages(
    monkeypatch: pytest.MonkeyPatch, no_testing_types: None
) -> None:
    """No table to keep in step: the backend packages are the list, and they match pyproject."""
    monkeypatch.setattr(_registry, "_metadata_installed", lambda: False)
    monkeypatch.setattr(_registry, "_own_entry_points", lambda: None)
    monkeypatch.setattr(_registry, "_entry_points", dict)
    assert _registry._discovered_builtins() == _pyproject_entry_points()
    assert _registry.registered_types() == _pyproject_entry_points()
    assert _registry.builtin_types() == _pyproject_entry_points()
    assert _registry.load_source_class("env") is EnvSource


def test_builtin_types_are_authchains_own_never_a_plugins(
    monkeypatch: pytest.MonkeyPatch, no_testing_types: None
) -> None:
    own = {"env": "authchain.backends.env.source:EnvSource"}
    monkeypatch.setattr(_registry, "_own_entry_points", lambda: own)
    monkeypatch.setattr(
        _registry, "_entry_points", lambda: {"plugin": "authchain.backends.prefect.source:PrefectSource"}
    )
    assert _registry.builtin_types() == own
    assert _registry.is_registered("plugin")


def test_the_version_names_the_installed_metadata() -> None:
    """``_version`` matches pyproject: the registry finds its own entry points by that name."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    from authchain._version import __version__

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    assert tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"] == __version__


def test_own_entry_points_are_read_without_scanning_every_distribution(tmp_path: Path) -> None:
    """A fresh process resolving from the environment (default chain, no config file) scans
    no distribution's entry points and imports none of the modules issue 18 took off the path."""
    heavy = ["importlib.metadata", "email", "dataclasses", "inspect", "tempfile", "hashlib", "shlex"]
    code = (
        "import sys; before = set(sys.modules)\n"
        "import authchain; authchain.resolve('AUTHCHAIN_T18_VALUE')\n"
        "from authchain import _registry\n"
        f"print(_registry._own_entry_points() is not None)\n"
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules and m not in before))\n"
        "print(' '.join(m for m in sys.modules if m.startswith('authchain.backends.')"
        " and m.endswith('.source')))"
    )
    env = {**os.environ, "AUTHCHAIN_T18_VALUE": "a-value-long-enough"}
    env.pop("AUTHCHAIN_CONFIG", None)
    env.pop("AUTHCHAIN_PROFILE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    if out[0] != "True":
        pytest.skip("authchain's metadata is not installed under its version's name here")
    assert out[1] == "", f"imported on the first resolve: {out[1]}"
    # The default chain's sources only: no other backend's source module (nor its SDK).
    loaded = {module.split(".")[2] for module in out[2].split()}
    assert loaded <= {"prefect", "files", "env", "dotenv"}, loaded


def test_a_plugin_cannot_take_a_built_in_name(
    monkeypatch: pytest.MonkeyPatch, no_testing_types: None
) -> None:
    own = {"env": "authchain.backends.env.source:EnvSource"}
    monkeypatch.setattr(_registry, "_own_entry_points", lambda: own)
    monkeypatch.setattr(_registry, "_metadata_installed", lambda: True)
    monkeypatch.setattr(
        _registry,
        "_entry_points",
        lambda: {"env": "evil.module:Env", "extra": "authchain.backends.env.source:EnvSource"},
    )
    assert _registry.registered_types()["env"] == own["env"]
    assert _registry.load_source_class("env") is EnvSource
    assert _registry.is_registered("extra")  # a name authchain does not declare: found by the scan
    assert not _registry.is_registered("nothing-declares-this")


def test_entry_points_txt_parsing() -> None:
    text = (
        "[console_scripts]\nauthchain = authchain.cli:main\n\n"
        "[authchain.sources]\n# a comment\nenv = authchain.backends.env.source:EnvSource\n"
        " vault=authchain.backends.vault.source:VaultSource \n[other]\nx = y:z\n"
    )
    assert _registry._parse_group(text, "authchain.sources") == [
        ("env", "authchain.backends.env.source:EnvSource"),
        ("vault", "authchain.backends.vault.source:VaultSource"),
    ]
