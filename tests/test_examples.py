"""Every example in examples/ runs here, against the servers the test session starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from authchain.testing import canary
from tests import _offline
from tests.servers.moto_server import MotoServer
from tests.servers.openbao import OpenBao
from tests.servers.prefect_api import PrefectAPI

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AUTHCHAIN_", "DEMO_", "ORDER_DEMO_"))
    }
    environment.update(_offline.OFFLINE_ENV)  # an example's SDKs probe no cloud metadata service
    environment.update(env or {})
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd or script.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quickstart_demo() -> None:
    output = run(EXAMPLES / "quickstart" / "demo.py")
    assert "'MISSING_TOKEN' was not found by any source." in output
    assert "also defined in (shadowed): dotenv" in output
    assert "the child sees API_TOKEN = ***" in output
    assert "not-real" not in output, "no made-up value may be printed by the demo"


def test_resolver_order_example_changes_explain() -> None:
    output = run(EXAMPLES / "resolver_order" / "show_order.py")
    default, local = output.split("--- profile: local")
    assert "found by env (env)" in default
    assert "found by dotenv (dotenv)" in local
    assert "not-real" not in output


def test_vault_secret_flow_example(openbao: OpenBao, prefect_api: PrefectAPI, tmp_path: Path) -> None:
    token = canary()
    openbao.put("reporting/api", {"token": token})
    env = {
        "VAULT_ADDR": openbao.url,
        "VAULT_TOKEN": openbao.root_token,
        "PREFECT_API_URL": prefect_api.api_url,
    }
    output = run(EXAMPLES / "tasks" / "vault_secret_flow.py", env=env, cwd=tmp_path)
    assert f"a token of {len(token)} characters" in output
    assert token not in output


def test_custom_task_example(moto: MotoServer, tmp_path: Path) -> None:
    ssm = moto.client("ssm")
    for index in range(3):
        ssm.put_parameter(Name=f"/example/app/p{index}", Value=canary(), Type="String")
    output = run(EXAMPLES / "tasks" / "custom_task.py", "/example/app", cwd=tmp_path)
    assert output.strip() == "3"


def test_prefect1_migration_example(
    moto: MotoServer, openbao: OpenBao, prefect_api: PrefectAPI, tmp_path: Path
) -> None:
    import json

    from tests.servers.moto_server import MADE_UP_KEYS

    password, token = canary(), canary()
    secrets = moto.client("secretsmanager")
    secrets.create_secret(Name="etl/db", SecretString=json.dumps({"username": "etl", "password": password}))
    secrets.create_secret(Name="etl/other", SecretString=canary())
    openbao.put("t/etl-api", {"token": token})
    aws_keys = {
        "ACCESS_KEY": MADE_UP_KEYS["aws_access_key_id"],
        "SECRET_ACCESS_KEY": MADE_UP_KEYS["aws_secret_access_key"],
    }
    env = {
        "VAULT_ADDR": openbao.url,
        "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS": json.dumps({"VAULT_TOKEN": openbao.root_token}),
        "PREFECT__CONTEXT__SECRETS__AWS_CREDENTIALS": json.dumps(aws_keys),
        "PREFECT__USER_CONFIG_PATH": str(tmp_path / "no-prefect1-config.toml"),
        "ETL_BATCH_SIZE": "250",
        "PREFECT_API_URL": prefect_api.api_url,
    }
    output = run(EXAMPLES / "prefect1_migration" / "etl_flow.py", env=env, cwd=tmp_path)
    assert f"connected as etl with a token of {len(token)} characters, batch 250" in output
    assert "2 secrets visible with the AWS_CREDENTIALS keys" in output
    assert "no ETL_OPTIONAL secret, using the default" in output
    for value in (password, token, openbao.root_token):
        assert value not in output
