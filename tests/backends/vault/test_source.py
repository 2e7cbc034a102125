"""VaultSource against a real OpenBao dev server (tests/servers/openbao.py).

Request counts come from the server's own audit log, so "exactly one request"
means one request reached OpenBao, not one call into hvac.
"""

from __future__ import annotations

import base64
import json
import pickle
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from authchain import BackendError, Chain, ConfigError, SecretNotFound, SecretValue
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultKey, VaultSource
from authchain.refs import SecretRef
from authchain.sources.base import Found, NotFound
from authchain.testing import canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked, unique_name
from tests.servers.openbao import OpenBao

pytest.importorskip("hvac", reason="needs the vault extra")


def vault(openbao: OpenBao, creds: dict[str, str] | None = None, **settings: Any) -> VaultSource:
    """A VaultSource bound to a chain whose only other source holds its credentials."""
    source = VaultSource(url=openbao.url, **settings)
    if creds is None:
        creds = {"VAULT_TOKEN": openbao.tokens["reader"]}
    Chain([source, EnvSource(environ=creds, name="creds")])  # binds: credentials come from here
    return source


def approle(openbao: OpenBao, role: str = "app", **settings: Any) -> VaultSource:
    role_id, secret_id = openbao.approles[role]
    return vault(
        openbao, {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}, auth="approle", **settings
    )


def value_of(result: Found | NotFound) -> str:
    assert isinstance(result, Found), f"expected Found, got {result!r}"
    value = result.value.get_secret_value()
    assert isinstance(value, str)
    return value


@pytest.fixture
def prefix() -> str:
    """A fresh folder under t/ (readable by the reader policy) for one test."""
    return f"t/{secrets.token_hex(4)}"


