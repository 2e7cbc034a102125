"""The secret-hygiene checks of ``tests/secret_tasks/test_prefect_flows.py`` and
``test_prefect_masking.py``, extended to the Prefect 1 shims.

A shim returns a plain ``str`` or ``dict``, not a ``SecretValue``: these tests
prove that the value still never reaches Prefect's database, result storage
(persistence on by default included) or log records, that a downstream task
logging it writes it masked to the API's log table, and that a shim task
pickled after use or an error it raised holds no value. One fresh canary per
test, planted in the real backend each shim reads.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from secret_tasks.prefect1 import AWSSecretsManager, EnvVarSecret, PrefectSecret, SecretBase, VaultSecret
from tests._waiting import wait_for
from tests.secret_tasks.test_prefect_flows import _Capture, assert_nowhere, captured_logs  # noqa: F401
from tests.secret_tasks.test_prefect_masking import forms, stored_logs
from tests.servers.prefect_api import PrefectAPI

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[3]
KINDS = ["prefect", "env", "aws-sm", "vault"]


def planted(
    kind: str, value: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> SecretBase:
    """Put ``value`` where ``kind``'s shim reads it; return the shim task."""
    document = json.dumps({"password": value})
    if kind == "prefect":
        monkeypatch.setenv("PREFECT__CONTEXT__SECRETS__P1_HYGIENE", document)
        return PrefectSecret("P1_HYGIENE")
    if kind == "env":
        monkeypatch.setenv("P1_HYGIENE_ENV", value)
        return EnvVarSecret("P1_HYGIENE_ENV")
    if kind == "aws-sm":
        moto = request.getfixturevalue("moto")
        moto.client("secretsmanager").create_secret(Name="p1/hygiene", SecretString=document)
        return AWSSecretsManager("p1/hygiene")
    openbao = request.getfixturevalue("openbao")
    openbao.put("t/p1-hygiene", {"password": value})
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.setenv(
        "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS", json.dumps({"VAULT_TOKEN": openbao.root_token})
    )
    return VaultSecret("secret/t/p1-hygiene")


def run_pipeline(shim: SecretBase, api: PrefectAPI) -> int:
    """A Prefect-1-style pipeline: the shim's plain value flows into a task of the user's."""
    from prefect import flow, task

    @task
    def use_secret(secret: Any) -> int:
        password = secret["password"] if isinstance(secret, dict) else secret
        return len(password)

    @flow
    def pipeline() -> int:
        return use_secret(shim())  # type: ignore[no-any-return]

    state: Any = pipeline(return_state=True)
    api.wait_for_task_runs(state.state_details.flow_run_id, 2)
    return state.result()  # type: ignore[no-any-return]


@pytest.mark.parametrize("persist_by_default", [False, True], ids=["default", "persist-by-default"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_shim_secret_never_reaches_the_database_results_or_logs(
    kind: str,
    persist_by_default: bool,
    prefect_api: PrefectAPI,
    captured_logs: _Capture,  # noqa: F811
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings

    value = canary(f"p1-{kind}")
    shim = planted(kind, value, request, monkeypatch)
    storage = prefect_api.home / "storage"
    before = set(storage.rglob("*")) if storage.exists() else set()
    with temporary_settings(updates={PREFECT_RESULTS_PERSIST_BY_DEFAULT: persist_by_default}):
        assert run_pipeline(shim, prefect_api) == len(value)
    if persist_by_default:
        wait_for(
            lambda: set(storage.rglob("*")) - before,
            what="result files written by persistence by default (else this test proves nothing)",
        )
    assert captured_logs.lines, "the flow must have logged something for this test to mean anything"
    assert_nowhere(value, prefect_api, captured_logs)


@pytest.mark.parametrize("kind", KINDS)
def test_shim_tasks_and_their_errors_hold_no_value_after_use(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary(f"p1-{kind}")
    shim = planted(kind, value, request, monkeypatch)
    found = shim.run()
    assert value in (found["password"] if isinstance(found, dict) else found)
    for dump in (pickle.dumps, cloudpickle.dumps):
        assert_not_leaked(value, dump(shim), f"a pickled {type(shim).__name__} after use")
    for shown in (repr(shim), str(shim)):
        assert_not_leaked(value, shown, f"repr/str of {type(shim).__name__}")
    missing: Callable[[], Any] = {
        "prefect": lambda: shim.run(name="P1_HYGIENE_ABSENT"),  # type: ignore[call-arg]
        "env": lambda: EnvVarSecret("P1_HYGIENE_ABSENT", raise_if_missing=True).run(),
        "aws-sm": lambda: shim.run(secret="p1/hygiene-absent"),  # type: ignore[call-arg]
        "vault": lambda: shim.run(name="secret/t/p1-hygiene-absent"),  # type: ignore[call-arg]
    }[kind]
    with pytest.raises(LookupError) as caught:
        missing()
    assert_not_leaked(value, str(caught.value), "the not-found error after a lookup")
    assert_not_leaked(value, pickle.dumps(caught.value), "the pickled not-found error")


FLOW = r"""
import sys
from prefect import flow, task, get_run_logger
from secret_tasks.prefect1 import EnvVarSecret, PrefectSecret

@task
def use(token, document):
    logger = get_run_logger()
    logger.info("plain str %s", token)
    logger.info("dict %s", document)
    logger.info("field %s", document["password"])
    return len(token)

@flow
def pipeline():
    token = EnvVarSecret(sys.argv[1])()
    document = PrefectSecret(sys.argv[2])()
    length = use(token, document)
    get_run_logger().info("flow done %s", length)
    return length

state = pipeline(return_state=True)
print(state.state_details.flow_run_id)
"""


def test_plain_values_a_downstream_task_logs_are_masked_in_the_api_log_table(
    prefect_api: PrefectAPI, tmp_path: Path
) -> None:
    token, field = canary("p1-log"), canary("p1-field")
    script = tmp_path / "flow.py"
    script.write_text(FLOW)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PREFECT_API_URL": prefect_api.api_url,
        "PREFECT_HOME": str(prefect_api.home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        "PREFECT__USER_CONFIG_PATH": str(tmp_path / "absent.toml"),
        "P1_LOG_TOKEN": token,
        "PREFECT__CONTEXT__SECRETS__P1_LOG_DOC": json.dumps({"password": field}),
    }
    done = subprocess.run(
        [sys.executable, str(script), "P1_LOG_TOKEN", "P1_LOG_DOC"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    flow_run_id = done.stdout.strip().splitlines()[-1]
    logs = wait_for(
        lambda: stored_logs(prefect_api, flow_run_id),
        until=lambda lines: any("flow done" in line for line in lines),
        what="the flow's last log line in the API's log table",
    )
    assert any("plain str ***" in line for line in logs)
    assert any("field ***" in line for line in logs)
    everything = "\n".join(logs)
    console = done.stdout + done.stderr
    for value in (token, field):
        for form in forms(value):
            assert form not in everything, "a form of a canary reached the API log table"
            assert form not in console, "a form of a canary reached the flow's console output"
