"""MemorySource (authchain.testing): the contract, plus counters, batching and pickling."""

from __future__ import annotations

import pickle

import pytest

from authchain import Chain
from authchain.sources.base import Found, NotFound
from authchain.testing import MemorySource, canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked


class TestMemoryContract(SourceContractTests):
    @pytest.fixture
    def source(self) -> MemorySource:
        return MemorySource()

    @pytest.fixture
    def seed(self, source: MemorySource) -> Seed:
        return source.set


class TestBatchingMemoryContract(TestMemoryContract):
    @pytest.fixture
    def source(self) -> MemorySource:
        return MemorySource(batch=True, name="memory-batch")


def test_values_given_at_construction_and_added_later() -> None:
    first, second = canary(), canary()
    source = MemorySource({"A": first})
    source["B"] = second
    assert "A" in source
    assert "B" in source
    result = source.get("B")
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == second
    del source["A"]
    assert "A" not in source
    assert source.get("A") == NotFound("A is not in memory")


def test_bytes_values_stay_bytes() -> None:
    source = MemorySource({"BLOB": b"\x00\x01binary"})
    result = source.get("BLOB")
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == b"\x00\x01binary"


def test_counts_single_and_batch_calls() -> None:
    source = MemorySource({"A": canary()}, batch=True)
    source.get("A")
    source.get("MISSING")
    source.get_many(["A", "MISSING"])
    assert (source.calls, source.batch_calls) == (2, 1)


def test_batch_flag_is_per_instance() -> None:
    assert MemorySource(batch=True).batches
    assert not MemorySource().batches
    assert not MemorySource.batches


def test_check_counts_secrets_without_showing_them() -> None:
    value = canary()
    report = MemorySource({"A": value, "B": canary()}).check()
    assert (report.status, report.detail) == ("ok", "2 secrets in memory")


def test_memory_reference_with_json_field() -> None:
    source = MemorySource({"DB": '{"user": "app", "password": "pw-example"}'})
    assert Chain([source]).resolve("memory://DB#user").get_secret_value() == "app"


def test_pickle_carries_no_values() -> None:
    value = canary()
    source = MemorySource({"A": value}, name="fixture")
    data = pickle.dumps(source)
    assert_not_leaked(value, data, "a pickled MemorySource")
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    assert clone.name == "fixture"
    assert "A" not in clone
    clone["A"] = "usable-after-unpickling"
    assert Chain([clone]).resolve("A").get_secret_value() == "usable-after-unpickling"
