"""Reading only what was asked, from where it was asked (issue 13, items 5 and 6), on real OpenBao.

A ``vault://`` reference or a vault source reads key/value secrets and nothing
else: Vault's own mounts are refused before any request (counted in the
server's audit log), and any other mount must be a KV engine of the version
the read asks for. A mount typo or a wrong ``kv_version`` is a ``BackendError``
naming the problem, never "not found" (which would let env/.env answer with a
stale value). Every test plants fresh random values and proves they do not
come back, in the result or in any message.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authchain import BackendError, Chain, ConfigError
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultSource
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.servers.openbao import OpenBao

pytest.importorskip("hvac", reason="needs the vault extra")


def vault_chain(
    openbao: OpenBao, *, token: str | None = None, stale: dict[str, str] | None = None, **settings: Any
) -> tuple[VaultSource, Chain]:
    """A vault source (with ``settings``), then an env source holding ``stale`` values, then its token."""
    cache_ttl = settings.pop("cache_ttl", 300.0)
    source = VaultSource(url=openbao.url, timeout=5.0, **settings)
    environ = {"VAULT_TOKEN": token or openbao.tokens["reader"]}
    chain = Chain(
        [
            source,
            EnvSource(environ=dict(stale or {}), name="stale"),
            EnvSource(environ=environ, name="creds"),
        ],
        retries=2,
        backoff=0.01,
        cache_ttl=cache_ttl,
    )
    return source, chain


def assert_quiet(error: BaseException, *values: str) -> None:
    """Neither the error's text nor its repr holds any of ``values``."""
    for value in values:
        assert_not_leaked(value, str(error), "the error message")
        assert_not_leaked(value, repr(error), "the error repr")


@pytest.fixture
def prefix() -> str:
    return f"t/{secrets.token_hex(4)}"


@pytest.fixture
def own_mount(openbao: OpenBao) -> Iterator[str]:
    """A fresh mount path of this test's own (enabled by the test), disabled at the end."""
    path = f"m{secrets.token_hex(4)}"
    yield path
    openbao.client().sys.disable_secrets_engine(path)


# -- item 5: key/value only -------------------------------------------------------------------


RESERVED_REFERENCES = [
    "vault://auth/token/lookup-self?kv=1#id",
    "vault://auth/token/lookup-self#id",
    "vault://sys/mounts?kv=1",
    "vault://sys/internal/ui/mounts/secret?kv=1",
    "vault://identity/entity/name?kv=1",
    "vault://cubbyhole/{planted}?kv=1#value",
    "vault://cubbyhole/{planted}#value",
]


@pytest.mark.parametrize("reference", RESERVED_REFERENCES)
def test_a_reference_to_vaults_own_mounts_is_refused_before_any_request(
    openbao: OpenBao, reference: str
) -> None:
    # The root token may read all of these: the refusal cannot lean on a policy.
    planted_path, planted = f"p{secrets.token_hex(4)}", canary("cubbyhole")
    root = openbao.client()
    root.write(f"cubbyhole/{planted_path}", value=planted)  # the root token's own cubbyhole
    description = canary("mount-description")  # sys/mounts would show it
    mount = f"d{secrets.token_hex(4)}"
    root.sys.enable_secrets_engine("kv", path=mount, description=description, options={"version": "2"})
    try:
        _, chain = vault_chain(openbao, token=openbao.root_token)
        mark = openbao.audit_mark()
        with pytest.raises(BackendError) as caught:
            chain.resolve(reference.format(planted=planted_path))
        assert not caught.value.retryable
        assert "KV secrets only" in caught.value.message
        assert openbao.requests_since(mark, probes=True) == []  # nothing reached the server
        assert_quiet(caught.value, openbao.root_token, planted, description)
    finally:
        root.sys.disable_secrets_engine(mount)


