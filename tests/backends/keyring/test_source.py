"""KeyringSource against a real file keyring (keyrings.alt PlaintextKeyring in tmp_path),
keyring's own "no backend" null keyring, and the ``authchain keyring`` CLI.

Never the user's keyring: every backend here has its file under tmp_path, and
every subprocess gets ``XDG_DATA_HOME`` and ``PYTHON_KEYRING_BACKEND`` pointing there.
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from authchain import BackendError, Chain, ConfigError, SecretNotFound, SourceUnavailableError
from authchain.backends.env.source import EnvSource
from authchain.backends.keyring.source import KeyringSource
from authchain.refs import SecretRef
from authchain.sources.base import Found, NotFound
from authchain.testing import canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked, unique_name

pytest.importorskip("keyring", reason="needs the keyring extra")
pytest.importorskip("keyrings.alt", reason="needs keyrings.alt (test extra)")

PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
FAIL = "keyring.backends.fail.Keyring"


def file_keyring(folder: Path) -> Any:
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    backend.file_path = str(folder / "keyring_pass.cfg")  # type: ignore[misc]
    return backend


@pytest.fixture
def backend(tmp_path: Path) -> Any:
    return file_keyring(tmp_path)


class TestKeyringContract(SourceContractTests):
    @pytest.fixture
    def source(self, backend: Any) -> KeyringSource:
        return KeyringSource(service="authchain-test", backend=backend)

    @pytest.fixture
    def seed(self, backend: Any) -> Seed:
        def put(name: str, value: str) -> None:
            backend.set_password("authchain-test", name, value)

        return put


def test_set_get_missing_and_delete(backend: Any) -> None:
    source = KeyringSource(service="svc", backend=backend)
    value = canary()
    assert source.get(source.key_for("TOKEN")) == NotFound(f"no entry svc/TOKEN in {PLAINTEXT}")
    source.set_password("svc", "TOKEN", value)
    result = source.get(source.key_for("TOKEN"))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value
    assert result.detail == f"svc/TOKEN is in {PLAINTEXT}"
    assert backend.get_password("svc", "TOKEN") == value  # really in the file keyring
    assert source.delete_password("svc", "TOKEN") is True
    assert source.delete_password("svc", "TOKEN") is False
    assert isinstance(source.get(source.key_for("TOKEN")), NotFound)


def test_keys_are_service_and_name() -> None:
    source = KeyringSource(service="my-app")
    assert source.key_for("DB_PASSWORD") == ("my-app", "DB_PASSWORD")
    assert source.describe_key(("my-app", "DB_PASSWORD")) == "my-app/DB_PASSWORD"
    assert KeyringSource().service == "authchain"


def test_reference_names_service_and_user_and_a_json_field(backend: Any) -> None:
    password = canary()
    backend.set_password("other-service", "db", f'{{"user": "app", "password": "{password}"}}')
    source = KeyringSource(service="svc", backend=backend)
    assert source.key_for_ref(SecretRef.parse("keyring://other-service/db#password")) == (
        ("other-service", "db"),
        "password",
    )
    chain = Chain([source])
    assert chain.resolve("keyring://other-service/db#password").get_secret_value() == password
    assert chain.resolve("keyring://other-service/db#user").get_secret_value() == "app"


def test_backend_by_dotted_path_uses_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    source = KeyringSource(service="svc", backend=PLAINTEXT)
    value = canary()
    source.set_password("svc", "NAME", value)
    stored = list(tmp_path.rglob("keyring_pass.cfg"))
    assert len(stored) == 1, "the file keyring must live under XDG_DATA_HOME"
    assert Chain([source]).resolve("NAME").get_secret_value() == value
    assert source.check().status == "ok"
    assert PLAINTEXT in source.check().detail


def test_from_config_with_service_defaulting_to_the_project_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "pipeline-x"\n\n[tool.authchain.sources.keyring]\n'
        f'type = "keyring"\nbackend = "{PLAINTEXT}"\n'
    )
    chain = Chain.from_config(tmp_path / "pyproject.toml")
    source = chain.source("keyring")
    assert isinstance(source, KeyringSource)
    assert source.service == "pipeline-x"
    value = canary()
    source.set_password("pipeline-x", "API_KEY", value)
    assert chain.resolve("API_KEY").get_secret_value() == value
    assert chain.source("keyring").settings() == {
        "on_error": "raise",
        "retries": None,
        "backoff": None,
        "service": "pipeline-x",
        "backend": PLAINTEXT,
    }


def test_config_without_a_project_name_uses_authchain(tmp_path: Path) -> None:
    (tmp_path / "authchain.toml").write_text('[sources.keyring]\ntype = "keyring"\n')
    source = Chain.from_config(tmp_path / "authchain.toml").source("keyring")
    assert isinstance(source, KeyringSource)
    assert source.service == "authchain"


# -- no usable backend -----------------------------------------------------------------------


def test_no_backend_is_unavailable_with_keyring_reason() -> None:
    source = KeyringSource(backend=FAIL)
    with pytest.raises(SourceUnavailableError, match="No recommended backend was available"):
        source.get(source.key_for("X"))
    report = source.check()
    assert report.status == "unavailable"
    assert "No recommended backend" in report.detail


def test_no_backend_moves_the_chain_on_and_shows_in_the_trail() -> None:
    value = canary()
    chain = Chain([KeyringSource(backend=FAIL), EnvSource(environ={"TOKEN": value})])
    assert chain.resolve("TOKEN").get_secret_value() == value
    explanation = chain.explain("TOKEN")
    keyring_attempt = explanation.attempts[1]
    assert keyring_attempt.outcome == "unavailable"
    assert "no keyring backend" in keyring_attempt.detail
    with pytest.raises(SecretNotFound) as caught:
        chain.resolve(unique_name("ABSENT"))
    assert "keyring: unavailable: no keyring backend: No recommended backend" in str(caught.value)
    assert [report.status for report in chain.check()] == ["unavailable", "ok"]


def test_keyrings_default_choice_when_nothing_is_viable(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())  # keyring's own headless outcome
    source = KeyringSource()
    with pytest.raises(SourceUnavailableError):
        source.get(source.key_for("X"))


def test_locked_keyring_is_access_denied(tmp_path: Path) -> None:
    import keyring.errors

    class LockedKeyring(type(file_keyring(tmp_path))):  # type: ignore[misc]
        def get_password(self, service: str, username: str) -> str | None:
            raise keyring.errors.KeyringLocked("the user did not unlock the keyring")

    source = KeyringSource(backend=LockedKeyring())
    with pytest.raises(BackendError) as caught:
        source.get(source.key_for("X"))
    assert caught.value.access_denied
    assert "is locked" in str(caught.value)


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("not a path", "must be a dotted path"),
        ("no_such_module.Keyring", "cannot be loaded"),
        ("keyrings.alt.file.NoSuchClass", "cannot be loaded"),
        ("os.path", "is not a keyring backend class"),
        ("pathlib.Path", "is not a keyring backend class"),
    ],
)
def test_bad_backend_setting_is_a_config_error(backend: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KeyringSource(backend=backend).keyring_backend()


def test_bad_backend_shows_as_misconfigured_in_check() -> None:
    source = KeyringSource(backend="no_such_module.Keyring")
    assert Chain([source]).check()[0].status == "misconfigured"


def test_missing_keyring_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)
    source = KeyringSource()
    with pytest.raises(ConfigError, match=r"pip install 'authchain\[keyring\]'"):
        source.get(source.key_for("X"))


def test_pickle_drops_the_backend_but_keeps_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    value = canary()
    source = KeyringSource(service="svc", backend=PLAINTEXT)
    source.set_password("svc", "X", value)
    assert isinstance(source.get(source.key_for("X")), Found)
    data = pickle.dumps(source)
    assert_not_leaked(value, data, "a pickled KeyringSource")
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    assert clone._keyring is None
    assert (clone.service, clone.backend) == ("svc", PLAINTEXT)
    result = clone.get(clone.key_for("X"))
    assert isinstance(result, Found)
    assert result.value.get_secret_value() == value


def test_registered_as_a_builtin_type() -> None:
    from authchain._registry import load_source_class, registered_types

    assert load_source_class("keyring") is KeyringSource
    assert registered_types()["keyring"].endswith(":KeyringSource")  # as the installed entry point names it


# -- the CLI ----------------------------------------------------------------------------------------


def keyring_env(tmp_path: Path, backend: str = PLAINTEXT) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUTHCHAIN_", "PYTHON_KEYRING", "XDG_", "VAULT_"))
    }
    environment.update(
        {
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no keyringrc.cfg of the user's
            "PYTHON_KEYRING_BACKEND": backend,
        }
    )
    return environment


def cli(
    tmp_path: Path, *args: str, stdin: str = "", backend: str = PLAINTEXT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authchain.cli", *args],
        cwd=tmp_path,
        env=keyring_env(tmp_path, backend),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def stored(tmp_path: Path, service: str, name: str) -> str | None:
    value: str | None = file_keyring(tmp_path / "data" / "python_keyring").get_password(service, name)
    return value


def test_cli_set_reads_stdin_and_resolve_finds_it(tmp_path: Path) -> None:
    value = canary()
    result = cli(tmp_path, "keyring", "set", "cli-svc", "DB_PASSWORD", stdin=value + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "stored cli-svc/DB_PASSWORD\n"
    assert_not_leaked(value, result.stdout + result.stderr, "keyring set output")
    assert stored(tmp_path, "cli-svc", "DB_PASSWORD") == value  # one final newline stripped
    shown = cli(tmp_path, "resolve", "keyring://cli-svc/DB_PASSWORD")
    assert shown.returncode == 0
    assert shown.stdout.strip() == "**********"
    revealed = cli(tmp_path, "resolve", "--reveal", "keyring://cli-svc/DB_PASSWORD")
    assert revealed.stdout == value + "\n"


def test_cli_uses_the_configured_keyring_source(tmp_path: Path) -> None:
    (tmp_path / "authchain.toml").write_text(
        f'[sources.keyring]\ntype = "keyring"\nservice = "configured"\nbackend = "{PLAINTEXT}"\n'
    )
    value = canary()
    # Named, not found upwards: an untrusted file may not choose a backend to import.
    named = ("--config", str(tmp_path / "authchain.toml"))
    # The environment names the null backend: only the configured one can store it.
    result = cli(tmp_path, "keyring", "set", "configured", "TOKEN", *named, stdin=value, backend=FAIL)
    assert result.returncode == 0, result.stderr
    assert stored(tmp_path, "configured", "TOKEN") == value
    found = cli(tmp_path, "resolve", "--reveal", "TOKEN", *named, backend=FAIL)
    assert found.stdout == value + "\n"


def test_cli_keeps_inner_newlines_and_refuses_empty_input(tmp_path: Path) -> None:
    value = f"{canary()}\n{canary()}"
    assert cli(tmp_path, "keyring", "set", "svc", "PEM", stdin=value + "\r\n").returncode == 0
    assert stored(tmp_path, "svc", "PEM") == value
    empty = cli(tmp_path, "keyring", "set", "svc", "EMPTY", stdin="")
    assert empty.returncode == 2
    assert "no value given" in empty.stderr
    assert stored(tmp_path, "svc", "EMPTY") is None


def test_cli_refuses_a_value_on_the_command_line_without_echoing_it(tmp_path: Path) -> None:
    value = canary()
    result = cli(tmp_path, "keyring", "set", "svc", "NAME", value)
    assert result.returncode == 2
    assert "takes only SERVICE and NAME" in result.stderr
    assert_not_leaked(value, result.stdout + result.stderr, "the usage error")
    assert stored(tmp_path, "svc", "NAME") is None


def test_cli_delete(tmp_path: Path) -> None:
    assert cli(tmp_path, "keyring", "set", "svc", "GONE", stdin=canary()).returncode == 0
    deleted = cli(tmp_path, "keyring", "delete", "svc", "GONE")
    assert (deleted.returncode, deleted.stderr) == (0, "deleted svc/GONE\n")
    assert stored(tmp_path, "svc", "GONE") is None
    again = cli(tmp_path, "keyring", "delete", "svc", "GONE")
    assert again.returncode == 1
    assert "the keyring has no entry svc/GONE" in again.stderr


def test_cli_without_a_backend_exits_3_with_the_reason(tmp_path: Path) -> None:
    value = canary()
    result = cli(tmp_path, "keyring", "set", "svc", "X", stdin=value, backend=FAIL)
    assert result.returncode == 3
    assert "no keyring backend: No recommended backend was available" in result.stderr
    assert "Traceback" not in result.stderr
    assert_not_leaked(value, result.stderr, "the error")
    assert cli(tmp_path, "keyring", "delete", "svc", "X", backend=FAIL).returncode == 3


def test_cli_usage_errors(tmp_path: Path) -> None:
    assert cli(tmp_path, "keyring").returncode == 2
    assert cli(tmp_path, "keyring", "set", "svc").returncode == 2
    assert cli(tmp_path, "keyring", "rename", "svc", "X").returncode == 2


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs a Linux pty")
def test_cli_prompt_does_not_echo_and_asks_twice(tmp_path: Path) -> None:
    import pty

    value = canary()
    environment = keyring_env(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: a real terminal on stdin, as a user would have
        os.chdir(tmp_path)
        os.execve(  # noqa: S606 - no shell wanted
            sys.executable,
            [sys.executable, "-m", "authchain.cli", "keyring", "set", "tty", "NAME"],
            environment,
        )
    seen = b""
    try:
        seen += _read_until(fd, b"Value for tty/NAME: ")
        os.write(fd, value.encode() + b"\n")
        seen += _read_until(fd, b"Repeat it: ")
        os.write(fd, value.encode() + b"\n")
        seen += _read_until(fd, None)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert_not_leaked(value, seen, "the terminal (the prompt must not echo)")
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    assert b"stored tty/NAME" in seen
    assert stored(tmp_path, "tty", "NAME") == value


def _read_until(fd: int, marker: bytes | None, timeout: float = 30.0) -> bytes:
    """Read the pty until ``marker`` shows up (or, for None, until the child closes it)."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker is None or marker not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {marker!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    return data
