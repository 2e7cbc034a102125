"""resolve_many: batch calls, the pool, missing names and defaults.

The chain against real and scripted sources (helpers: tests/chain/_support.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from authchain import BackendError, Chain, SecretNotFound
from authchain.backends.dotenv.source import DotenvSource
from authchain.backends.env.source import EnvSource
from authchain.sources.base import Found, Key, NotFound
from authchain.testing import MemorySource, canary
from tests.chain._support import (
    FakeClock,
    ScriptedSource,
    Sleeps,
    SlowSource,
    denied,
    secret,
    write_env_file,
)

# -- resolve_many ----------------------------------------------------------------------


def test_resolve_many_returns_a_dict_by_name(tmp_path: Path) -> None:
    values = {name: canary() for name in ("A", "B", "C")}
    env = EnvSource(environ={"A": values["A"], "C": values["C"]})
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"B": values["B"], "C": "shadowed"}))
    result = Chain([env, dotenv]).resolve_many(["A", "B", "C"])
    assert list(result) == ["A", "B", "C"]
    assert {name: secret(value) for name, value in result.items()} == values


def test_resolve_many_batches_a_batching_source() -> None:
    names = [f"NAME_{i}" for i in range(10)]
    values = {name: canary() for name in names}
    memory = MemorySource(values, batch=True)
    chain = Chain([memory])
    result = chain.resolve_many(names)
    assert {name: secret(value) for name, value in result.items()} == values
    assert (memory.batch_calls, memory.calls) == (1, 0), "one batch call, no single gets"


def test_resolve_many_batch_then_next_source_for_the_rest() -> None:
    store = MemorySource({"A": "store-a"}, batch=True, name="store")
    env = EnvSource(environ={"A": "env-a", "B": "env-b", "C": "env-c"})
    result = Chain([store, env]).resolve_many(["A", "B", "C"])
    assert {name: secret(value) for name, value in result.items()} == {
        "A": "store-a",
        "B": "env-b",
        "C": "env-c",
    }
    assert (store.batch_calls, store.calls) == (1, 0)


def test_resolve_many_batch_uses_the_cache() -> None:
    memory = MemorySource({"A": "a-value", "B": "b-value"}, batch=True)
    chain = Chain([memory])
    chain.resolve_many(["A", "B"])
    chain.resolve_many(["A", "B"])
    assert secret(chain.resolve("A")) == "a-value"
    assert (memory.batch_calls, memory.calls) == (1, 0)
    assert chain.explain("B").from_cache


def test_resolve_many_batch_error_for_one_key() -> None:
    class PartlyBroken(MemorySource):
        def get_many(self, keys: Iterable[Key]) -> dict[Key, Found | NotFound | BackendError]:
            results = super().get_many(keys)
            results["BROKEN"] = BackendError("BROKEN: decryption failed")
            return results

    source = PartlyBroken({"A": "a-value", "BROKEN": "never"}, batch=True, name="store")
    with pytest.raises(BackendError, match=r"^store \(memory\): BROKEN: decryption failed$"):
        Chain([source]).resolve_many(["A", "BROKEN"])
    skipping = PartlyBroken({"A": "a-value"}, batch=True, name="store", on_error="skip")
    result = Chain([skipping]).resolve_many(["A", "BROKEN"], default=None)
    assert secret(result["A"]) == "a-value"
    assert result["BROKEN"] is None


def test_resolve_many_batch_serves_stale_values_when_the_refresh_fails() -> None:
    class Outage(MemorySource):
        down = False

        def get_many(self, keys: Iterable[Key]) -> dict[Key, Found | NotFound | BackendError]:
            if self.down:
                raise BackendError("service unavailable (503)", retryable=True)
            return super().get_many(keys)

    clock = FakeClock()
    source = Outage({"A": "a-value", "B": "b-value"}, batch=True)
    chain = Chain([source], cache_ttl=10, stale_if_error=60, clock=clock, sleep=Sleeps())
    chain.resolve_many(["A", "B"])
    source.down = True
    clock.advance(20)
    result = chain.resolve_many(["A", "B"])
    assert {name: secret(value) for name, value in result.items()} == {"A": "a-value", "B": "b-value"}


def test_resolve_many_runs_a_concurrent_source_on_the_pool() -> None:
    names = [f"NAME_{i}" for i in range(8)]
    slow = SlowSource({name: canary() for name in names}, delay=0.05)
    with Chain([slow], max_workers=8) as chain:
        result = chain.resolve_many(names)
    assert set(result) == set(names)
    assert slow.calls == 8
    assert slow.max_in_flight > 1, "lookups of a concurrent source should overlap"


def test_resolve_many_with_one_worker_is_serial() -> None:
    names = [f"NAME_{i}" for i in range(4)]
    slow = SlowSource({name: canary() for name in names}, delay=0.005)
    with Chain([slow], max_workers=1) as chain:
        chain.resolve_many(names)
    assert slow.max_in_flight == 1


def test_resolve_many_leaves_non_concurrent_sources_serial() -> None:
    class SerialSlow(SlowSource):
        concurrent = False

    names = [f"NAME_{i}" for i in range(4)]
    slow = SerialSlow({name: canary() for name in names}, delay=0.005)
    with Chain([slow], max_workers=8) as chain:
        chain.resolve_many(names)
    assert slow.max_in_flight == 1


def test_resolve_many_missing_names_raise_with_all_missing_listed() -> None:
    chain = Chain([MemorySource({"A": canary(), "C": canary()})])
    with pytest.raises(SecretNotFound) as caught:
        chain.resolve_many(["A", "MISSING_1", "C", "MISSING_2"])
    assert caught.value.name == "MISSING_1"
    assert caught.value.missing == ("MISSING_1", "MISSING_2")
    assert str(caught.value).startswith(
        "'MISSING_1' was not found by any source (also missing: MISSING_2).\n"
    )


def test_resolve_many_default_fills_missing_names() -> None:
    value = canary()
    chain = Chain([MemorySource({"A": value})])
    result = chain.resolve_many(["A", "MISSING"], default=None)
    assert secret(result["A"]) == value
    assert result["MISSING"] is None


def test_resolve_many_raises_backend_errors() -> None:
    chain = Chain([ScriptedSource(fault=denied, failures=100, name="vault-prod")])
    with pytest.raises(BackendError, match="vault-prod"):
        chain.resolve_many(["A", "B"])


def test_resolve_many_accepts_references() -> None:
    memory = MemorySource({"DB": '{"user": "app"}', "A": "a-value"})
    result = Chain([memory]).resolve_many(["A", "memory://DB#user"])
    assert {name: secret(value) for name, value in result.items()} == {
        "A": "a-value",
        "memory://DB#user": "app",
    }