@pytest.fixture
def namespace(openbao: OpenBao) -> Iterator[str]:
    """A fresh OpenBao namespace (its own sys/, auth/, cubbyhole/ under ``<ns>/``), deleted at the end."""
    name = f"ns{secrets.token_hex(4)}"
    openbao.client().adapter.post(f"/v1/sys/namespaces/{name}")
    yield name
    openbao.client().adapter.delete(f"/v1/sys/namespaces/{name}")


NAMESPACED_REFERENCES = [
    "vault://{ns}/auth/token/lookup-self?kv=1#id",
    "vault://{ns}/auth/token/lookup-self#id",
    "vault://{ns}/sys/mounts?kv=1",
    "vault://{ns}/sys/internal/ui/mounts?kv=1",
    "vault://{ns}/cubbyhole/x?kv=1",
]


@pytest.mark.parametrize("who", ["root", "reader"])
@pytest.mark.parametrize("reference", NAMESPACED_REFERENCES)
def test_vaults_own_mounts_behind_a_namespace_prefix_are_never_read(
    openbao: OpenBao, namespace: str, reference: str, who: str
) -> None:
    """``<namespace>/auth/...`` is Vault's own mount too, under another first segment: a read
    goes only to a mount the probe showed to be KV, so nothing past the probe is requested."""
    token = openbao.root_token if who == "root" else openbao.tokens["reader"]
    description = canary("ns-mount")
    root = openbao.client()
    root.adapter.post(
        f"/v1/{namespace}/sys/mounts/d{secrets.token_hex(4)}",
        json={"type": "kv", "description": description, "options": {"version": "2"}},
    )
    _, chain = vault_chain(openbao, token=token)
    mark = openbao.audit_mark()
    with pytest.raises(BackendError) as caught:
        chain.resolve(reference.format(ns=namespace))
    assert not caught.value.retryable
    assert f"no mount {namespace}/" in caught.value.message
    # The probe for the first segment (not a mount here: the namespace) is all that reached it.
    assert openbao.requests_since(mark, probes=True) == [f"sys/internal/ui/mounts/{namespace}"]
    assert_quiet(caught.value, token, description)


@pytest.mark.parametrize("mount", ["sys", "auth", "auth/token", "identity", "cubbyhole"])
def test_a_vault_source_cannot_be_configured_on_vaults_own_mounts(mount: str) -> None:
    with pytest.raises(ConfigError, match="KV secrets only"):
        VaultSource(url="http://127.0.0.1:1", mount=mount)


def test_a_mount_that_is_not_key_value_is_refused_after_one_probe(openbao: OpenBao, own_mount: str) -> None:
    description = canary("transit")
    root = openbao.client()
    root.sys.enable_secrets_engine("transit", path=own_mount, description=description)
    root.secrets.transit.create_key("k", mount_point=own_mount)
    _, chain = vault_chain(openbao, token=openbao.root_token)
    mark = openbao.audit_mark()
    for reference in (f"vault://{own_mount}/keys/k?kv=1", f"vault://{own_mount}/keys/k"):
        with pytest.raises(BackendError) as caught:
            chain.resolve(reference)
        assert not caught.value.retryable
        assert "'transit' mount, not key/value" in caught.value.message
        assert_quiet(caught.value, openbao.root_token, description)
    # Each try asked the mount's type and never read the engine itself.
    assert set(openbao.requests_since(mark, probes=True)) == {f"sys/internal/ui/mounts/{own_mount}"}


def test_a_configured_mount_inside_another_mount_is_an_error(openbao: OpenBao, prefix: str) -> None:
    name, value, stale = "X", canary("vault"), canary("stale")
    openbao.put(f"{prefix}/{name}", {name: value})
    # "secret/t" is a folder of the secret/ mount, not a mount: reads would go to secret/t/data/...
    source, chain = vault_chain(openbao, stale={name: stale}, mount="secret/t", path_prefix=prefix[2:])
    with pytest.raises(BackendError) as caught:
        chain.resolve(name)
    assert "lies inside the kv mount secret/" in caught.value.message
    assert_quiet(caught.value, value, stale, openbao.tokens["reader"])
    report = source.check()
    assert report.status == "misconfigured"
    assert "secret/t/ is not a mount" in report.detail


