"""Config files found upwards cannot send the user's credentials where only they say (issue 13, item 8).

A stand-in "attacker" (an HTTP listener on 127.0.0.1 that records every
request's headers and body) is named as the endpoint by an ``authchain.toml``
the chain finds by searching upwards. The user's fresh canary credentials
(``VAULT_TOKEN``, ``~/.vault-token``, AppRole ids, a JWT file, AWS keys and
session token) must never arrive there until the user trusts the file
(``authchain trust``); once trusted, or when named explicitly, the same
file works against the real OpenBao server. The listener's positive control
(a trusted file pointing at it does receive the token) shows the check can fail.
"""

from __future__ import annotations

import json
import os
import pickle
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain
from authchain._default import reset_default_chain
from authchain.clients import aws_client, clear, gcp_secret_manager_client, vault_client
from authchain.config import load_settings
from authchain.errors import ConfigError, SecretNotFound
from tests.servers.openbao import OpenBao


def canary(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


class Listener:
    """An HTTP server on 127.0.0.1 that answers 404 to everything and records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("latin-1") if length else ""
                listener.requests.append(f"{self.command} {self.path}\n{self.headers}\n{body}")
                payload = b'{"errors": []}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _record

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def seen(self) -> str:
        return "\n".join(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def attacker() -> Iterator[Listener]:
    listener = Listener()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A user with fresh canary bootstrap credentials everywhere an SDK looks, and
    a cloned repository (the working directory) whose config the chain finds."""
    home = tmp_path / "home"
    home.mkdir()
    repo = tmp_path / "clone" / "sub"
    repo.mkdir(parents=True)
    creds = {
        "VAULT_TOKEN": canary("env-token"),
        "file_token": canary("file-token"),
        "VAULT_ROLE_ID": canary("role-id"),
        "VAULT_SECRET_ID": canary("secret-id"),
        "jwt": canary("jwt"),
        "AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
        "AWS_SECRET_ACCESS_KEY": canary("aws-secret"),
        "AWS_SESSION_TOKEN": canary("aws-session"),
    }
    (home / ".vault-token").write_text(creds["file_token"])
    (home / "jwt").write_text(creds["jwt"])
    for name in ("VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID"):
        monkeypatch.setenv(name, creds[name])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, creds[name])
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AUTHCHAIN_CONFIG", "AUTHCHAIN_PROFILE", "VAULT_ADDR", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.chdir(repo)
    reset_default_chain()
    clear()
    yield {**creds, "home": str(home), "repo": str(repo), "root": str(tmp_path / "clone")}
    reset_default_chain()
    clear()


def write_config(user: dict[str, str], text: str) -> Path:
    """The repository's config, one folder above the working directory (found by the search)."""
    path = Path(user["root"]) / "authchain.toml"
    path.write_text("retries = 0\n" + text)
    return path


def assert_nothing_arrived(attacker: Listener, user: dict[str, str]) -> None:
    seen = attacker.seen()
    for name, value in user.items():
        if name not in ("home", "repo", "root"):
            assert value not in seen, f"the user's {name} reached the endpoint the untrusted file names"
    assert attacker.requests == [], "nothing at all should be sent to an untrusted endpoint"


VAULT_CASES = {
    "default token (VAULT_TOKEN, ~/.vault-token)": "",
    "the file names VAULT_TOKEN": 'token = "VAULT_TOKEN"\n',
    "the file names env://VAULT_TOKEN": 'token = "env://VAULT_TOKEN"\n',
    "approle from the environment": 'auth = "approle"\n',
    "jwt from a file": 'auth = "jwt"\nrole = "r"\njwt_path = "~/jwt"\n',
}


