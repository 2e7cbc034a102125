"""A Secret task in a Prefect 3 flow masks Prefect's run logs, API log table included.

The flow runs in a fresh Python process against the session's local Prefect
API, so nothing in it has called ``install_log_masking()`` (this test
process may have): a Secret task resolving the value must be enough. A
downstream task then logs the value through ``get_run_logger()`` in every
way a program does (message, ``%r`` of an object, ``extra``, a logged
exception, HTTP Basic's base64, a task that fails with the value in its
exception), and the API's ``log`` table is read until the flow's last line
has arrived (logs are written in the background).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from authchain.testing import canary
from tests._waiting import wait_for
from tests.servers.prefect_api import PrefectAPI

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]

FLOW = r'''
import base64, logging, sys
from prefect import flow, task, get_run_logger
from secret_tasks import EnvVarSecret

class Holder:
    """Its str() is harmless; its repr() (what %r shows) holds the value."""
    def __init__(self, value):
        self.value = value
    def __str__(self):
        return "Holder"
    def __repr__(self):
        return f"Holder(value={self.value!r})"

@task
def use(token):
    value = token.get_secret_value()
    logger = get_run_logger()
    logger.info("message %s", value)
    logger.info("repr %r", Holder(value))
    logger.info("extra", extra={"_token": value, "deep": [[[[[[[[[[[[value]]]]]]]]]]]]})
    logger.info("Authorization: Basic %s", base64.b64encode(f"user:{value}".encode()).decode())
    logger.info("hex %s url %s", value.encode().hex(), value.replace("-", "%2d"))
    try:
        raise ValueError(f"Invalid header value b'Bearer {value}'")
    except ValueError:
        logger.exception("a request failed")
    logger.info("stack", stack_info=True)
    return len(value)

@task(log_prints=True)
def printer(token):
    print("printed", token.get_secret_value())  # Prefect turns it into a run-log record

@task
def fail(token):
    raise ValueError(f"Invalid header value b'Bearer {token.get_secret_value()}'")

@flow
def pipeline():
    token = EnvVarSecret(sys.argv[1])()
    length = use(token)
    printer(token)
    fail(token, return_state=True)
    get_run_logger().info("flow done %s", length)
    return length

state = pipeline(return_state=True)
print(state.state_details.flow_run_id)
'''


def forms(value: str) -> list[str]:
    raw = value.encode()
    return [
        value,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        quote(value, safe=""),
    ]


def basic_leaks(value: str, text: str) -> bool:
    """The value inside any base64 run of ``text`` (HTTP Basic hides it at an offset)."""
    for run in re.findall(r"[A-Za-z0-9+/]{12,}={0,2}", text):
        try:
            decoded = base64.b64decode(run + "=" * (-len(run) % 4))
        except ValueError:
            continue
        if value.encode() in decoded:
            return True
    return False


def stored_logs(api: PrefectAPI, flow_run_id: str) -> list[str]:
    rows = api.rows(
        "SELECT message FROM log WHERE replace(flow_run_id, '-', '') = ?", (flow_run_id.replace("-", ""),)
    )
    return [str(row[0]) for row in rows]


def test_a_secret_task_masks_prefect_run_logs_in_the_api_log_table(
    prefect_api: PrefectAPI, tmp_path: Path
) -> None:
    value = canary("prefect-log")
    script = tmp_path / "flow.py"
    script.write_text(FLOW)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PREFECT_API_URL": prefect_api.api_url,
        "PREFECT_HOME": str(prefect_api.home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        "PREFECT_LOG_CANARY": value,
    }
    done = subprocess.run(
        [sys.executable, str(script), "PREFECT_LOG_CANARY"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = done.stdout + done.stderr
    flow_run_id = done.stdout.strip().splitlines()[-1]

    logs = wait_for(
        lambda: stored_logs(prefect_api, flow_run_id),
        until=lambda lines: any("flow done" in line for line in lines),
        what="the flow's last log line in the API's log table",
    )
    for expected in (
        "message ***",
        "repr Holder(value='***')",
        "a request failed",
        "printed ***",
        "Finished in state",
    ):
        assert any(expected in line for line in logs), f"the log table must hold {expected!r}"
    assert any("Bearer ***" in line for line in logs), "the logged exception text is stored, masked"

    everything = "\n".join(logs)
    for form in forms(value):
        assert form not in everything, "a form of the canary reached the API log table"
        assert form not in console, "a form of the canary reached the flow's console output"
    assert not basic_leaks(value, everything), "the canary's base64 at an offset reached the log table"
    assert not basic_leaks(value, console)


TASK_LOGGER = r"""
import logging, sys
from authchain import masking
from secret_tasks import Task

value = sys.argv[1]
masking.register(value)  # as a Secret task's lookup does; nothing installs log masking here
handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(logging.Formatter("%(message)s|%(_token)s|%(deep)s"))
logger = logging.getLogger("secret_tasks.Probe")
logger.addHandler(handler)
logger.setLevel(logging.DEBUG)

class Probe(Task):
    def run(self):
        extra = {"_token": value, "deep": [[[[[[[[[[[[value]]]]]]]]]]]]}
        self.logger.info("message %s", value, extra=extra)
        try:
            raise ValueError(f"Invalid header value b'Bearer {value}'")
        except ValueError:
            self.logger.exception("failed", extra=extra)
        self.logger.info("stack", stack_info=True, extra=extra)
        local_value = value
        self.logger.info("done", extra=extra)

Probe().run()
"""


def test_task_logger_masks_exception_stack_and_extra_without_install(tmp_path: Path) -> None:
    value = canary("task-logger")
    script = tmp_path / "task_logger.py"
    script.write_text(TASK_LOGGER)
    done = subprocess.run(
        [sys.executable, str(script), value],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "message ***|***|" in output
    assert "Bearer ***" in output
    assert "Stack (most recent call last)" in output
    assert "done|***|" in output
    for form in forms(value):
        assert form not in output, "a form of the canary reached Task.logger's output"


def test_an_async_task_still_runs_as_an_async_prefect_task(prefect_api: PrefectAPI) -> None:
    """The wrapper that installs log masking keeps ``run`` a coroutine function."""
    import asyncio

    from prefect import flow

    from secret_tasks import Task

    class Double(Task):
        async def run(self, number: int) -> int:
            await asyncio.sleep(0)
            return 2 * number

    @flow
    async def doubling() -> int:
        return await Double()(21)  # type: ignore[no-any-return]

    assert asyncio.run(doubling()) == 42