def test_a_reference_source_gets_its_token_from_the_chain_that_made_it(
    openbao: OpenBao, prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No [sources.vault] here: a vault:// reference makes a default Vault source, and its
    token must come from this chain, not from the process's default chain."""
    value = canary()
    openbao.put(f"{prefix}/ref", {"value": value})
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.vault-token
    monkeypatch.chdir(tmp_path)  # no authchain.toml
    chain = Chain([EnvSource(environ={"VAULT_TOKEN": openbao.tokens["reader"]})])
    try:
        assert chain.resolve(f"vault://secret/{prefix}/ref#value") == SecretValue(value)
    finally:
        chain.close()


# -- the contract, on KV v2 and KV v1 ---------------------------------------------------


class TestVaultKV2Contract(SourceContractTests):
    @pytest.fixture
    def source(self, openbao: OpenBao, prefix: str) -> VaultSource:
        return vault(openbao, path_prefix=prefix)

    @pytest.fixture
    def seed(self, openbao: OpenBao, prefix: str) -> Seed:
        def put(name: str, value: str) -> None:
            openbao.put(f"{prefix}/{name}", {name: value})

        return put


class TestVaultKV1Contract(SourceContractTests):
    @pytest.fixture
    def source(self, openbao: OpenBao, prefix: str) -> VaultSource:
        return vault(openbao, mount="kv1", kv_version=1, path_prefix=prefix, name="vault-kv1")

    @pytest.fixture
    def seed(self, openbao: OpenBao, prefix: str) -> Seed:
        def put(name: str, value: str) -> None:
            openbao.put(f"{prefix}/{name}", {"value": value}, mount="kv1")

        return put


class TestVaultAppRoleContract(TestVaultKV2Contract):
    @pytest.fixture
    def source(self, openbao: OpenBao, prefix: str) -> VaultSource:
        return approle(openbao, path_prefix=prefix, name="vault-approle")


# -- names, fields, versions ----------------------------------------------------------------


def test_name_maps_to_mount_prefix_name(openbao: OpenBao) -> None:
    source = VaultSource(url=openbao.url, mount="secret", path_prefix="app/prod")
    key = source.key_for("DB_PASSWORD")
    assert key == VaultKey("secret", "app/prod/DB_PASSWORD", 2, None, ("DB_PASSWORD", "value"), True)
    assert source.describe_key(key) == "secret/app/prod/DB_PASSWORD"
    assert VaultSource(url=openbao.url).key_for("a/b") == VaultKey("secret", "a/b", 2, None, ("a/b", "value"))


def test_kv2_latest_and_pinned_versions(openbao: OpenBao, prefix: str) -> None:
    first, second = canary("v1"), canary("v2")
    openbao.put(f"{prefix}/db", {"password": first})
    openbao.put(f"{prefix}/db", {"password": second})
    chain = Chain([vault(openbao)], cache_ttl=0)
    assert chain.resolve(f"vault://secret/{prefix}/db#password").get_secret_value() == second
    assert chain.resolve(f"vault://secret/{prefix}/db?version=1#password").get_secret_value() == first
    assert chain.resolve(f"vault://secret/{prefix}/db?version=2#password").get_secret_value() == second
    explanation = chain.explain(f"vault://secret/{prefix}/db?version=1#password")
    assert explanation.winner is not None
    assert f"secret/{prefix}/db (version 1)" in explanation.winner.detail


def test_missing_version_is_not_found(openbao: OpenBao, prefix: str) -> None:
    openbao.put(f"{prefix}/db", {"password": canary()})
    source = vault(openbao)
    key, _ = source.key_for_ref(SecretRef.parse(f"vault://secret/{prefix}/db?version=7#password"))
    result = source.get(key)
    assert isinstance(result, NotFound)
    assert f"secret/{prefix}/db (version 7)" in result.reason


def test_soft_deleted_latest_version_is_not_found(openbao: OpenBao, prefix: str) -> None:
    kept = canary()
    openbao.put(f"{prefix}/gone", {"value": kept})
    openbao.put(f"{prefix}/gone", {"value": canary()})
    openbao.client().secrets.kv.v2.delete_latest_version_of_secret(f"{prefix}/gone", mount_point="secret")
    source = vault(openbao, path_prefix=prefix)
    result = source.get(source.key_for("gone"))
    assert isinstance(result, NotFound)
    assert "deleted" in result.reason
    chain = Chain([source], cache_ttl=0)
    assert chain.resolve(f"vault://secret/{prefix}/gone?version=1").get_secret_value() == kept


def test_kv1_by_setting_and_by_reference(openbao: OpenBao, prefix: str) -> None:
    value = canary()
    openbao.put(f"{prefix}/API_KEY", {"API_KEY": value, "other": canary()}, mount="kv1")
    kv1 = vault(openbao, mount="kv1", kv_version=1, path_prefix=prefix)
    assert value_of(kv1.get(kv1.key_for("API_KEY"))) == value
    # A reference to another mount says ?kv=1; to the configured mount it inherits kv_version.
    default = Chain([vault(openbao)], cache_ttl=0)
    assert default.resolve(f"vault://kv1/{prefix}/API_KEY?kv=1#API_KEY").get_secret_value() == value
    assert Chain([kv1]).resolve(f"vault://kv1/{prefix}/API_KEY").get_secret_value() == value


def test_json_fields(openbao: OpenBao, prefix: str) -> None:
    user, password = canary("user"), canary("pw")
    openbao.put(f"{prefix}/db", {"user": user, "password": password, "port": 5432, "tls": True})
    chain = Chain([vault(openbao)], cache_ttl=0)
    ref = f"vault://secret/{prefix}/db"
    assert chain.resolve(f"{ref}#user").get_secret_value() == user
    assert chain.resolve(f"{ref}#password").get_secret_value() == password
    assert chain.resolve(f"{ref}#port").get_secret_value() == "5432"
    # No #KEY and no field named like the path or 'value': the whole secret, as JSON.
    whole = chain.resolve(ref)
    assert whole.json() == {"user": user, "password": password, "port": 5432, "tls": True}
    assert whole.fields()["password"].get_secret_value() == password
    with pytest.raises(SecretNotFound, match=r"has no field 'nope'"):
        chain.resolve(f"{ref}#nope")


def test_bare_name_reads_its_own_field_then_value(openbao: OpenBao, prefix: str) -> None:
    own, plain = canary("own"), canary("plain")
    openbao.put(f"{prefix}/TOKEN", {"TOKEN": own, "value": canary()})
    openbao.put(f"{prefix}/SIMPLE", {"value": plain})
    chain = Chain([vault(openbao, path_prefix=prefix)], cache_ttl=0)
    assert chain.resolve("TOKEN").get_secret_value() == own
    assert chain.resolve("SIMPLE").get_secret_value() == plain


def test_field_setting_picks_one_field_or_not_found(openbao: OpenBao, prefix: str) -> None:
    password = canary()
    openbao.put(f"{prefix}/DB", {"password": password, "user": "app"})
    openbao.put(f"{prefix}/OTHER", {"user": "app"})
    source = vault(openbao, path_prefix=prefix, field="password")
    assert value_of(source.get(source.key_for("DB"))) == password
    missing = source.get(source.key_for("OTHER"))
    assert missing == NotFound(f"secret/{prefix}/OTHER has no field 'password'")


def test_missing_secret_is_not_found_naming_the_path(openbao: OpenBao, prefix: str) -> None:
    source = vault(openbao, path_prefix=prefix)
    assert source.get(source.key_for("NOPE")) == NotFound(f"no secret at secret/{prefix}/NOPE")


# -- access denied ------------------------------------------------------------------------------


def test_forbidden_is_access_denied_after_exactly_one_request(openbao: OpenBao) -> None:
    name = unique_name("PRIVATE")
    openbao.put(f"private/{name}", {name: canary()})
    env_value = canary("env")
    source = vault(openbao, path_prefix="private")
    chain = Chain([source, EnvSource(environ={name: env_value})], retries=3, backoff=0)
    mark = openbao.audit_mark()
    with pytest.raises(BackendError) as caught:
        chain.resolve(name)
    assert openbao.requests_since(mark) == [f"secret/data/private/{name}"]
    error = caught.value
    assert error.access_denied
    assert not error.retryable
    assert error.source == "vault"
    assert f"access denied to secret/private/{name}" in str(error)
    assert_not_leaked(env_value, str(error), "the access-denied error")


def test_forbidden_and_missing_is_still_access_denied(openbao: OpenBao) -> None:
    source = vault(openbao, path_prefix="private")
    with pytest.raises(BackendError) as caught:
        source.get(source.key_for(unique_name("ABSENT")))
    assert caught.value.access_denied


def test_forbidden_as_missing_moves_the_chain_on(openbao: OpenBao) -> None:
    name = unique_name("HIDDEN")
    openbao.put(f"private/{name}", {name: canary()})
    env_value = canary("env")
    source = vault(openbao, path_prefix="private", forbidden_as_missing=True)
    chain = Chain([source, EnvSource(environ={name: env_value})])
    assert chain.resolve(name).get_secret_value() == env_value
    vault_attempt = chain.explain(name).attempts[1]
    assert vault_attempt.outcome == "not_found"
    assert "forbidden_as_missing" in vault_attempt.detail


# -- credentials ---------------------------------------------------------------------------------


def test_token_comes_from_the_chain(openbao: OpenBao, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(openbao.home.parent / "empty-home"))
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    source = vault(
        openbao, {"READER_TOKEN": openbao.tokens["reader"]}, token="READER_TOKEN", path_prefix=prefix
    )
    assert value_of(source.get(source.key_for("X"))) == value


def test_token_by_reference(openbao: OpenBao, prefix: str) -> None:
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    # env:// goes to the chain's env source: here the credentials source.
    creds = {"BAO_READER": openbao.tokens["reader"]}
    source = vault(openbao, creds, token="env://BAO_READER", path_prefix=prefix)
    assert value_of(source.get(source.key_for("X"))) == value


def test_token_falls_back_to_hvac_default(
    openbao: OpenBao, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    monkeypatch.setenv("VAULT_TOKEN", openbao.tokens["reader"])
    source = vault(openbao, {}, path_prefix=prefix)  # no token name given: hvac's default may apply
    assert value_of(source.get(source.key_for("X"))) == value
    named = vault(openbao, {}, token="NOT_SET_ANYWHERE", path_prefix=prefix)
    with pytest.raises(BackendError, match="NOT_SET_ANYWHERE was not found"):  # a named one never does
        named.get(named.key_for("X"))


def test_no_token_anywhere_is_an_access_error(
    openbao: OpenBao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.vault-token either
    source = vault(openbao, {})
    mark = openbao.audit_mark()
    with pytest.raises(BackendError, match="no Vault token: VAULT_TOKEN was not found") as caught:
        source.get(source.key_for("X"))
    assert caught.value.access_denied
    assert openbao.requests_since(mark) == []
    assert Chain([source]).check()[0].status == "unauthenticated"


def test_approle_login_with_chain_resolved_ids(openbao: OpenBao, prefix: str) -> None:
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    source = approle(openbao, path_prefix=prefix)
    mark = openbao.audit_mark()
    assert value_of(source.get(source.key_for("X"))) == value
    assert value_of(source.get(source.key_for("X"))) == value
    assert openbao.requests_since(mark) == [
        "auth/approle/login",
        f"secret/data/{prefix}/X",
        f"secret/data/{prefix}/X",
    ]


def test_approle_bad_secret_id_is_refused(openbao: OpenBao) -> None:
    role_id, _ = openbao.approles["app"]
    wrong = canary("secret-id")
    source = vault(openbao, {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": wrong}, auth="approle")
    with pytest.raises(BackendError) as caught:
        Chain([source], retries=3, backoff=0).resolve("X")
    assert caught.value.access_denied
    assert "approle login at auth/approle was refused" in str(caught.value)
    assert_not_leaked(wrong, str(caught.value), "the login error")
    report = Chain([source]).check()[0]
    assert report.status == "unauthenticated"


def test_approle_without_role_id_says_which_name_is_missing(openbao: OpenBao) -> None:
    source = vault(openbao, {}, auth="approle", role_id="MY_ROLE_ID")
    with pytest.raises(BackendError, match="MY_ROLE_ID was not found by any other source"):
        source.get(source.key_for("X"))


def test_check_reports_authenticated_and_unauthenticated(openbao: OpenBao) -> None:
    good = Chain([vault(openbao)]).check()[0]
    assert good.status == "ok"
    assert "authenticated (token)" in good.detail
    assert "reader" in good.detail
    bad_token = canary("token")
    bad = Chain([vault(openbao, {"VAULT_TOKEN": bad_token})]).check()[0]
    assert bad.status == "unauthenticated"
    assert_not_leaked(bad_token, bad.detail, "check()")


def test_check_with_a_token_that_may_not_look_itself_up(openbao: OpenBao) -> None:
    root = openbao.client()
    token = root.auth.token.create(policies=["reader"], no_default_policy=True, ttl="1h")["auth"][
        "client_token"
    ]
    report = Chain([vault(openbao, {"VAULT_TOKEN": token})]).check()[0]
    assert report.status == "ok"
    assert "may not look itself up" in report.detail


# -- token lifetime ---------------------------------------------------------------------------------


def test_expired_login_token_logs_in_again_once(openbao: OpenBao, prefix: str) -> None:
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    # A frozen clock: the source believes its 1-second token is still fresh, so
    # only the server's 403 can tell it the token has expired.
    source = approle(openbao, "short", path_prefix=prefix, clock=lambda: 0.0)
    read = f"secret/data/{prefix}/X"
    mark = openbao.audit_mark()
    assert value_of(source.get(source.key_for("X"))) == value
    time.sleep(1.6)
    assert value_of(source.get(source.key_for("X"))) == value
    assert openbao.requests_since(mark) == [
        "auth/approle/login",
        read,
        read,  # 403: the token expired
        "auth/token/lookup-self",  # 403 too: it is the token, not a policy
        "auth/approle/login",
        read,
    ]


def test_revoked_static_token_is_access_denied_without_a_loop(openbao: OpenBao, prefix: str) -> None:
    root = openbao.client()
    token = root.auth.token.create(policies=["reader"], ttl="1h")["auth"]["client_token"]
    openbao.put(f"{prefix}/X", {"X": canary()})
    source = vault(openbao, {"VAULT_TOKEN": token}, path_prefix=prefix)
    assert isinstance(source.get(source.key_for("X")), Found)
    root.auth.token.revoke(token)
    mark = openbao.audit_mark()
    with pytest.raises(BackendError, match="rejected the token") as caught:
        source.get(source.key_for("X"))
    assert caught.value.access_denied
    assert openbao.requests_since(mark) == [f"secret/data/{prefix}/X", "auth/token/lookup-self"]


def test_rotated_static_token_is_picked_up_after_a_rejection(openbao: OpenBao, prefix: str) -> None:
    root = openbao.client()
    old = root.auth.token.create(policies=["reader"], ttl="1h")["auth"]["client_token"]
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    creds = {"VAULT_TOKEN": old}
    source = vault(openbao, creds, path_prefix=prefix)
    assert value_of(source.get(source.key_for("X"))) == value
    root.auth.token.revoke(old)
    creds["VAULT_TOKEN"] = openbao.tokens["reader"]  # rotated where the chain finds it (and cached)
    assert value_of(source.get(source.key_for("X"))) == value


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_renewable_token_is_renewed_before_its_ttl_runs_out(openbao: OpenBao, prefix: str) -> None:
    openbao.put(f"{prefix}/X", {"X": canary()})
    clock = FakeClock()
    source = approle(openbao, "app", path_prefix=prefix, clock=clock)  # 60 s tokens
    read = f"secret/data/{prefix}/X"
    mark = openbao.audit_mark()
    source.get(source.key_for("X"))
    clock.now += 30  # half the TTL: nothing to do yet
    source.get(source.key_for("X"))
    clock.now += 15  # past two thirds
    source.get(source.key_for("X"))
    source.get(source.key_for("X"))
    assert openbao.requests_since(mark) == [
        "auth/approle/login",
        read,
        read,
        "auth/token/renew-self",
        read,
        read,
    ]


def test_non_renewable_token_means_a_fresh_login(openbao: OpenBao, prefix: str) -> None:
    openbao.put(f"{prefix}/X", {"X": canary()})
    clock = FakeClock()
    source = approle(openbao, "batch", path_prefix=prefix, clock=clock)  # batch tokens never renew
    read = f"secret/data/{prefix}/X"
    mark = openbao.audit_mark()
    source.get(source.key_for("X"))
    clock.now += 45
    source.get(source.key_for("X"))
    assert openbao.requests_since(mark) == ["auth/approle/login", read, "auth/approle/login", read]


def test_failed_refresh_keeps_a_valid_token_until_it_must_be_replaced(
    openbao: OpenBao, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    root = openbao.client()
    role_id, _ = openbao.approles["batch"]
    secret_id = root.auth.approle.generate_secret_id("batch")["data"]["secret_id"]
    clock = FakeClock()
    source = vault(
        openbao,
        {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id},
        auth="approle",
        path_prefix=prefix,
        clock=clock,
    )
    assert value_of(source.get(source.key_for("X"))) == value
    root.auth.approle.destroy_secret_id("batch", secret_id)  # every later login is refused
    clock.now += 45  # advisory window: the refresh fails, the token still works
    with caplog.at_level("WARNING", logger="authchain.backends.vault.source"):
        assert value_of(source.get(source.key_for("X"))) == value
    assert "token refresh failed" in caplog.text
    assert_not_leaked(secret_id, caplog.text, "the warning")
    clock.now += 14  # one second before expiry: a new token is mandatory
    with pytest.raises(BackendError, match="was refused") as caught:
        source.get(source.key_for("X"))
    assert caught.value.access_denied


# -- many reads, one login ----------------------------------------------------------------------------


def test_resolve_many_30_paths_in_parallel_with_one_login(openbao: OpenBao, prefix: str) -> None:
    values = {f"S{number:02d}": canary() for number in range(30)}
    for name, value in values.items():
        openbao.put(f"{prefix}/{name}", {name: value})
    source = approle(openbao, path_prefix=prefix)
    mark = openbao.audit_mark()
    with Chain([source], max_workers=8) as chain:
        resolved = chain.resolve_many(list(values))
    assert {name: secret.get_secret_value() for name, secret in resolved.items()} == values
    paths = openbao.requests_since(mark)
    assert paths.count("auth/approle/login") == 1
    assert sorted(path for path in paths if path.startswith("secret/")) == sorted(
        f"secret/data/{prefix}/{name}" for name in values
    )


# -- a chain with a weaker source behind -------------------------------------------------------------


def test_vault_shadows_env_and_explain_shows_it(openbao: OpenBao, prefix: str) -> None:
    name = unique_name("SHADOW")
    in_vault, in_env = canary("vault"), canary("env")
    openbao.put(f"{prefix}/{name}", {name: in_vault})
    chain = Chain([vault(openbao, path_prefix=prefix), EnvSource(environ={name: in_env})], cache_ttl=0)
    assert chain.resolve(name).get_secret_value() == in_vault
    explanation = chain.explain(name)
    assert explanation.winner is not None
    assert explanation.winner.source == "vault"
    assert [attempt.source for attempt in explanation.shadowed] == ["env"]
    text = str(explanation)
    assert "also defined in (shadowed): env" in text
    assert f"secret/{prefix}/{name}" in text
    assert_not_leaked(in_vault, text, "explain")
    assert_not_leaked(in_env, text, "explain")


def test_vault_miss_falls_through_to_env(openbao: OpenBao, prefix: str) -> None:
    name = unique_name("ONLY_ENV")
    in_env = canary("env")
    chain = Chain([vault(openbao, path_prefix=prefix), EnvSource(environ={name: in_env})])
    assert chain.resolve(name).get_secret_value() == in_env
    assert chain.explain(name).attempts[1].detail == f"no secret at secret/{prefix}/{name}"


# -- paths are validated before any request ------------------------------------------------------------


@pytest.mark.parametrize("name", ["../etc", "a/../b", "a//b", "/abs", "trail/", ".", "a b", "a%2e", "x\\y"])
def test_bad_names_are_rejected_before_any_request(openbao: OpenBao, name: str) -> None:
    source = vault(openbao)
    mark = openbao.audit_mark()
    with pytest.raises(ConfigError):
        source.key_for(name)
    with pytest.raises(ConfigError):
        Chain([source]).resolve(name)
    assert openbao.requests_since(mark) == []


def test_traversal_in_references_and_settings_is_rejected(openbao: OpenBao) -> None:
    source = vault(openbao)
    mark = openbao.audit_mark()
    with pytest.raises(ConfigError, match=r"'\.' and '\.\.' are not allowed"):
        Chain([source]).resolve("vault://secret/../sys/policy")
    with pytest.raises(ConfigError, match=r"not allowed"):  # a SecretRef built without parse()
        source.key_for_ref(SecretRef("vault", "secret/../sys/policy"))
    with pytest.raises(ConfigError, match="mount"):
        VaultSource(url=openbao.url, mount="../sys")
    with pytest.raises(ConfigError, match="path_prefix"):
        VaultSource(url=openbao.url, path_prefix="app/../../sys")
    assert openbao.requests_since(mark) == []


# -- the server goes away ------------------------------------------------------------------------------------


def test_server_stopped_mid_run_is_a_retryable_error_in_bounded_time(own_openbao: OpenBao) -> None:
    value = canary()
    own_openbao.put("t/X", {"X": value})
    source = vault(own_openbao, {"VAULT_TOKEN": own_openbao.root_token}, path_prefix="t", timeout=2)
    chain = Chain([source], cache_ttl=0, retries=2, backoff=0.01)
    assert chain.resolve("X").get_secret_value() == value
    own_openbao.stop()
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        chain.resolve("X")
    assert time.monotonic() - started < 5
    assert caught.value.retryable
    assert "cannot connect to http://127.0.0.1:" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)
    assert chain.check()[0].status == "unreachable"


def test_hung_server_times_out(openbao: OpenBao) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        source = VaultSource(url=f"http://127.0.0.1:{port}", timeout=0.3)
        Chain([source, EnvSource(environ={"VAULT_TOKEN": openbao.tokens["reader"]})])
        started = time.monotonic()
        with pytest.raises(BackendError) as caught:
            Chain([source], retries=1, backoff=0.01).resolve("X")
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert caught.value.retryable
    assert "within 0.3s" in str(caught.value)


def test_something_else_on_the_port_is_not_vault(tmp_path: Path) -> None:
    import http.server
    import threading

    class NotVault(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotVault)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        source = VaultSource(url=f"http://127.0.0.1:{server.server_address[1]}")
        Chain([source, EnvSource(environ={"VAULT_TOKEN": canary()})])
        with pytest.raises(BackendError, match="did not answer like Vault") as caught:
            source.get(source.key_for("X"))
        assert "text/html" in str(caught.value)
        assert not caught.value.retryable
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- jwt and kubernetes login against the real jwt auth method -----------------------------------------------


@pytest.fixture(scope="module")
def jwt_signer(openbao: OpenBao) -> Any:
    """auth/jwt with a fresh RSA key (enabled if it is not yet); return a function that signs a
    token for role 'ci'."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root = openbao.client()
    methods = root.sys.list_auth_methods()
    if "jwt/" not in methods.get("data", methods):  # another module (test_source_on_the_loop) enabled it
        root.sys.enable_auth_method("jwt")
    root.auth.jwt.configure(jwt_validation_pubkeys=[public.decode()], bound_issuer="authchain-test")
    root.auth.jwt.create_role(
        "ci",
        user_claim="sub",
        allowed_redirect_uris=[],
        bound_audiences=["authchain"],
        token_policies=["reader"],
    )

    def encode(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    def sign() -> str:
        now = int(time.time())
        claims = {"sub": "ci-job", "aud": "authchain", "iss": "authchain-test", "iat": now, "exp": now + 300}
        unsigned = f"{encode({'alg': 'RS256', 'typ': 'JWT'})}.{encode(claims)}"
        signature = key.sign(unsigned.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{unsigned}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    return sign


def test_jwt_login_from_a_file(openbao: OpenBao, prefix: str, jwt_signer: Any, tmp_path: Path) -> None:
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    token_file = tmp_path / "jwt"
    token_file.write_text(jwt_signer() + "\n")
    source = vault(openbao, {}, auth="jwt", role="ci", jwt_path=token_file, path_prefix=prefix)
    mark = openbao.audit_mark()
    assert value_of(source.get(source.key_for("X"))) == value
    assert openbao.requests_since(mark) == ["auth/jwt/login", f"secret/data/{prefix}/X"]


def test_jwt_login_from_the_chain(openbao: OpenBao, prefix: str, jwt_signer: Any) -> None:
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    source = vault(openbao, {"CI_JWT": jwt_signer()}, auth="jwt", role="ci", jwt="CI_JWT", path_prefix=prefix)
    assert value_of(source.get(source.key_for("X"))) == value


def test_kubernetes_login_posts_the_service_account_token(
    openbao: OpenBao, prefix: str, jwt_signer: Any, tmp_path: Path
) -> None:
    # Kubernetes login sends {role, jwt} to auth/<mount>/login exactly as the jwt
    # method does; pointed at the jwt mount, the real server checks the token the
    # source read from its service-account file.
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    token_file = tmp_path / "sa-token"
    token_file.write_text(jwt_signer())
    source = vault(
        openbao, {}, auth="kubernetes", role="ci", auth_mount="jwt", jwt_path=token_file, path_prefix=prefix
    )
    assert value_of(source.get(source.key_for("X"))) == value


def test_kubernetes_without_a_token_file_is_unauthenticated(openbao: OpenBao, tmp_path: Path) -> None:
    source = vault(openbao, {}, auth="kubernetes", role="app", jwt_path=tmp_path / "missing")
    with pytest.raises(BackendError, match="cannot read the JWT at") as caught:
        source.get(source.key_for("X"))
    assert caught.value.access_denied
    assert VaultSource(url=openbao.url, auth="kubernetes", role="r").jwt_path == Path(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )


# -- settings, config and packaging ------------------------------------------------------------------


def test_from_config_file(
    openbao: OpenBao, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary()
    openbao.put(f"{prefix}/DB_PASSWORD", {"DB_PASSWORD": value})
    monkeypatch.setenv("AUTHCHAIN_TEST_BAO_URL", openbao.url)
    monkeypatch.setenv("AUTHCHAIN_TEST_READER", openbao.tokens["reader"])
    config = tmp_path / "authchain.toml"
    config.write_text(
        f"""
[sources.vault]
type = "vault"
url = "${{AUTHCHAIN_TEST_BAO_URL}}"
path_prefix = "{prefix}"
token = "AUTHCHAIN_TEST_READER"
timeout = 2

[sources.env]
type = "env"
"""
    )
    chain = Chain.from_config(config)
    assert [source.name for source in chain.sources] == ["vault", "env"]
    assert chain.resolve("DB_PASSWORD").get_secret_value() == value
    settings = chain.source("vault").settings()
    assert settings["token"] == "AUTHCHAIN_TEST_READER"
    assert_not_leaked(openbao.tokens["reader"], repr(settings), "settings()")


def test_config_rejects_a_literal_token(tmp_path: Path) -> None:
    literal = "s." + secrets.token_hex(12)
    config = tmp_path / "authchain.toml"
    config.write_text(f'[sources.vault]\ntype = "vault"\nurl = "http://127.0.0.1:1"\ntoken = "{literal}"\n')
    with pytest.raises(ConfigError, match="looks like a literal secret") as caught:
        Chain.from_config(config)
    assert_not_leaked(literal, str(caught.value), "the config error")


@pytest.mark.parametrize("setting", ["token", "role_id", "secret_id", "jwt"])
def test_credential_settings_take_names_not_values(setting: str) -> None:
    literal = "hvs." + secrets.token_hex(12)
    with pytest.raises(ConfigError, match=f"{setting} must be the name of a secret") as caught:
        VaultSource(url="http://127.0.0.1:1", **{setting: literal})
    assert_not_leaked(literal, str(caught.value), "the error")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "127.0.0.1:8200"}, "url must start with http"),
        ({"kv_version": 3}, "kv_version must be 1 or 2"),
        ({"auth": "ldap"}, "auth must be one of"),
        ({"auth": "jwt"}, "auth = 'jwt' needs role"),
        ({"timeout": 0}, "timeout must be a positive"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VaultSource(**settings)


def test_address_defaults_to_vault_addr(
    openbao: OpenBao, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    source = VaultSource(path_prefix=prefix, environ={"VAULT_ADDR": openbao.url})
    Chain([source, EnvSource(environ={"VAULT_TOKEN": openbao.tokens["reader"]})])
    assert value_of(source.get(source.key_for("X"))) == value
    unset = VaultSource(environ={})
    with pytest.raises(ConfigError, match=r"set url = '\.\.\.' or VAULT_ADDR"):
        unset.get(unset.key_for("X"))


def test_missing_hvac_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hvac", None)  # what `import hvac` sees without the extra
    source = VaultSource(url="http://127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"pip install 'authchain\[vault\]'"):
        source.get(source.key_for("X"))


def test_registered_as_a_builtin_type() -> None:
    from authchain._registry import load_source_class, registered_types

    assert load_source_class("vault") is VaultSource
    assert registered_types()["vault"].endswith(":VaultSource")  # as the installed entry point names it
    assert (VaultSource.type, VaultSource.rank, VaultSource.extra, VaultSource.concurrent) == (
        "vault",
        100,
        "vault",
        True,
    )


def test_pickle_after_login_carries_no_token_or_client(openbao: OpenBao, prefix: str) -> None:
    cloudpickle: Any = pytest.importorskip("cloudpickle")
    value = canary()
    openbao.put(f"{prefix}/X", {"X": value})
    _, secret_id = openbao.approles["app"]
    source = approle(openbao, path_prefix=prefix)
    assert value_of(source.get(source.key_for("X"))) == value
    session_token = source._session_token
    assert session_token
    for data in (pickle.dumps(source), cloudpickle.dumps(source)):
        for secret in (session_token, secret_id, value, openbao.root_token):
            assert_not_leaked(secret, data, "a pickled VaultSource")
    clone = pickle.loads(pickle.dumps(source))  # noqa: S301 - our own bytes
    assert clone._client is None
    assert clone._session_token is None
    assert (clone.url, clone.path_prefix, clone.auth) == (openbao.url, prefix, "approle")
    source.close()
    assert source._client is None