@pytest.mark.parametrize("how", list(VAULT_CASES))
def test_untrusted_vault_url_gets_no_credentials(
    attacker: Listener, user: dict[str, str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    write_config(user, f'[sources.vault]\ntype = "vault"\nurl = "{attacker.url}"\n{VAULT_CASES[how]}')
    if how.startswith("default"):
        monkeypatch.delenv("VAULT_TOKEN")  # then hvac would read ~/.vault-token
    chain = Chain.from_config()
    assert chain.settings is not None
    assert chain.settings.trust == "untrusted"
    with pytest.raises(ConfigError, match="authchain trust") as caught:
        chain.resolve("DB_PASSWORD")
    assert "found by searching upwards" in str(caught.value)
    assert chain.check()[0].status == "misconfigured"
    assert_nothing_arrived(attacker, user)
    # Siblings: pinned references, the scheme's own references, a pickled copy.
    with pytest.raises(ConfigError, match="authchain trust"):
        chain.resolve("vault://secret/app#password")
    copy = pickle.loads(pickle.dumps(chain))  # noqa: S301 - our own bytes
    with pytest.raises(ConfigError, match="authchain trust"):
        copy.resolve("DB_PASSWORD")
    assert_nothing_arrived(attacker, user)


def test_untrusted_vault_tls_settings_get_no_credentials(
    openbao: OpenBao, user: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``verify = false`` decides whom the user's own VAULT_ADDR is: the file may not weaken it."""
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    write_config(user, '[sources.vault]\ntype = "vault"\nverify = false\n')
    with pytest.raises(ConfigError, match=r"sources\.vault\.verify"):
        Chain.from_config().resolve("DB_PASSWORD")


def test_untrusted_aws_endpoint_gets_no_credentials(attacker: Listener, user: dict[str, str]) -> None:
    pytest.importorskip("boto3")
    for kind in ("aws-sm", "aws-ssm"):
        write_config(user, f'[sources.aws]\ntype = "{kind}"\nendpoint_url = "{attacker.url}"\n')
        chain = Chain.from_config()
        with pytest.raises(ConfigError, match="authchain trust"):
            chain.resolve("DB_PASSWORD")
        with pytest.raises(ConfigError, match="authchain trust"):
            chain.resolve_many(["A", "B"])
        assert chain.check()[0].status == "misconfigured"
        write_config(
            user,
            f'[sources.aws]\ntype = "{kind}"\nendpoint_url = "{attacker.url}"\ncredentials = "AWS_KEYS"\n',
        )
        os.environ["AWS_KEYS"] = json.dumps(
            {"ACCESS_KEY": user["AWS_ACCESS_KEY_ID"], "SECRET_ACCESS_KEY": user["AWS_SECRET_ACCESS_KEY"]}
        )
        try:
            with pytest.raises(ConfigError, match="authchain trust"):
                Chain.from_config().resolve("DB_PASSWORD")
        finally:
            del os.environ["AWS_KEYS"]
    assert_nothing_arrived(attacker, user)


def test_untrusted_gcp_endpoint_gets_no_credentials(
    user: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("google.cloud.secretmanager_v1")
    import google.auth

    import authchain.backends.gcp.source

    asked: list[object] = []
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: asked.append(a) or (None, "p"))

    def no_client(*args: Any, **kwargs: Any) -> Any:
        asked.append(args)  # a regression stops here, before any name lookup or connection
        raise AssertionError("a client for the untrusted endpoint was built")

    monkeypatch.setattr(authchain.backends.gcp.source, "secret_manager_client", no_client)
    # Not loopback: the channel would be TLS with an access token. The refusal comes
    # before the SDK resolves the host, so no name lookup and no connection happen.
    write_config(user, '[sources.gcp]\ntype = "gcp-sm"\nproject = "p"\nendpoint = "attacker.invalid:443"\n')
    with pytest.raises(ConfigError, match="authchain trust"):
        Chain.from_config().resolve("DB_PASSWORD")
    write_config(user, '[sources.env]\ntype = "env"\n[clients.gcp]\nendpoint = "attacker.invalid:443"\n')
    with pytest.raises(ConfigError, match=r"clients\.gcp\.endpoint"):
        gcp_secret_manager_client(chain=Chain.from_config())
    assert asked == []


def test_untrusted_clients_tables_get_no_credentials(attacker: Listener, user: dict[str, str]) -> None:
    write_config(user, f'[sources.env]\ntype = "env"\n[clients.vault]\nurl = "{attacker.url}"\n')
    with pytest.raises(ConfigError, match=r"clients\.vault\.url"):
        vault_client(chain=Chain.from_config())
    assert_nothing_arrived(attacker, user)
    # A URL the caller passes is the caller's: the table's other settings do not matter.
    with pytest.raises(SecretNotFound):
        Chain.from_config().resolve("NOT_THERE_" + secrets.token_hex(4).upper())
    pytest.importorskip("boto3")
    write_config(user, f'[sources.env]\ntype = "env"\n[clients.aws]\nendpoint_url = "{attacker.url}"\n')
    with pytest.raises(ConfigError, match=r"clients\.aws\.endpoint_url"):
        aws_client("secretsmanager", chain=Chain.from_config())
    assert_nothing_arrived(attacker, user)


def test_the_cli_refuses_and_says_how_to_trust(attacker: Listener, user: dict[str, str]) -> None:
    config = write_config(user, f'[sources.vault]\ntype = "vault"\nurl = "{attacker.url}"\n')
    for command in (["resolve", "DB_PASSWORD"], ["check"], ["explain", "DB_PASSWORD"]):
        result = cli(user, *command)
        assert result.returncode == 2 or command[0] == "explain", result.stderr
        assert "authchain trust" in result.stdout + result.stderr
    shown = json.loads(cli(user, "config", "--json").stdout)
    assert shown["trust"] == "untrusted"
    assert shown["sources"][0]["credentials"].startswith("refused")
    text = cli(user, "config").stdout
    assert "NOT trusted" in text
    assert "credentials: refused" in text
    assert_nothing_arrived(attacker, user)
    # Positive control: trusted, the same file sends the token where it says.
    trusted = cli(user, "trust")
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(cli(user, "config", "--json").stdout)["trust"] == "trusted"
    # The listener answers 404 to everything: the mount probe (which carries the token)
    # finds no KV mount, so nothing is read and the lookup is an error.
    assert cli(user, "resolve", "DB_PASSWORD").returncode == 3
    assert user["VAULT_TOKEN"] in attacker.seen(), "the listener must see what a trusted file sends"
    # Any change makes it untrusted again; --revoke forgets it.
    config.write_text(config.read_text() + "\n# changed\n")
    assert json.loads(cli(user, "config", "--json").stdout)["trust"] == "untrusted"
    assert cli(user, "trust", str(config)).returncode == 0
    assert cli(user, "trust", "--revoke").returncode == 0
    assert json.loads(cli(user, "config", "--json").stdout)["trust"] == "untrusted"


def cli(user: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authchain.cli", *args],
        cwd=user["repo"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_trusted_or_named_files_work_against_the_real_server(
    openbao: OpenBao, user: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from authchain import _trust

    value = canary("value")
    path = f"t/{secrets.token_hex(6)}"
    openbao.put(f"{path}/DB_PASSWORD", {"DB_PASSWORD": value})
    monkeypatch.setenv("VAULT_TOKEN", openbao.tokens["reader"])
    config = write_config(
        user, f'[sources.vault]\ntype = "vault"\nurl = "{openbao.url}"\npath_prefix = "{path}"\n'
    )
    with pytest.raises(ConfigError, match="authchain trust"):
        Chain.from_config().resolve("DB_PASSWORD")
    # Named explicitly (a path, AUTHCHAIN_CONFIG): the user chose the file.
    assert Chain.from_config(config).resolve("DB_PASSWORD").get_secret_value() == value
    assert load_settings(config).trust == "named"
    monkeypatch.setenv("AUTHCHAIN_CONFIG", str(config))
    assert Chain.from_config().resolve("DB_PASSWORD").get_secret_value() == value
    monkeypatch.delenv("AUTHCHAIN_CONFIG")
    # Found upwards and trusted once.
    _trust.trust(config)
    assert Chain.from_config().resolve("DB_PASSWORD").get_secret_value() == value
    store = _trust.store_path()
    assert store.is_relative_to(Path(user["home"]) / ".config")
    assert store.stat().st_mode & 0o077 == 0, "the trust store is the user's alone"
    # Edited after it was trusted: untrusted again.
    config.write_text(config.read_text().replace("retries = 0", "retries = 1"))
    assert load_settings().trust == "untrusted"


def test_an_untrusted_file_without_endpoints_still_works(
    openbao: OpenBao, user: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where credentials go is the user's own VAULT_ADDR: nothing to trust."""
    value = canary("value")
    path = f"t/{secrets.token_hex(6)}"
    openbao.put(f"{path}/DB_PASSWORD", {"DB_PASSWORD": value})
    monkeypatch.setenv("VAULT_TOKEN", openbao.tokens["reader"])
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    write_config(user, f'[sources.vault]\ntype = "vault"\npath_prefix = "{path}"\n')
    chain = Chain.from_config()
    assert chain.settings is not None
    assert chain.settings.trust == "untrusted"
    assert chain.resolve("DB_PASSWORD").get_secret_value() == value


def test_a_corrupt_trust_store_trusts_nothing(user: dict[str, str]) -> None:
    from authchain import _trust

    config = write_config(user, '[sources.env]\ntype = "env"\n')
    _trust.trust(config)
    assert load_settings().trust == "trusted"
    _trust.store_path().write_text("{not json")
    assert load_settings().trust == "untrusted"
    _trust.trust(config)  # rewritten
    assert load_settings().trust == "trusted"


def test_an_untrusted_file_cannot_choose_a_keyring_backend_to_import(
    user: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyring ``backend`` is a dotted path that gets imported: a cloned repository
    could name a module of its own (the working directory is on ``sys.path`` under
    ``python -m``). Until the file is trusted, that module is never imported."""
    pytest.importorskip("keyring")
    module = f"planted_{secrets.token_hex(4)}"
    marker = Path(user["home"]) / f"{module}.ran"
    (Path(user["repo"]) / f"{module}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from keyrings.alt.file import PlaintextKeyring as Backend\n"
    )
    monkeypatch.syspath_prepend(user["repo"])
    path = write_config(user, f'[sources.k]\ntype = "keyring"\nbackend = "{module}.Backend"\n')
    with pytest.raises(ConfigError, match="authchain trust"):
        Chain.from_config().resolve("DB_PASSWORD")
    from authchain.clients import keyring_backend

    write_config(user, f'[clients.keyring]\nbackend = "{module}.Backend"\n')
    reset_default_chain()
    with pytest.raises(ConfigError, match="authchain trust"):
        keyring_backend()
    assert not marker.exists(), "an untrusted config file had a module of its choosing imported"
    assert module not in sys.modules
    # Trusted as it is, the same file may choose its backend.
    write_config(user, f'[sources.k]\ntype = "keyring"\nbackend = "{module}.Backend"\n')
    from authchain._trust import trust

    trust(path, os.environ)
    with pytest.raises(SecretNotFound):
        Chain.from_config().resolve("DB_PASSWORD")
    assert marker.exists()


def test_trust_is_judged_on_the_bytes_parsed_not_a_second_read(
    attacker: Listener, user: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file swapped between the parse and the trust check: the parsed contents decide.

    The user trusts a harmless file; the repository then holds one naming the
    attacker, and swaps the trusted bytes back as soon as the loader has read
    it. Judged by a second read, the attacker's settings would pass as trusted.
    """
    from authchain import _trust, config

    harmless = '[sources.env]\ntype = "env"\n'
    path = write_config(user, harmless)
    _trust.trust(path)
    trusted_bytes = path.read_bytes()
    write_config(user, f'[sources.vault]\ntype = "vault"\nurl = "{attacker.url}"\n')
    read = config._read_config_bytes

    def read_then_swap_back(target: Path) -> bytes:
        data = read(target)
        if target == path:
            target.write_bytes(trusted_bytes)
        return data

    monkeypatch.setattr(config, "_read_config_bytes", read_then_swap_back)
    settings = load_settings()
    assert "sources.vault.url" in settings.origins, "the attacker's bytes were the ones parsed"
    assert settings.trust == "untrusted"
    with pytest.raises(ConfigError, match="authchain trust"):
        Chain.from_settings(settings).resolve("vault://secret/app#password")
    assert_nothing_arrived(attacker, user)


@pytest.mark.parametrize("kind", ["fifo", "directory", "dangling link"])
def test_a_config_name_that_is_not_a_file_stops_the_search(user: dict[str, str], kind: str) -> None:
    """Passing it by would answer from a parent folder's config the user never meant."""
    write_config(user, '[sources.env]\ntype = "env"\n')  # the parent's config, one folder up
    blocker = Path(user["repo"]) / "authchain.toml"
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this platform")
        os.mkfifo(blocker)
    elif kind == "directory":
        blocker.mkdir()
    else:
        blocker.symlink_to(Path(user["repo"]) / "missing.toml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_settings()


def test_revoking_a_file_that_was_not_trusted_says_so_and_exits_1(user: dict[str, str]) -> None:
    """docs/cli.md: exit 1 ("not found") and nothing changed, so a script that revokes a
    mistyped or different path learns that the file it meant may still be trusted."""
    config = write_config(user, '[sources.env]\ntype = "env"\n')
    never = cli(user, "trust", "--revoke", str(config))
    assert never.returncode == 1, never.stderr
    assert "was not trusted" in never.stderr
    assert "nothing was revoked" in never.stderr
    assert cli(user, "trust", str(config)).returncode == 0
    revoked = cli(user, "trust", "--revoke", str(config))
    assert revoked.returncode == 0, revoked.stderr
    assert "no longer trusted" in revoked.stderr
    again = cli(user, "trust", "--revoke", str(config))
    assert again.returncode == 1
    assert json.loads(cli(user, "config", "--json").stdout)["trust"] == "untrusted"


def test_an_untrusted_azure_vault_or_authority_gets_no_credentials(
    attacker: Listener, azure_user: dict[str, str]
) -> None:
    """The vault URL, vault name, authority or CA file from an untrusted file: no AZURE_* secret,
    no DefaultAzureCredential, no credential the file names reaches it (nothing is even sent)."""
    pytest.importorskip("azure.keyvault.secrets")
    from authchain.clients import azure_secret_client

    spoofed = attacker.url.replace("http://", "https://")
    user = azure_user  # its config folders, and the service principal's secret to look for
    for setting in (f'vault_url = "{spoofed}"', f'vault_name = "my-vault"\nauthority = "{spoofed}"'):
        write_config(user, f'[sources.kv]\ntype = "azure-kv"\n{setting}\n')
        with pytest.raises(ConfigError, match="authchain trust"):
            Chain.from_config().resolve("DB_PASSWORD")
    write_config(user, f'[sources.env]\ntype = "env"\n[clients.azure]\nvault_url = "{spoofed}"\n')
    with pytest.raises(ConfigError, match=r"clients\.azure\.vault_url"):
        azure_secret_client(chain=Chain.from_config())
    assert_nothing_arrived(attacker, azure_user)


@pytest.fixture
def azure_user(user: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The user also has a service principal in AZURE_* (as CI runners often do)."""
    secret = canary("azure-sp")
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-4000-8000-000000000001")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-4000-8000-000000000002")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    return {**user, "AZURE_CLIENT_SECRET": secret}


@pytest.mark.parametrize("setting", ["vault_name", "authority", "ca_bundle"])
def test_an_untrusted_clients_azure_table_gets_no_credentials(
    attacker: Listener, azure_user: dict[str, str], setting: str
) -> None:
    """Every endpoint setting of ``[clients.azure]``, for the client and for the credential alone
    (``azure_credential()`` sends the client secret to the authority)."""
    pytest.importorskip("azure.identity")
    from authchain.clients import azure_credential, azure_secret_client

    spoofed = attacker.url.replace("http://", "https://")
    value = {"vault_name": '"attacker-vault"', "authority": f'"{spoofed}"', "ca_bundle": '"ca.pem"'}[setting]
    vault = "" if setting == "vault_name" else 'vault_name = "my-vault"\n'
    write_config(azure_user, f'[sources.env]\ntype = "env"\n[clients.azure]\n{vault}{setting} = {value}\n')
    with pytest.raises(ConfigError, match="authchain trust"):
        azure_secret_client(chain=Chain.from_config())
    if setting != "vault_name":
        with pytest.raises(ConfigError, match="authchain trust"):
            azure_credential(chain=Chain.from_config())
    assert_nothing_arrived(attacker, azure_user)


@pytest.mark.parametrize(
    "config",
    [
        '[sources.kv]\ntype = "azure-kv"\n[secrets]\nDB_PASSWORD = "azure-kv://attacker-vault/db"\n',
        '[sources.env]\ntype = "env"\n[secrets]\nDB_PASSWORD = "azure-kv://attacker-vault/db"\n',
        '[sources.vault]\ntype = "vault"\ntoken = "azure-kv://attacker-vault/t"\n',
    ],
    ids=["pin, azure-kv source", "pin, no azure-kv source", "a credential setting"],
)
def test_an_untrusted_file_cannot_send_a_token_to_a_vault_it_names_in_a_reference(
    azure_user: dict[str, str], config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``azure-kv://VAULT/...`` picks the host (VAULT.vault.azure.net) a token goes to: from an
    untrusted file, a reference to a vault that is not a trusted source's own is refused before
    any credential is looked up (the network guard would fail any request to that host)."""
    pytest.importorskip("azure.keyvault.secrets")
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")  # the user's own Vault, not the file's
    write_config(azure_user, config)
    chain = Chain.from_config()
    refused = r"sends credentials to https://attacker-vault\.vault\.azure\.net .*authchain trust"
    with pytest.raises(ConfigError, match=refused):
        chain.resolve("DB_PASSWORD")
    with pytest.raises(ConfigError, match=refused):
        chain.resolve("azure-kv://attacker-vault/db")
