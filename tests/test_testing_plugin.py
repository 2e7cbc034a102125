"""The pytest plugin and override_secrets: per-test secrets without touching the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import authchain
from authchain import Chain, SecretNotFound
from authchain._default import get_default_chain, set_default_chain
from authchain.backends.env.source import EnvSource
from authchain.testing import MemorySource, canary, override_secrets

pytest_plugins = ["pytester"]


@pytest.fixture
def configured_chain() -> Iterator[Chain]:
    """A known default chain for the duration of one test (no config file is read)."""
    chain = Chain([EnvSource(name="env", environ={"FROM_ENV": "env-value", "BOTH": "env-both"})])
    previous = set_default_chain(chain)
    try:
        yield chain
    finally:
        set_default_chain(previous)


def test_fixture_overrides_resolve_for_one_test(authchain_secrets: MemorySource) -> None:
    value = canary()
    environ_before = dict(os.environ)
    authchain_secrets["DB_PASSWORD"] = value
    assert authchain.resolve("DB_PASSWORD").get_secret_value() == value
    assert authchain.resolve_many(["DB_PASSWORD"])["DB_PASSWORD"].get_secret_value() == value
    explanation = authchain.explain("DB_PASSWORD")
    assert explanation.winner is not None
    assert explanation.winner.source == "override"
    assert dict(os.environ) == environ_before, "the fixture must not touch os.environ"


def test_fixture_asks_no_real_source(
    authchain_secrets: MemorySource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHCHAIN_TEST_REAL", canary())
    with pytest.raises(SecretNotFound) as caught:
        authchain.resolve("AUTHCHAIN_TEST_REAL")
    assert [a.source for a in caught.value.attempts] == ["explicit", "override"]
    assert "    override (memory): AUTHCHAIN_TEST_REAL is not overridden; under override_secrets" in str(
        caught.value
    )


def test_fixture_sees_later_changes_without_caching(authchain_secrets: MemorySource) -> None:
    authchain_secrets["TOKEN"] = "first-value"
    assert authchain.resolve("TOKEN").get_secret_value() == "first-value"
    authchain_secrets["TOKEN"] = "second-value"
    assert authchain.resolve("TOKEN").get_secret_value() == "second-value"


def test_override_is_restored_afterwards(configured_chain: Chain) -> None:
    with override_secrets({"FROM_ENV": "overridden"}) as memory:
        assert isinstance(memory, MemorySource)
        assert authchain.resolve("FROM_ENV").get_secret_value() == "overridden"
        assert get_default_chain() is not configured_chain
    assert get_default_chain() is configured_chain
    assert authchain.resolve("FROM_ENV").get_secret_value() == "env-value"


def test_override_is_restored_after_an_exception(configured_chain: Chain) -> None:
    with pytest.raises(RuntimeError, match="boom"), override_secrets({"X": "y"}):
        raise RuntimeError("boom")
    assert get_default_chain() is configured_chain


def test_without_passthrough_the_configured_chain_is_not_asked(configured_chain: Chain) -> None:
    with override_secrets():
        assert authchain.resolve("FROM_ENV", default=None) is None


def test_passthrough_asks_the_configured_chain_after_the_overrides(configured_chain: Chain) -> None:
    with override_secrets({"BOTH": "override-both"}, passthrough=True):
        assert authchain.resolve("BOTH").get_secret_value() == "override-both"
        assert authchain.resolve("FROM_ENV").get_secret_value() == "env-value"
        explanation = authchain.explain("BOTH")
        assert [a.source for a in explanation.shadowed] == ["env"]
    assert get_default_chain() is configured_chain


USER_SUITE = """
import os

import authchain
import pytest

NAME = "AUTHCHAIN_USER_SUITE_SECRET"


def test_override_is_seen(authchain_secrets):
    before = dict(os.environ)
    authchain_secrets[NAME] = "user-suite-value"
    assert authchain.resolve(NAME).get_secret_value() == "user-suite-value"
    assert NAME not in os.environ
    assert dict(os.environ) == before


def test_next_test_does_not_see_it(authchain_secrets):
    with pytest.raises(authchain.SecretNotFound):
        authchain.resolve(NAME)


def test_without_the_fixture_the_override_is_gone():
    assert authchain.resolve(NAME, default=None) is None
"""


# Other auto-loaded plugins are switched off to keep the inner runs fast
# (hypothesis's plugin imports hypothesis); authchain's still loads through its
# pytest11 entry point, which is what these tests prove.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio")


def test_user_suite_in_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_SUITE)
    previous = set_default_chain(None)  # the inner run builds (and keeps) its own default chain
    try:
        result = pytester.runpytest(*QUIET)
    finally:
        set_default_chain(previous)
    result.assert_outcomes(passed=3)


def test_user_suite_in_a_subprocess_loads_the_plugin_by_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_SUITE)
    result = pytester.runpytest_subprocess(*QUIET, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*plugins:*authchain*"])
