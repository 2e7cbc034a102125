"""The contract every source passes: subclass :class:`SourceContractTests`.

Like keyring's ``BackendBasicTests``: a pytest base class whose tests run
against any :class:`~authchain.sources.base.Source`. A subclass provides two
fixtures and inherits the tests::

    import pytest
    from authchain.testing.contract import SourceContractTests

    class TestMySource(SourceContractTests):
        @pytest.fixture
        def source(self):
            return MySource(url="http://127.0.0.1:8200")

        @pytest.fixture
        def seed(self, source):
            def put(name, value):
                ...  # store `value` so that source.key_for(name) finds it
            return put

Every value the tests store is a fresh :func:`authchain.testing.canary`, and
no assertion here prints one: a failure says where a value leaked, not what
it was. This module imports pytest, so it is not re-exported from
``authchain.testing``; import it as ``authchain.testing.contract``.
"""

from __future__ import annotations

import pickle
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from authchain._chain import Chain
from authchain.errors import SecretNotFound
from authchain.sources.base import CheckResult, Found, Key, NotFound, Source
from authchain.testing.override import canary

__all__ = ["Seed", "SourceContractTests", "assert_not_leaked", "unique_name"]

Seed = Callable[[str, str], None]
"""``seed(name, value)`` stores a secret so that ``source.key_for(name)`` finds it."""

_STATUSES = {"ok", "unreachable", "unauthenticated", "misconfigured", "unavailable"}


def unique_name(label: str = "CONTRACT") -> str:
    """A fresh secret name (upper-case letters, digits, ``_``) no backend holds yet."""
    return f"{label}_{secrets.token_hex(6).upper()}"


def assert_not_leaked(value: str, haystack: str | bytes, where: str) -> None:
    """Fail if ``value`` occurs in ``haystack``, without showing either of them."""
    leaked = value.encode("utf-8") in haystack if isinstance(haystack, bytes) else value in haystack
    if leaked:
        pytest.fail(f"a secret value leaked into {where}", pytrace=False)


def _names_key(source: Source, key: Key, reason: str) -> bool:
    """Does ``reason`` name ``key``: its description, its text, or every part of a tuple key?"""
    if source.describe_key(key) in reason or str(key) in reason:
        return True
    return isinstance(key, tuple) and all(str(part) in reason for part in key)


