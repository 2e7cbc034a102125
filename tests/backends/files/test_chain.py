"""The files source in the default chain, in ``authchain run``, ``check``/``explain`` and ``FilesSecret``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from authchain import Chain, ConfigError
from authchain._run import build_environment
from authchain.config import load_settings
from authchain.testing import canary
from secret_tasks import FilesSecret


def secret_file(folder: Path, name: str, value: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(value + "\n", encoding="utf-8")
    (folder / name).chmod(0o600)


@pytest.fixture
def no_docker_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Where this test's ``/run/secrets`` is: absent until the test makes it."""
    folder = tmp_path / "run-secrets"
    monkeypatch.setattr("authchain.backends.files.source.DOCKER_SECRETS", str(folder))
    return folder


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own: it installs log masking process-wide, which a test must not."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AUTHCHAIN_")}
    return subprocess.run(
        [sys.executable, "-m", "authchain.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def default_chain(cwd: Path, environ: dict[str, str]) -> Chain:
    return Chain.from_settings(load_settings(environ=environ, cwd=cwd), cwd=cwd)


def types_of(chain: Chain) -> list[str]:
    return [source.type for source in chain.sources if source.type != "prefect"]


def test_the_default_chain_has_no_files_source_where_nothing_is_mounted(
    tmp_path: Path, no_docker_secrets: Path
) -> None:
    with default_chain(tmp_path, {}) as chain:
        assert types_of(chain) == ["env", "dotenv"]


def test_credentials_directory_puts_files_before_the_environment(
    tmp_path: Path, no_docker_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounted, inherited = canary(), canary()
    credentials = tmp_path / "credentials"
    secret_file(credentials, "DB_PASSWORD", mounted)
    monkeypatch.setenv("DB_PASSWORD", inherited)
    with default_chain(tmp_path, {"CREDENTIALS_DIRECTORY": str(credentials)}) as chain:
        assert types_of(chain) == ["files", "env", "dotenv"]
        assert chain.source("files").path == (credentials,)  # type: ignore[attr-defined]
        assert chain.resolve("DB_PASSWORD").get_secret_value() == mounted
        explanation = chain.explain("DB_PASSWORD")
        assert explanation.winner is not None
        assert explanation.winner.source == "files"
        assert "env" in str(explanation)  # the shadowed environment variable is shown


def test_run_secrets_joins_the_default_chain_when_it_exists(tmp_path: Path, no_docker_secrets: Path) -> None:
    value = canary()
    secret_file(no_docker_secrets, "api_key", value)
    with default_chain(tmp_path, {}) as chain:
        assert types_of(chain) == ["files", "env", "dotenv"]
        assert chain.resolve("files://api_key").get_secret_value() == value


def test_order_may_name_the_default_files_source(tmp_path: Path, no_docker_secrets: Path) -> None:
    no_docker_secrets.mkdir()
    (tmp_path / "authchain.toml").write_text('order = ["env", "files"]\n', encoding="utf-8")
    settings = load_settings(tmp_path / "authchain.toml", environ={}, cwd=tmp_path)
    with Chain.from_settings(settings, cwd=tmp_path) as chain:
        assert [source.type for source in chain.sources] == ["env", "files"]


def test_run_resolves_files_references_and_refuses_paths(tmp_path: Path, no_docker_secrets: Path) -> None:
    value = canary()
    secret_file(no_docker_secrets, "db_password", value)
    chain = default_chain(tmp_path, {})
    try:
        environment = build_environment({"DB": "files://db_password", "HOME": "/root"}, lambda: chain)
        assert environment["DB"] == value
        for text in ("files:///etc/shadow", "files://../../etc/shadow"):
            with pytest.raises(ConfigError, match="malformed files:// reference"):
                build_environment({"PR_TITLE": text}, lambda: chain)
    finally:
        chain.close()


def test_check_and_explain_from_the_cli(tmp_path: Path) -> None:
    value = canary()
    secret_file(tmp_path / "secrets", "token", value)
    config = tmp_path / "authchain.toml"
    config.write_text(
        '[sources.mounted]\ntype = "files"\npath = ["secrets", "absent"]\nname_transform = "lower"\n',
        encoding="utf-8",
    )
    checked = cli(tmp_path, "--config", str(config), "check", "--json")
    assert checked.returncode == 0, checked.stderr
    text = json.dumps(json.loads(checked.stdout))
    assert "(1 file)" in text
    assert "does not exist" in text
    explained = cli(tmp_path, "--config", str(config), "explain", "TOKEN")
    assert explained.returncode == 0, explained.stderr
    assert "WINNER" in explained.stdout
    assert "secrets/token exists" in explained.stdout
    assert value not in explained.stdout + explained.stderr


def test_check_fails_when_no_configured_directory_exists(tmp_path: Path) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.mounted]\ntype = "files"\npath = "not-mounted"\n', encoding="utf-8")
    checked = cli(tmp_path, "--config", str(config), "check")
    assert checked.returncode != 0
    assert "misconfigured" in checked.stdout


# -- FilesSecret ------------------------------------------------------------------------


def test_files_secret_reads_the_configured_directories(tmp_path: Path, no_docker_secrets: Path) -> None:
    value, password = canary(), canary()
    secret_file(tmp_path / "s", "api-key", value)
    secret_file(tmp_path / "s", "db.json", json.dumps({"user": "app", "password": password}))
    with Chain.from_config(_config(tmp_path)) as chain:
        assert FilesSecret("api-key", chain=chain).run().get_secret_value() == value
        assert FilesSecret("db.json", key="password", chain=chain)().get_secret_value() == password
        fields = FilesSecret("db.json", as_dict=True, chain=chain).run()
        assert fields["user"].get_secret_value() == "app"  # type: ignore[index]
        assert FilesSecret("absent", default=None, chain=chain).run() is None


def test_files_secret_with_source_options_and_refusals(tmp_path: Path) -> None:
    value = canary()
    secret_file(tmp_path / "elsewhere", "token", value)
    task = FilesSecret("token", source_options={"path": str(tmp_path / "elsewhere")})
    assert task.run().get_secret_value() == value
    with pytest.raises(ValueError, match="malformed files:// reference"):
        FilesSecret("../elsewhere/token").run()
    with pytest.raises(ValueError, match="name"):
        FilesSecret().run()


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.mounted]\ntype = "files"\npath = "s"\n', encoding="utf-8")
    return config
