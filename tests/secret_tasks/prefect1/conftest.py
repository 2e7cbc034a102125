"""Prefect 1's ``prefect.context(secrets=...)``, replaced by its nearest equivalent.

Prefect 1 tests put local secrets in ``prefect.context``; users put them in
``PREFECT__CONTEXT__SECRETS__<NAME>`` variables or the ``[context.secrets]``
table of ``~/.prefect/config.toml``, which is what reached the context. The
``local_secrets`` fixture sets the variables (values JSON-encoded unless
already text, as a user writes them), and every test gets an empty Prefect 1
user config of its own, so the machine's ``~/.prefect`` is never read, and a
default chain of its own.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authchain._default import reset_default_chain

LocalSecrets = Callable[..., contextlib.AbstractContextManager[None]]


@pytest.fixture(autouse=True)
def fresh_default_chain() -> Iterator[None]:
    """Prefect 1 read the environment on every run; the default chain caches answers
    for ``cache_ttl``, and these tests change the same variables (``FOO``) between cases."""
    reset_default_chain()
    yield
    reset_default_chain()


@pytest.fixture(autouse=True)
def prefect1_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Prefect 1 user config path of this test's own (absent until a test writes it)."""
    path = tmp_path / "prefect1-home" / "config.toml"
    monkeypatch.setenv("PREFECT__USER_CONFIG_PATH", str(path))
    return path


@pytest.fixture
def local_secrets(monkeypatch: pytest.MonkeyPatch) -> LocalSecrets:
    """``with local_secrets(test=42):`` is Prefect 1's ``with prefect.context(secrets=dict(test=42)):``."""

    @contextlib.contextmanager
    def scope(**secrets: Any) -> Iterator[None]:
        with monkeypatch.context() as scoped:
            for name, value in secrets.items():
                raw = value if isinstance(value, str) else json.dumps(value)
                scoped.setenv(f"PREFECT__CONTEXT__SECRETS__{name}", raw)
            yield

    return scope