def test_the_mount_probe_is_made_once_per_mount(openbao: OpenBao, prefix: str) -> None:
    values = {f"N{i}": canary("vault") for i in range(3)}
    for name, value in values.items():
        openbao.put(f"{prefix}/{name}", {name: value})
    _, chain = vault_chain(openbao, path_prefix=prefix)
    mark = openbao.audit_mark()
    for name, value in values.items():
        assert chain.resolve(name).get_secret_value() == value
    probes = [path for path in openbao.requests_since(mark, probes=True) if path.startswith("sys/")]
    assert probes == ["sys/internal/ui/mounts/secret"]


# -- item 6: a misconfigured source is an error, never "not found" -----------------------------


MISCONFIGURED = [
    # (settings, token, what the message must name). The reader token may use
    # only secret/t/* and kv1/t/*: a read in a mount that does not exist is a 403
    # for it (so an access error), and a 404 "no handler for route" for root.
    ({"mount": "secrett"}, "reader", "no mount secrett/"),
    ({"mount": "secrett", "forbidden_as_missing": True}, "reader", "no mount secrett/"),
    ({"mount": "secrett"}, "root", "no mount secrett/"),
    ({"mount": "secret", "kv_version": 1}, "reader", "secret/ is a KV v2 mount, but it is read as KV v1"),
    ({"mount": "kv1", "kv_version": 2}, "reader", "kv1/ is a KV v1 mount, but it is read as KV v2"),
    ({"mount": "kv1", "kv_version": 2}, "root", "kv1/ is a KV v1 mount, but it is read as KV v2"),
]


@pytest.mark.parametrize(("settings", "who", "problem"), MISCONFIGURED)
def test_a_misconfigured_source_is_an_error_not_a_stale_fallback(
    openbao: OpenBao, prefix: str, settings: dict[str, Any], who: str, problem: str
) -> None:
    name, stale = "DB_PASSWORD", canary("stale")
    token = openbao.root_token if who == "root" else openbao.tokens["reader"]
    planted = {mount: canary(mount) for mount in ("secret", "kv1")}
    for mount, value in planted.items():
        openbao.put(f"{prefix}/{name}", {name: value}, mount=mount)
    source, chain = vault_chain(openbao, token=token, stale={name: stale}, path_prefix=prefix, **settings)
    with pytest.raises(BackendError) as caught:
        chain.resolve(name)
    assert problem in caught.value.message
    assert not caught.value.retryable
    assert_quiet(caught.value, stale, *planted.values(), token)
    explanation = str(chain.explain(name))
    for value in (stale, *planted.values()):
        assert_not_leaked(value, explanation, "explain")
    report = source.check()
    assert report.status == "misconfigured"
    assert problem in report.detail
    assert_not_leaked(token, report.detail, "check")


MISCONFIGURED_REFERENCES = [
    ("vault://secrett/{prefix}/DB_PASSWORD#DB_PASSWORD", "no mount secrett/"),
    (
        "vault://secret/{prefix}/DB_PASSWORD?kv=1#DB_PASSWORD",
        "secret/ is a KV v2 mount, but it is read as KV v1",
    ),
    ("vault://kv1/{prefix}/DB_PASSWORD#DB_PASSWORD", "kv1/ is a KV v1 mount, but it is read as KV v2"),
]


