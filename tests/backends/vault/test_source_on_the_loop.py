"""Every test of test_source.py once more, with each lookup made by ``aget`` on an event loop.

``aresolve`` asks the vault source through ``aget``: the same lookup written
once (``VaultSource._reading``), its requests made on the loop
(``authchain/backends/vault/_native.py``) instead of through hvac. Here
``get`` is replaced by "run ``aget`` on a new loop", so every outcome those
tests pin down (KV v1/v2 shapes, versions, deleted and destroyed secrets, the
mount probe, 403 and ``forbidden_as_missing``, logins, renewals, a rejected
token's one fresh login, request counts from the server's audit log) is
checked for the loop's path too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from authchain.backends.vault.source import VaultSource
from tests.backends.vault.test_source import *  # noqa: F403 - the same tests, collected again here

_sync_get = VaultSource.get


def _get_on_a_loop(self: VaultSource, key: Any) -> Any:
    """What ``aresolve`` does: ``aget`` where the source has its loop path (here: always, but
    for a source with no address yet, whose ``get`` raises the ConfigError sync code gets)."""
    if not self.has_native_async():
        assert self.url is None
        assert self._environ is not None
        assert "VAULT_ADDR" not in self._environ
        return _sync_get(self, key)
    return asyncio.run(self.aget(key))


@pytest.fixture(autouse=True)
def _lookups_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VaultSource, "get", _get_on_a_loop)
