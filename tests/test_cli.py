"""The `authchain` command, run as a real subprocess: output, masking and exit codes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from authchain.testing import canary
from authchain.values import MASK

CONFIG = """
cache_ttl = 60

[sources.env]
type = "env"
prefix = "APP_"

[sources.dotenv]
type = "dotenv"
path = ".env"
prefix = "APP_"

[secrets]
PINNED = "env://CLI_PINNED_SOURCE"

[profiles.dev]
order = ["dotenv", "env"]
"""


@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    """A folder with a config and a .env holding canary values."""
    values = {"dotenv": canary("dotenv"), "env": canary("env"), "only": canary("only")}
    (tmp_path / "authchain.toml").write_text(CONFIG)
    (tmp_path / ".env").write_text(f"APP_DB_PASSWORD={values['dotenv']}\nAPP_ONLY_IN_FILE={values['only']}\n")
    return {"dir": str(tmp_path), **values}


def cli(
    project: dict[str, str], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHCHAIN_", "APP_"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "authchain.cli", *args],
        cwd=project["dir"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_no_values(project: dict[str, str], result: subprocess.CompletedProcess[str]) -> None:
    for key in ("dotenv", "env", "only"):
        assert project[key] not in result.stdout
        assert project[key] not in result.stderr


def test_resolve_prints_the_masked_value_by_default(project: dict[str, str]) -> None:
    result = cli(project, "resolve", "DB_PASSWORD")
    assert result.returncode == 0
    assert result.stdout.strip() == MASK
    assert_no_values(project, result)


def test_resolve_reveal_prints_the_value_from_the_winning_source(project: dict[str, str]) -> None:
    from_file = cli(project, "resolve", "DB_PASSWORD", "--reveal")
    assert from_file.stdout.strip() == project["dotenv"]
    from_env = cli(project, "resolve", "DB_PASSWORD", "--reveal", env={"APP_DB_PASSWORD": project["env"]})
    assert from_env.stdout.strip() == project["env"]


def test_resolve_json_names_the_source_and_masks(project: dict[str, str]) -> None:
    result = cli(project, "resolve", "DB_PASSWORD", "--json")
    data = json.loads(result.stdout)
    assert data == {"name": "DB_PASSWORD", "source": "dotenv", "type": "dotenv", "value": MASK}
    revealed = json.loads(cli(project, "resolve", "DB_PASSWORD", "--json", "--reveal").stdout)
    assert revealed["value"] == project["dotenv"]


def test_profile_changes_the_order_and_global_options_go_either_side(project: dict[str, str]) -> None:
    env = {"APP_DB_PASSWORD": project["env"]}
    after = cli(project, "resolve", "DB_PASSWORD", "--reveal", "--profile", "dev", env=env)
    before = cli(project, "--profile", "dev", "resolve", "DB_PASSWORD", "--reveal", env=env)
    by_env_var = cli(project, "resolve", "DB_PASSWORD", "--reveal", env={**env, "AUTHCHAIN_PROFILE": "dev"})
    assert after.stdout.strip() == before.stdout.strip() == by_env_var.stdout.strip() == project["dotenv"]


def test_not_found_exits_1_and_lists_every_source_without_traceback(project: dict[str, str]) -> None:
    result = cli(project, "resolve", "NOWHERE")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "'NOWHERE' was not found by any source" in result.stderr
    assert "env: APP_NOWHERE is not set" in result.stderr
    assert "dotenv: " in result.stderr
    assert "has no APP_NOWHERE" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_error_exits_2_with_one_clear_message(project: dict[str, str]) -> None:
    Path(project["dir"], "authchain.toml").write_text("cache_tll = 5\n")
    result = cli(project, "resolve", "DB_PASSWORD")
    assert result.returncode == 2
    assert "unknown key cache_tll" in result.stderr
    assert "did you mean 'cache_ttl'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_a_traceback_but_still_no_value(project: dict[str, str]) -> None:
    result = cli(project, "--debug", "resolve", "vault://secret/../x", env={"APP_X": project["env"]})
    assert_no_values(project, result)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    debug = cli(project, "--debug", "resolve", "DB_PASSWORD")
    assert debug.returncode == 0
    assert "resolved by dotenv" in debug.stderr
    assert_no_values(project, debug)


def test_reference_to_an_unconfigured_backend_is_a_config_error(project: dict[str, str]) -> None:
    result = cli(project, "resolve", "vault://secret/app#password", env={"VAULT_ADDR": ""})
    assert result.returncode == 2
    assert "source 'vault' has no server address" in result.stderr
    assert "VAULT_ADDR" in result.stderr


@pytest.mark.parametrize(
    ("blocked", "reference", "extra"),
    [
        ("botocore", "aws-sm://app/db", "authchain[aws]"),
        ("hvac", "vault://secret/app#password", "authchain[vault]"),
        ("google.cloud.secretmanager_v1", "gcp-sm://projects/p/secrets/s", "authchain[gcp]"),
    ],
)
def test_reference_whose_sdk_is_missing_names_the_extra(
    project: dict[str, str], blocked: str, reference: str, extra: str
) -> None:
    # The SDKs are installed here, so "not installed" is simulated by blocking
    # the import (None in sys.modules makes `import` raise ImportError).
    code = (
        f"import sys; sys.modules[{blocked!r}] = None; "
        f"from authchain.cli import main; sys.exit(main(['resolve', {reference!r}]))"
    )
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "GOOGLE_CLOUD_PROJECT": "p"}
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHCHAIN_")} | env
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project["dir"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert extra in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_reference_is_a_config_error(project: dict[str, str]) -> None:
    result = cli(project, "resolve", "vault://secret/../etc")
    assert result.returncode == 2
    assert "'.' and '..' are not allowed" in result.stderr


def test_explain_shows_winner_and_shadowed_sources(project: dict[str, str]) -> None:
    result = cli(project, "explain", "DB_PASSWORD", env={"APP_DB_PASSWORD": project["env"]})
    assert result.returncode == 0
    assert "found by env (env)" in result.stdout
    assert "shadowed" in result.stdout
    assert_no_values(project, result)
    data = json.loads(cli(project, "explain", "DB_PASSWORD", "--json").stdout)
    assert data["winner"] == "dotenv"
    assert [a["source"] for a in data["attempts"]] == ["explicit", "env", "dotenv"]


def test_explain_missing_exits_1(project: dict[str, str]) -> None:
    result = cli(project, "explain", "NOWHERE")
    assert result.returncode == 1
    assert "not found by any source" in result.stdout


def test_check_reports_each_source(project: dict[str, str]) -> None:
    result = cli(project, "check")
    assert result.returncode == 0
    assert "env (env)" in result.stdout
    assert "dotenv (dotenv)" in result.stdout
    data = json.loads(cli(project, "check", "--json").stdout)
    assert {item["status"] for item in data["sources"]} == {"ok"}


def test_check_flags_a_misconfigured_source(project: dict[str, str]) -> None:
    Path(project["dir"], ".env").unlink()
    Path(project["dir"], ".env").mkdir()
    result = cli(project, "check")
    assert result.returncode == 2
    assert "misconfigured" in result.stdout


def test_config_shows_where_each_setting_came_from(project: dict[str, str]) -> None:
    result = cli(project, "config", "--profile", "dev", env={"AUTHCHAIN_RETRIES": "5"})
    assert result.returncode == 0
    assert "authchain.toml [profiles.dev]" in result.stdout
    assert "AUTHCHAIN_RETRIES" in result.stdout
    data = json.loads(cli(project, "config", "--json", env={"AUTHCHAIN_RETRIES": "5"}).stdout)
    assert data["settings"]["retries"] == {"value": 5, "origin": "AUTHCHAIN_RETRIES"}
    assert data["settings"]["cache_ttl"]["value"] == 60
    assert data["settings"]["negative_ttl"]["origin"] == "default"
    assert [source["name"] for source in data["sources"]] == ["env", "dotenv"]
    assert data["sources"][0]["settings"]["prefix"]["value"] == "APP_"
    assert data["secrets"]["PINNED"]["reference"] == "env://CLI_PINNED_SOURCE"


def test_config_shows_client_factory_tables(project: dict[str, str]) -> None:
    config = Path(project["dir"], "authchain.toml")
    config.write_text(config.read_text() + '\n[clients.aws]\nregion_name = "eu-west-1"\n')
    data = json.loads(cli(project, "config", "--json").stdout)
    assert data["clients"]["aws"]["region_name"]["value"] == "eu-west-1"
    assert data["clients"]["aws"]["region_name"]["origin"].endswith("authchain.toml")
    assert "[clients.aws]" in cli(project, "config").stdout


CHILD = (
    "import base64, os, sys; v = os.environ['TOKEN']; "
    "print('out', v); print('err', v, file=sys.stderr); "
    "print('b64', base64.b64encode(v.encode()).decode()); "
    "print('other', os.environ.get('DATABASE_URL')); "
    "sys.stdout.write('prompt ' + v); sys.stdout.flush(); sys.exit(int(os.environ.get('CODE', '0')))"
)


def test_run_resolves_references_and_masks_the_childs_output(project: dict[str, str]) -> None:
    env = {
        "TOKEN": "dotenv://.env#APP_ONLY_IN_FILE",
        "DATABASE_URL": "postgres://db.example/app",
        "CODE": "7",
    }
    result = cli(project, "run", "--", sys.executable, "-c", CHILD, env=env)
    assert result.returncode == 7
    assert "out ***" in result.stdout
    assert "err ***" in result.stderr
    assert "b64 ***" in result.stdout
    assert "prompt ***" in result.stdout
    assert "other postgres://db.example/app" in result.stdout
    assert_no_values(project, result)
    encoded = base64.b64encode(project["only"].encode()).decode()
    assert encoded not in result.stdout


def test_run_no_masking_passes_output_through(project: dict[str, str]) -> None:
    env = {"TOKEN": "dotenv://.env#APP_ONLY_IN_FILE"}
    result = cli(project, "run", "--no-masking", "--", sys.executable, "-c", CHILD, env=env)
    assert result.returncode == 0
    assert f"out {project['only']}" in result.stdout


def test_run_scrub_removes_bootstrap_credentials(project: dict[str, str]) -> None:
    child = "import os; print('BOOT' in os.environ, os.environ.get('KEEP'))"
    env = {"BOOT": "bootstrap-credential", "KEEP": "kept"}
    result = cli(project, "run", "--scrub", "BOOT", "--", sys.executable, "-c", child, env=env)
    assert result.returncode == 0
    assert result.stdout.strip() == "False kept"


def test_run_errors(project: dict[str, str]) -> None:
    missing_command = cli(project, "run", "--", "authchain-no-such-command")
    assert missing_command.returncode == 127
    no_command = cli(project, "run")
    assert no_command.returncode == 2
    missing_secret = cli(
        project, "run", "--", sys.executable, "-c", "pass", env={"TOKEN": "env://APP_NOT_THERE"}
    )
    assert missing_secret.returncode == 1
    # The variable is named; the reference, taken from the environment, is not echoed.
    assert "TOKEN holds a reference that no source could resolve" in missing_secret.stderr
    assert "APP_NOT_THERE" not in missing_secret.stderr


def test_usage_errors_exit_2(project: dict[str, str]) -> None:
    assert cli(project, "bogus").returncode == 2
    assert cli(project).returncode == 2
    assert cli(project, "resolve").returncode == 2


def test_console_script_is_installed(project: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("authchain")
    assert script.exists()
    result = subprocess.run(
        [str(script), "resolve", "DB_PASSWORD"],
        cwd=project["dir"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == MASK
