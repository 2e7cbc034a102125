"""The override layer's seam in the chain: no leftovers after a test, no way in outside authchain.testing."""

from __future__ import annotations

import json
import secrets

import pytest

import authchain
from authchain import Chain, SecretNotFound
from authchain._chain import _set_testing_override
from authchain._default import set_default_chain
from authchain.backends.env.source import EnvSource
from authchain.masking import default_masker
from authchain.testing import OverrideSource, override_secrets
from secret_tasks import AWSSecretsManagerSecret, EnvVarSecret, VaultSecret


def _fresh() -> str:
    return f"canary-{secrets.token_hex(12)}"


def test_a_long_lived_chain_neither_keeps_an_override_nor_serves_an_earlier_answer() -> None:
    real, fake = _fresh(), _fresh()
    chain = Chain([EnvSource(name="env", environ={"LIVES_ON": real})], cache_ttl=300)
    assert chain.resolve("LIVES_ON").get_secret_value() == real  # cached and remembered
    with override_secrets({"LIVES_ON": fake}):
        assert chain.resolve("LIVES_ON").get_secret_value() == fake
        assert EnvVarSecret("LIVES_ON", chain=chain)().get_secret_value() == fake
    assert chain.resolve("LIVES_ON").get_secret_value() == real
    with override_secrets(), pytest.raises(SecretNotFound, match="not overridden"):
        chain.resolve("LIVES_ON")
    # An override answer is never cached: the next test's override is what is seen.
    with override_secrets({"LIVES_ON": fake}):
        chain.resolve("LIVES_ON")
    other = _fresh()
    with override_secrets({"LIVES_ON": other}):
        assert chain.resolve("LIVES_ON").get_secret_value() == other


def test_changes_during_a_test_are_seen_by_tasks_and_references(authchain_secrets: OverrideSource) -> None:
    first, second = _fresh(), _fresh()
    authchain_secrets["aws-sm://prod/db#password"] = first
    task = AWSSecretsManagerSecret("prod/db", key="password", region="us-east-1")
    assert task().get_secret_value() == first
    authchain_secrets["aws-sm://prod/db#password"] = second
    assert task().get_secret_value() == second
    del authchain_secrets["aws-sm://prod/db#password"]
    with pytest.raises(SecretNotFound):
        task()


def test_equivalent_reference_spellings_find_the_same_override(authchain_secrets: OverrideSource) -> None:
    value = _fresh()
    authchain_secrets["vault://secret/app?version=2#password"] = value
    assert "vault://secret/app#password?version=2" in authchain_secrets
    assert VaultSecret("app", key="password", version=2)().get_secret_value() == value


def test_a_field_of_a_json_override(authchain_secrets: OverrideSource) -> None:
    value = _fresh()
    authchain_secrets["vault://secret/app"] = json.dumps({"password": value})
    assert VaultSecret("app", key="password")().get_secret_value() == value
    with pytest.raises(authchain.AuthChainError):
        VaultSecret("app", key="absent")()


def test_override_values_are_masked(authchain_secrets: OverrideSource) -> None:
    value = _fresh()
    authchain_secrets["env://MASKED"] = value
    EnvVarSecret("MASKED")()
    assert value not in default_masker.mask(f"log line with {value} inside")


def test_nested_overrides_restore_the_outer_one(authchain_secrets: OverrideSource) -> None:
    outer, inner = _fresh(), _fresh()
    authchain_secrets["NESTED"] = outer
    with override_secrets({"NESTED": inner}):
        assert EnvVarSecret("NESTED")().get_secret_value() == inner
    assert EnvVarSecret("NESTED")().get_secret_value() == outer


def test_only_authchain_testing_can_switch_the_hook_on() -> None:
    class Sneaky:
        source = OverrideSource()

        def lookup_key(self, name: str) -> tuple[str, None]:
            return name, None

    with pytest.raises(TypeError, match=r"only authchain\.testing"):
        _set_testing_override(Sneaky())
    assert _set_testing_override(None) is None  # nothing was installed, nothing is left on


def test_passthrough_set_later_asks_the_configured_chain() -> None:
    value = _fresh()
    configured = Chain([EnvSource(name="env", environ={"LATER": value})])
    previous = set_default_chain(configured)
    try:
        with override_secrets() as memory:
            assert authchain.resolve("LATER", default=None) is None
            memory.passthrough = True
            assert authchain.resolve("LATER").get_secret_value() == value
            memory.passthrough = False
            assert authchain.resolve("LATER", default=None) is None
    finally:
        set_default_chain(previous)
