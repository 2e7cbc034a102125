"""A pickled chain carries settings, never cached values.

The chain against real and scripted sources (helpers: tests/chain/_support.py).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from authchain import Chain
from authchain.backends.dotenv.source import DotenvSource
from authchain.backends.env.source import EnvSource
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.chain._support import (
    secret,
    write_env_file,
)

# -- pickling ------------------------------------------------------------------------------


def test_pickled_chain_carries_no_cached_values_and_works_after(tmp_path: Path) -> None:
    value = canary()
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"TOKEN": value}))
    chain = Chain([EnvSource(environ={}), dotenv], cache_ttl=600)
    assert secret(chain.resolve("TOKEN")) == value
    assert chain.explain("TOKEN").from_cache

    data = pickle.dumps(chain)
    assert_not_leaked(value, data, "a pickled chain")
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    assert not clone.explain("TOKEN").from_cache, "the cache stays in the process"
    assert secret(clone.resolve("TOKEN")) == value
    assert clone.cache_ttl == 600
    assert [source.name for source in clone.sources] == ["env", "dotenv"]


def test_cloudpickled_chain_carries_no_cached_values(tmp_path: Path) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")
    value = canary()
    chain = Chain([DotenvSource(path=write_env_file(tmp_path / ".env", {"TOKEN": value}))])
    chain.resolve_many(["TOKEN"])
    data = cloudpickle.dumps(chain)
    assert_not_leaked(value, data, "a cloudpickled chain")
    assert secret(pickle.loads(data).resolve("TOKEN")) == value  # noqa: S301 - our own bytes
