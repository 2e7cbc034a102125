"""Client kinds, factories and SDK loggers come from the backends' declarations.

- Each built-in backend package declares them as plain data
  (``CLIENT_KIND``, ``CLIENT_FACTORIES``, ``SDK_LOGGERS``); reading them
  imports no client or source module and no SDK.
- ``authchain.clients`` exports exactly the declared factories, and its
  generated part (what type checkers read) is what ``tools/client_exports.py``
  writes now.
- A declaration alone adds a kind: a package this test writes, declaring a
  kind, a factory and a logger, gets its ``[clients.KIND]`` table accepted,
  ``explain_client``, the factory in ``authchain.clients``, its logger quieted
  under ``--debug`` and its settings table in the docs.
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import authchain.clients
from authchain import Chain, ConfigError, _declarations
from authchain._registry import builtin_types
from authchain._sdk_logging import TRANSPORT_LOGGERS, quiet_sdk_loggers, sdk_loggers
from authchain.clients import explain_client
from authchain.config import load_settings
from tests._tools import load_tool

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_part_is_what_the_tool_writes_now() -> None:
    tool = load_tool("client_exports")
    written = (ROOT / "authchain" / "clients" / "__init__.py").read_text(encoding="utf-8")
    assert written == tool.render(written), "stale: run python tools/client_exports.py"


def test_declarations_are_plain_data() -> None:
    for package, kind in _declarations.declared("CLIENT_KIND").items():
        assert isinstance(kind, str), package
        assert kind.isidentifier(), f"explain_{kind} must be a name"
    for attribute in ("CLIENT_FACTORIES", "SDK_LOGGERS"):
        for package, names in _declarations.declared(attribute).items():
            assert isinstance(names, tuple), f"{package}.{attribute} is a tuple (not one string)"
            assert names, package
            assert all(isinstance(name, str) and name for name in names), package
    # Every package with factories names its kind (explain_client and [clients.KIND] need it).
    assert set(_declarations.declared("CLIENT_FACTORIES")) == set(_declarations.declared("CLIENT_KIND"))


def test_clients_exports_exactly_the_declared_factories() -> None:
    factories = _declarations.client_factories()
    shared = {"ClientExplanation", "LazyClient", "abuild", "clear", "explain_client", "lazy"}
    assert sorted(authchain.clients.__all__) == sorted({*shared, *factories})
    for name, module_name in factories.items():
        module = importlib.import_module(module_name)
        assert getattr(authchain.clients, name) is getattr(module, name)
        assert name in module.__all__, f"{module_name} exports {name}"
    with pytest.raises(AttributeError, match="no attribute 'no_such_client'"):
        authchain.clients.no_such_client  # noqa: B018 - the attribute access is the test


@pytest.mark.parametrize("kind", list(_declarations.client_kinds()))
def test_each_declared_kind_has_its_explain_and_options(kind: str) -> None:
    hooks = load_tool("mkdocs_hooks")
    module = importlib.import_module(_declarations.client_kinds()[kind])
    assert callable(getattr(module, f"explain_{kind}"))
    assert explain_client(kind, chain=Chain([])).kind.startswith(kind)
    assert hooks.client_settings(kind).startswith("| key | type | default | meaning |")


def test_an_undeclared_client_kind_is_refused_naming_the_declared(tmp_path: Path) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text("[clients.awss]\nregion_name = 'eu-west-1'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown client clients\.awss") as caught:
        load_settings(config, environ={})
    assert "did you mean 'aws'" in str(caught.value)
    assert "known: " + ", ".join(_declarations.client_kinds()) in str(caught.value)
    with pytest.raises(ConfigError, match="unknown client kind 'awss'; known: aws"):
        explain_client("awss")


def test_sdk_loggers_are_the_shared_transports_and_each_backends() -> None:
    declared = [name for names in _declarations.declared("SDK_LOGGERS").values() for name in names]
    assert set(sdk_loggers()) == {*TRANSPORT_LOGGERS, *declared}
    assert {"botocore", "hvac", "google.auth", "grpc"} <= set(declared), "the backends declare their SDKs'"


def test_reading_the_declarations_imports_no_client_source_or_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from authchain import _declarations\n"
        "from authchain._sdk_logging import sdk_loggers\n"
        "_declarations.client_kinds(); _declarations.client_factories(); sdk_loggers()\n"
        "print(' '.join(m for m in sys.modules if m.startswith('authchain.backends.')"
        " and m.rpartition('.')[2] in ('client', 'source')))\n"
        "print(' '.join(m for m in sys.modules if m.partition('.')[0]"
        " in ('boto3', 'botocore', 'hvac', 'google', 'grpc', 'keyring')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split("\n")[:2] == ["", ""], done.stdout


# -- a declaration alone adds a kind -----------------------------------------------------

_PACKAGE = "authchain_probe_backend"


@pytest.fixture
def probe_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A backend package outside authchain declaring kind ``probe``, made a built-in type."""
    package = tmp_path / _PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text(
        'CLIENT_KIND = "probe"\nCLIENT_FACTORIES = ("probe_client",)\nSDK_LOGGERS = ("probe_sdk",)\n',
        encoding="utf-8",
    )
    (package / "client.py").write_text(
        textwrap.dedent(
            """
            from typing import Any
            from authchain.clients._base import ClientExplanation, client_settings
            from authchain.sources.base import Option

            OPTIONS = (Option("region", str, "nowhere", "where the probe client points"),)

            def probe_client(region: Any = None, *, chain: Any) -> Any:
                return client_settings("probe", chain, OPTIONS, {"region": region})["region"]

            def explain_probe(*, chain: Any, region: Any = None) -> ClientExplanation:
                explanation = ClientExplanation("probe")
                client_settings("probe", chain, OPTIONS, {"region": region}, explanation)
                return explanation
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    builtin = builtin_types()
    monkeypatch.setattr(
        "authchain._declarations.builtin_types",
        lambda: {**builtin, "probe": f"{_PACKAGE}.source:ProbeSource"},
    )
    yield str(tmp_path)
    vars(authchain.clients).pop("probe_client", None)  # __getattr__ keeps what it loaded
    for name in [name for name in sys.modules if name.partition(".")[0] == _PACKAGE]:
        del sys.modules[name]


def test_a_declaration_alone_adds_a_client_kind(probe_backend: str, tmp_path: Path) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text("[clients.probe]\nregion = 'probe-region'\n", encoding="utf-8")
    chain = Chain.from_config(config, environ={})
    assert "probe" in _declarations.client_kinds()
    assert explain_client("probe", chain=chain).origins == {"region": "[clients.probe]"}
    probe_client: Any = authchain.clients.probe_client
    assert probe_client(chain=chain) == "probe-region"
    assert '`region` | string | `"nowhere"`' in load_tool("mkdocs_hooks").client_settings("probe")
    chain.close()
    levels = {name: logging.getLogger(name).level for name in sdk_loggers()}
    assert "probe_sdk" in levels
    try:
        quiet_sdk_loggers()
        assert logging.getLogger("probe_sdk").level == logging.INFO, "--debug keeps its SDK logger quiet"
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
