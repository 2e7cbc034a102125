"""Vault paths are written the way users write them (issue 14, item 7), against the
real OpenBao dev server (tests/servers/openbao.py).

``mount = "/secret/"``, ``path_prefix = "myapp/"``, ``auth_mount = "/approle/"``
and a task's ``path = "/db"`` mean what hvac and Airflow users mean by them: the
edge slashes are dropped. What could name another place (``a//b``, ``..``) is
still a ``ConfigError``, raised before any request and without quoting the
setting, and ``/sys/`` is still Vault's own mount.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain, ConfigError, SecretValue
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultSource
from authchain.testing import canary
from secret_tasks import VaultSecret
from tests.servers.openbao import OpenBao

pytest.importorskip("hvac", reason="needs the vault extra")


def folder() -> str:
    return f"myapp-{secrets.token_hex(4)}"


def revealed(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretValue) else value


def test_config_with_slashed_mount_and_prefix_resolves_a_planted_value(
    openbao: OpenBao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = folder()
    value = canary()
    openbao.put(f"{app}/DB_PASSWORD", {"DB_PASSWORD": value})
    monkeypatch.setenv("PATHS_BAO_TOKEN", openbao.root_token)
    (tmp_path / "authchain.toml").write_text(
        "[sources.vault]\n"
        'type = "vault"\n'
        f'url = "{openbao.url}"\n'
        'token = "env://PATHS_BAO_TOKEN"\n'
        'mount = "/secret/"\n'
        f'path_prefix = "{app}/"\n'
    )
    chain = Chain.from_config(tmp_path / "authchain.toml")
    try:
        source = chain.source("vault")
        assert isinstance(source, VaultSource)
        assert (source.mount, source.path_prefix) == ("secret", app)
        assert chain.resolve("DB_PASSWORD") == SecretValue(value)
    finally:
        chain.close()


@pytest.mark.parametrize(
    ("mount", "prefix"),
    [("/secret/", "/{app}/"), ("secret/", "{app}"), ("/secret", "{app}/"), ("secret", "/{app}")],
)
def test_every_edge_slash_form_reads_the_same_secret(openbao: OpenBao, mount: str, prefix: str) -> None:
    app = folder()
    value = canary()
    openbao.put(f"{app}/TOKEN", {"TOKEN": value})
    source = VaultSource(url=openbao.url, mount=mount, path_prefix=prefix.format(app=app))
    chain = Chain([source, EnvSource(environ={"VAULT_TOKEN": openbao.root_token}, name="creds")])
    try:
        assert chain.resolve("TOKEN") == SecretValue(value)
    finally:
        chain.close()


def test_vault_secret_task_takes_slashed_mount_and_path(
    openbao: OpenBao, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = folder()
    password = canary()
    openbao.put(f"{app}/db", {"password": password})
    monkeypatch.setenv("PATHS_TASK_TOKEN", openbao.root_token)
    options = {"url": openbao.url, "token": "env://PATHS_TASK_TOKEN", "mount": "/secret/", "timeout": 5.0}
    task = VaultSecret(f"/{app}/db", mount="/secret/", key="password", source_options=options)
    assert revealed(task.run()) == password
    assert revealed(task.run(path=f"{app}/db/")) == password


def test_auth_mount_with_slashes_logs_in(openbao: OpenBao) -> None:
    app = folder()
    value = canary()
    openbao.put(f"t/{app}/X", {"X": value})
    role_id, secret_id = openbao.approles["app"]
    source = VaultSource(url=openbao.url, auth="approle", auth_mount="/approle/", path_prefix=f"/t/{app}/")
    assert source.auth_mount == "approle"
    creds = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    chain = Chain([source, EnvSource(environ=creds, name="creds")])
    try:
        assert chain.resolve("X") == SecretValue(value)
    finally:
        chain.close()


# -- what stays an error: before any request, without quoting the setting ------------------------------


def _bad_paths(tag: str) -> list[str]:
    return [f"{tag}//x", f"/{tag}//x/", f"{tag}/../x", f"../{tag}", f"{tag}/..", "..", "/../"]


@pytest.mark.parametrize("setting", ["mount", "path_prefix", "auth_mount"])
def test_inner_empty_segments_and_dot_dot_are_refused_without_the_value(
    openbao: OpenBao, setting: str
) -> None:
    tag = secrets.token_hex(8)
    mark = openbao.audit_mark()
    for bad in _bad_paths(tag):
        with pytest.raises(ConfigError) as caught:
            VaultSource(url=openbao.url, **{setting: bad})
        message = str(caught.value)
        assert setting in message
        assert tag not in message, f"{bad!r}: the message quotes the setting"
        assert ("empty segment" in message) or ("'..'" in message)
    assert openbao.requests_since(mark, probes=True) == []


@pytest.mark.parametrize("setting", ["mount", "auth_mount"])
@pytest.mark.parametrize("empty", ["/", "//"])
def test_a_mount_that_is_only_slashes_is_refused(openbao: OpenBao, setting: str, empty: str) -> None:
    """Not "the default": a slash-only mount is a typo, where an unset auth_mount means its method."""
    with pytest.raises(ConfigError, match=setting):
        VaultSource(url=openbao.url, **{setting: empty})
    assert VaultSource(url=openbao.url, auth_mount="").auth_mount == "token"


@pytest.mark.parametrize("prefix", ["", "/", "//"])
def test_a_prefix_that_is_only_slashes_is_no_prefix(openbao: OpenBao, prefix: str) -> None:
    assert VaultSource(url=openbao.url, path_prefix=prefix).path_prefix == ""


@pytest.mark.parametrize("mount", ["/sys/", "sys/", "/auth", "/identity/", "/cubbyhole/", "/sys/policy/"])
def test_reserved_mounts_are_refused_after_normalising(openbao: OpenBao, mount: str) -> None:
    mark = openbao.audit_mark()
    with pytest.raises(ConfigError, match="one of Vault's own mounts"):
        VaultSource(url=openbao.url, mount=mount)
    assert openbao.requests_since(mark, probes=True) == []


def test_vault_secret_task_refuses_inner_empty_segments_and_dot_dot_before_any_request(
    openbao: OpenBao, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = secrets.token_hex(8)
    monkeypatch.setenv("PATHS_TASK_TOKEN", openbao.root_token)
    options = {"url": openbao.url, "token": "env://PATHS_TASK_TOKEN", "timeout": 5.0}
    mark = openbao.audit_mark()
    for path, mount in [
        (f"{tag}//db", "secret"),
        (f"/{tag}/../db", "secret"),
        ("db", f"/secret//{tag}/"),
        ("../sys/policy", "/secret/"),
    ]:
        with pytest.raises(ConfigError) as caught:
            VaultSecret(path, mount=mount, source_options=options).run()
        assert tag not in str(caught.value)
    with pytest.raises(ConfigError, match="one of Vault's own mounts"):
        VaultSecret("policy", mount="/secret/", source_options={**options, "mount": "/sys/"}).run()
    assert openbao.requests_since(mark, probes=True) == []
