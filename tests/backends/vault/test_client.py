"""vault_client against the real OpenBao dev server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from authchain import BackendError, Chain
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultSource
from authchain.clients import clear, explain_client, vault_client
from authchain.testing import canary
from tests.servers.openbao import OpenBao


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # hvac's own default reads VAULT_TOKEN and ~/.vault-token: make both empty here.
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    clear()
    yield
    clear()


def read(client: object, openbao: OpenBao) -> str:
    value = canary()
    openbao.put("t/clients", {"value": value})
    data = client.secrets.kv.v2.read_secret_version(path="t/clients", raise_on_deleted_version=True)  # type: ignore[attr-defined]
    assert data["data"]["data"]["value"] == value
    return value


def test_token_from_the_chain(openbao: OpenBao) -> None:
    chain = Chain([EnvSource(environ={"VAULT_TOKEN": openbao.tokens["reader"]})], cache_ttl=0)
    client = vault_client(url=openbao.url, chain=chain)
    assert client.is_authenticated()
    read(client, openbao)
    assert (
        explain_client("vault", url=openbao.url, chain=chain).origins["token"] == "chain: env (VAULT_TOKEN)"
    )
    assert vault_client(url=openbao.url, chain=chain) is client


def test_explicit_token(openbao: OpenBao) -> None:
    chain = Chain([EnvSource(environ={})], cache_ttl=0)
    client = vault_client(url=openbao.url, token=openbao.tokens["reader"], chain=chain)
    read(client, openbao)
    explanation = explain_client("vault", url=openbao.url, token=openbao.tokens["reader"], chain=chain)
    assert explanation.origins["token"] == "explicit"
    assert openbao.tokens["reader"] not in str(explanation)


def test_an_explicit_token_wins_even_where_the_token_is_configured_as_a_reference(
    openbao: OpenBao, tmp_path: Path
) -> None:
    """`[clients.vault] token = "env://..."` would send the lookup straight to the env
    source; the explicit value must still be the one used. (The same reference as
    `credential_names` in the same call is a conflict: see test_credentials_inputs.)"""
    config = tmp_path / "authchain.toml"
    config.write_text(
        '[sources.env]\ntype = "env"\n[clients.vault]\ntoken = "env://NOT_THE_TOKEN"\n', encoding="utf-8"
    )
    chain = Chain.from_config(config, environ={"NOT_THE_TOKEN": "s.wrong-token-value"})
    client = vault_client(url=openbao.url, token=openbao.tokens["reader"], chain=chain)
    assert client.is_authenticated()
    read(client, openbao)


def test_approle_login_from_chain_resolved_ids(openbao: OpenBao) -> None:
    role_id, secret_id = openbao.approles["app"]
    chain = Chain([EnvSource(environ={"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id})], cache_ttl=0)
    client = vault_client(url=openbao.url, auth="approle", chain=chain)
    read(client, openbao)
    lookup = client.auth.token.lookup_self()["data"]
    assert "reader" in lookup["policies"]
    origins = explain_client("vault", url=openbao.url, auth="approle", chain=chain).origins
    assert origins["role_id"] == "chain: env (VAULT_ROLE_ID)"
    assert origins["secret_id"] == "chain: env (VAULT_SECRET_ID)"


def test_hvac_default_when_the_chain_has_no_token(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", openbao.tokens["reader"])
    chain = Chain([EnvSource(environ={})], cache_ttl=0)
    read(vault_client(url=openbao.url, chain=chain), openbao)
    origin = explain_client("vault", url=openbao.url, chain=chain).origins["token"]
    assert origin == "native default (hvac: VAULT_TOKEN / ~/.vault-token)"


def test_a_vault_token_stored_in_vault_is_a_clear_error_not_a_loop(openbao: OpenBao) -> None:
    openbao.put("VAULT_TOKEN", {"VAULT_TOKEN": openbao.root_token})
    vault = VaultSource(url=openbao.url)  # reads names from secret/<NAME>; its own token is VAULT_TOKEN
    chain = Chain([vault, EnvSource(environ={})], cache_ttl=0, retries=0)
    started = time.monotonic()
    with pytest.raises(BackendError, match="no Vault token") as caught:
        vault_client(url=openbao.url, chain=chain)
    assert "VAULT_TOKEN was not found by any other source" in str(caught.value)
    with pytest.raises(BackendError, match="no Vault token"):
        chain.resolve("ANYTHING")  # the source itself cannot bootstrap from itself either
    assert time.monotonic() - started < 10