class SourceContractTests:
    """Tests every source must pass. Subclasses provide ``source`` and ``seed`` fixtures."""

    @pytest.fixture
    def source(self) -> Source:
        raise NotImplementedError("a SourceContractTests subclass must provide a `source` fixture")

    @pytest.fixture
    def seed(self) -> Seed:
        raise NotImplementedError("a SourceContractTests subclass must provide a `seed` fixture")

    # -- one key ---------------------------------------------------------------

    def test_seeded_name_is_found_with_the_same_value(self, source: Source, seed: Seed) -> None:
        name, value = unique_name(), canary()
        seed(name, value)
        result = source.get(source.key_for(name))
        assert isinstance(result, Found), "a seeded name must be Found"
        assert result.value.get_secret_value() == value, "Found carries a different value"
        assert_not_leaked(value, result.detail, "Found.detail")
        assert_not_leaked(value, repr(result), "repr(Found)")

    def test_missing_name_is_not_found_naming_the_key(self, source: Source, seed: Seed) -> None:
        planted = canary()
        seed(unique_name(), planted)  # a value the source holds must not show up in the reason
        key = source.key_for(unique_name("ABSENT"))
        result = source.get(key)
        assert isinstance(result, NotFound), "a name never seeded must be NotFound"
        assert _names_key(source, key, result.reason), (
            f"the NotFound reason should name the key ({source.describe_key(key)})"
        )
        assert_not_leaked(planted, result.reason, "NotFound.reason")

    def test_key_for_is_pure_and_hashable(self, source: Source) -> None:
        name = unique_name()
        first, second = source.key_for(name), source.key_for(name)
        assert first == second, "key_for must return the same key for the same name"
        assert hash(first) == hash(second), "keys must be hashable (they key the cache)"
        assert source.key_for(unique_name()) != first, "two names must map to two keys"

    def test_get_many_agrees_with_get(self, source: Source, seed: Seed) -> None:
        present = {unique_name(): canary() for _ in range(3)}
        for name, value in present.items():
            seed(name, value)
        names = [*present, unique_name("ABSENT"), unique_name("ABSENT")]
        keys = [source.key_for(name) for name in names]
        many = source.get_many(keys)
        assert set(many) == set(keys), "get_many must answer every key it was given"
        for name, key in zip(names, keys, strict=True):
            single, batched = source.get(key), many[key]
            assert type(batched) is type(single), f"get_many and get disagree about {name}"
            if isinstance(single, Found):
                assert isinstance(batched, Found)
                assert batched.value == single.value, f"get_many returned another value for {name}"
                assert single.value.get_secret_value() == present[name]
            else:
                assert name not in present, f"{name} was seeded but not found"

    # -- the source as an object -------------------------------------------------

    def test_check_reports_on_this_source(self, source: Source) -> None:
        report = source.check()
        assert isinstance(report, CheckResult)
        assert (report.source, report.type) == (source.name, source.type)
        assert report.status in _STATUSES
        assert report.detail, "check() must say why"

    def test_repr_names_the_source_not_its_values(self, source: Source, seed: Seed) -> None:
        name, value = unique_name(), canary()
        seed(name, value)
        source.get(source.key_for(name))
        assert source.name in repr(source)
        assert_not_leaked(value, repr(source), "repr(source)")
        assert_not_leaked(value, str(source.settings()), "source.settings()")

    def test_pickle_after_lookup_holds_no_value(self, source: Source, seed: Seed) -> None:
        name, value = unique_name(), canary()
        seed(name, value)
        assert isinstance(source.get(source.key_for(name)), Found)
        data = pickle.dumps(source)
        assert_not_leaked(value, data, "pickle.dumps(source)")
        clone = pickle.loads(data)  # noqa: S301 - our own bytes
        assert (clone.name, clone.type) == (source.name, source.type)
        assert clone.key_for(name) == source.key_for(name)

    def test_cloudpickle_after_lookup_holds_no_value(self, source: Source, seed: Seed) -> None:
        cloudpickle: Any = pytest.importorskip("cloudpickle")
        name, value = unique_name(), canary()
        seed(name, value)
        assert isinstance(source.get(source.key_for(name)), Found)
        assert_not_leaked(value, cloudpickle.dumps(source), "cloudpickle.dumps(source)")

    # -- inside a chain ------------------------------------------------------------

    def test_chain_resolves_a_seeded_name(self, source: Source, seed: Seed) -> None:
        name, value = unique_name(), canary()
        seed(name, value)
        with Chain([source], cache_ttl=0) as chain:
            assert chain.resolve(name).get_secret_value() == value
            explanation = chain.explain(name)
        assert explanation.winner is not None
        assert explanation.winner.source == source.name
        assert_not_leaked(value, str(explanation), "str(explain())")

    def test_chain_lists_the_source_when_nothing_has_the_name(self, source: Source, seed: Seed) -> None:
        planted = canary()
        seed(unique_name(), planted)
        name = unique_name("ABSENT")
        with Chain([source], cache_ttl=0) as chain, pytest.raises(SecretNotFound) as caught:
            chain.resolve(name)
        text = str(caught.value)
        assert f"\n    {source.label}: " in text, "SecretNotFound must list the source"
        assert [a.source for a in caught.value.attempts] == ["explicit", source.name]
        assert caught.value.attempts[-1].outcome == "not_found"
        assert_not_leaked(planted, text, "SecretNotFound")

    def test_chain_default_when_missing(self, source: Source) -> None:
        marker = object()
        with Chain([source], cache_ttl=0) as chain:
            assert chain.resolve(unique_name("ABSENT"), default=marker) is marker