@pytest.mark.parametrize(("reference", "problem"), MISCONFIGURED_REFERENCES)
def test_a_misconfigured_reference_is_an_error(
    openbao: OpenBao, prefix: str, reference: str, problem: str
) -> None:
    name = "DB_PASSWORD"
    planted = {mount: canary(mount) for mount in ("secret", "kv1")}
    for mount, value in planted.items():
        openbao.put(f"{prefix}/{name}", {name: value}, mount=mount)
    _, chain = vault_chain(openbao)
    with pytest.raises(BackendError) as caught:
        chain.resolve(reference.format(prefix=prefix))
    assert problem in caught.value.message
    assert_quiet(caught.value, *planted.values())
    # The right KV version reads it.
    good = f"vault://kv1/{prefix}/{name}?kv=1#{name}"
    assert chain.resolve(good).get_secret_value() == planted["kv1"]


def test_a_missing_secret_on_a_good_mount_is_still_not_found(openbao: OpenBao, prefix: str) -> None:
    fallback = canary("env")
    for mount, version in (("secret", 2), ("kv1", 1)):
        source, chain = vault_chain(
            openbao, stale={"NOWHERE": fallback}, mount=mount, kv_version=version, path_prefix=prefix
        )
        assert chain.resolve("NOWHERE").get_secret_value() == fallback
        report = source.check()
        assert report.status == "ok", report.detail
        assert f"mount {mount}/ is KV v{version}" in report.detail


def test_a_mount_changed_after_the_probe_is_an_error_too(openbao: OpenBao, own_mount: str) -> None:
    """The answers themselves are told apart, not only the probe: a mount removed, or
    remounted as another KV version, after this source probed it."""
    root = openbao.client()
    root.sys.enable_secrets_engine("kv", path=own_mount, options={"version": "1"})
    stale = canary("stale")
    source, chain = vault_chain(
        openbao, token=openbao.root_token, stale={"X": stale}, mount=own_mount, kv_version=1, cache_ttl=0
    )
    assert chain.resolve("X").get_secret_value() == stale  # missing on a good mount: falls through
    root.sys.disable_secrets_engine(own_mount)  # 404 "no handler for route"
    with pytest.raises(BackendError, match=f"there is no mount {own_mount}/") as caught:
        chain.resolve("X")
    assert_quiet(caught.value, stale, openbao.root_token)
    root.sys.enable_secrets_engine("kv", path=own_mount, options={"version": "2"})
    planted = canary("v2")
    root.secrets.kv.v2.create_or_update_secret(path="X", secret={"X": planted}, mount_point=own_mount)
    with pytest.raises(BackendError, match="is a KV v2 mount, but it is read as KV v1") as caught:
        chain.resolve("X")  # a KV v1 read on a v2 mount: 404 with a warning and no data
    assert_quiet(caught.value, stale, planted, openbao.root_token)
    assert source.check().status == "misconfigured"  # a new probe (check never trusts the cache)


def test_authchain_check_reports_a_mount_typo_as_misconfigured(openbao: OpenBao, tmp_path: Path) -> None:
    stale = canary("stale")
    (tmp_path / "authchain.toml").write_text(
        '[sources.vault]\ntype = "vault"\nmount = "secrett"\n\n[sources.env]\ntype = "env"\n',
        encoding="utf-8",
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHCHAIN_", "VAULT_"))}
    environment.update(
        {
            "VAULT_ADDR": openbao.url,
            "VAULT_TOKEN": openbao.tokens["reader"],
            "DB_PASSWORD": stale,
            "HOME": str(tmp_path),
        }
    )
    command = [sys.executable, "-m", "authchain.cli"]
    check = subprocess.run(
        [*command, "check", "--json"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 2, check.stderr
    report = {item["source"]: item for item in json.loads(check.stdout)["sources"]}["vault"]
    assert report["status"] == "misconfigured"
    assert "no mount secrett/" in report["detail"]
    resolve = subprocess.run(
        [*command, "resolve", "--reveal", "DB_PASSWORD"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert resolve.returncode != 0  # the stale env value does not answer
    for output in (check.stdout, check.stderr, resolve.stdout, resolve.stderr):
        assert_not_leaked(stale, output, "CLI output")
        assert_not_leaked(openbao.tokens["reader"], output, "CLI output")
