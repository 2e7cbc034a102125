"""Shared fixtures. Every module in tests/servers/ is a fixture plugin: each
starts one real server on 127.0.0.1 for the session and stops it at the end.

Before anything else (before any SDK is imported, since they read these at import):
the SDKs' cloud-metadata probes are kept on this machine (``tests/_offline.py``) and
the network guard (``tests/_network_guard.py``) fails any test that reaches for an
address other than loopback."""

from __future__ import annotations

from tests import _offline  # isort: skip
from tests import _network_guard  # isort: skip

_offline.apply()
_network_guard.install()

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Server modules import each other (e.g. the proxy); rewrite asserts in all of them.
pytest.register_assert_rewrite("tests.servers")

pytest_plugins = sorted(
    f"tests.servers.{path.stem}"
    for path in (Path(__file__).parent / "servers").glob("*.py")
    if not path.name.startswith("_")
)


def pytest_configure(config: pytest.Config) -> None:
    """The guard's hooks fail the test (and the session) in which an attempt happened."""
    if not config.pluginmanager.is_registered(_network_guard):
        config.pluginmanager.register(_network_guard, "authchain-network-guard")
