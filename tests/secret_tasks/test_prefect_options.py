"""Prefect task options given to a task's ``__init__`` reach its Prefect task.

Every option of the installed ``prefect.Task.__init__`` is either passed on
or refused (the persistence and caching ones: a task's result may be a
secret); the real-API tests run flows against Prefect's local API and read
what it stored.
"""

from __future__ import annotations

import inspect
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from authchain import ConfigError, SecretRef, SecretValue
from authchain.testing import canary
from secret_tasks import ChainSecret, EnvVarSecret, Task, VaultSecret
from secret_tasks.base import PREFECT_OPTIONS, REFUSED_PREFECT_OPTIONS
from tests.servers.prefect_api import PrefectAPI

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]

# What the base takes under its own names (Prefect's ``name`` is ``task_name``).
_OWN = {"fn", "name", "tags", "retries", "retry_delay_seconds"}


class Echo(Task):
    """A plain custom task."""

    def run(self, value: str = "x") -> int:
        return len(value)


def test_every_option_of_the_installed_prefect_task_is_passed_on_or_refused() -> None:
    from prefect import Task as PrefectTask

    names = set(inspect.signature(PrefectTask.__init__).parameters) - {"self"}
    unclassified = names - _OWN - PREFECT_OPTIONS - REFUSED_PREFECT_OPTIONS
    assert not unclassified, f"new Prefect task options to classify: {sorted(unclassified)}"
    assert names >= PREFECT_OPTIONS | REFUSED_PREFECT_OPTIONS, "options Prefect does not have"
    assert not PREFECT_OPTIONS & REFUSED_PREFECT_OPTIONS


@pytest.mark.parametrize("option", sorted(REFUSED_PREFECT_OPTIONS))
@pytest.mark.parametrize("task_class", [Echo, EnvVarSecret, ChainSecret])
def test_persistence_and_caching_options_are_refused_with_the_reason(
    task_class: type[Task], option: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        task_class(**{option: True})
    message = str(raised.value)
    assert option in message
    assert "secret" in message
    assert "result storage" in message


def test_unknown_options_and_name_are_type_errors() -> None:
    with pytest.raises(TypeError, match="not_an_option"):
        Echo(not_an_option=1)
    with pytest.raises(TypeError, match="task_name="):
        Echo(name="x")


def _hook(*args: Any) -> None:
    return None


def _retry_condition(task: Any, task_run: Any, state: Any) -> bool:
    return True


def test_each_option_reaches_the_prefect_task() -> None:
    given: dict[str, Any] = {
        "description": "exports a table",
        "version": "7",
        "timeout_seconds": 12.5,
        "log_prints": True,
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": _retry_condition,
        "on_completion": [_hook],
        "on_failure": (_hook,),
        "on_running": [_hook],
        "on_commit": [_hook],
        "on_rollback": [_hook],
        "viz_return_value": 3,
        "asset_deps": ["s3://bucket/table"],
        "task_run_name": "echo-{value}",
    }
    assert set(given) == PREFECT_OPTIONS, "every option passed on is checked here"
    task = Echo(task_name="echo", retries=2, retry_delay_seconds=[1, 2], tags=["etl"], **given)
    wrapped = task.as_prefect_task()
    assert (wrapped.name, wrapped.retries, wrapped.retry_delay_seconds, wrapped.tags) == (
        "echo",
        2,
        [1, 2],
        {"etl"},
    )
    assert (wrapped.description, wrapped.version, wrapped.timeout_seconds) == ("exports a table", "7", 12.5)
    assert wrapped.log_prints is True
    assert wrapped.retry_jitter_factor == 0.5
    assert wrapped.retry_condition_fn is _retry_condition
    assert wrapped.viz_return_value == 3
    for hook in ("on_completion", "on_failure", "on_running", "on_commit", "on_rollback"):
        assert getattr(wrapped, f"{hook}_hooks") == [_hook], hook
    assert [str(asset.key) for asset in wrapped.asset_deps] == ["s3://bucket/table"]
    assert task._task_run_name({"value": "abc"}) == "echo-abc"
    # Whatever was given, nothing is persisted or cached.
    assert wrapped.persist_result is False
    assert type(wrapped.cache_policy).__name__ == "_None"


def test_defaults_stay_off() -> None:
    wrapped = EnvVarSecret("ANY").as_prefect_task()
    assert wrapped.log_prints is False
    assert wrapped.timeout_seconds is None
    assert wrapped.on_failure_hooks == []
    assert wrapped.persist_result is False


def test_a_value_formatted_into_a_custom_run_name_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    value = canary()
    monkeypatch.setenv("RUN_NAME_TOKEN", value)
    resolved = EnvVarSecret("RUN_NAME_TOKEN").run()  # registers the value with the masker
    assert isinstance(resolved, SecretValue)
    for run_name in ("use-{value}", lambda parameters: f"use-{parameters['value']}"):
        name = Echo(task_name="use", task_run_name=run_name)._task_run_name({"value": value})
        assert name.startswith("use-")
        assert value not in name


_BLOCK_PREFECT = """
import sys, importlib.abc

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "prefect" or name.startswith("prefect."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
import os
from authchain import ConfigError
from secret_tasks import EnvVarSecret

task = EnvVarSecret("NO_PREFECT_TOKEN", timeout_seconds=5, tags=["x"])
assert task.run().get_secret_value() == os.environ["NO_PREFECT_TOKEN"]  # it just runs
assert task().get_secret_value() == os.environ["NO_PREFECT_TOKEN"]
for call in (lambda: task.submit(), lambda: task.map(["A"]), task.as_prefect_task):
    try:
        call()
    except ConfigError as error:
        print("ConfigError:", error)
    else:
        raise SystemExit("no error")
"""


def test_submit_and_map_without_prefect_name_the_extra(tmp_path: Path) -> None:
    value = canary()
    result = subprocess.run(
        [sys.executable, "-c", _BLOCK_PREFECT],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "NO_PREFECT_TOKEN": value, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all("pip install 'authchain[prefect]'" in line for line in lines)
    assert "ModuleNotFoundError" not in result.stderr
    assert value not in result.stdout + result.stderr


def test_missing_prefect_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prefect", None)
    monkeypatch.setitem(sys.modules, "prefect.cache_policies", None)
    task = VaultSecret("app/db", key="password")
    with pytest.raises(ConfigError, match=r"authchain\[prefect\]"):
        task.submit()
    with pytest.raises(ConfigError, match=r"authchain\[prefect\]"):
        task.map(["a", "b"])


# --- against Prefect's local API --------------------------------------------


def _task_runs(api: PrefectAPI, flow_run_name: str, want: int, bound: float = 60.0) -> list[tuple[str, str]]:
    """The (name, tags) of a flow run's task runs, waiting (bounded) for background writes."""
    deadline = time.monotonic() + bound
    while True:
        with sqlite3.connect(api.database) as connection:
            rows = connection.execute(
                "SELECT task_run.name, task_run.tags FROM task_run JOIN flow_run "
                "ON task_run.flow_run_id = flow_run.id WHERE flow_run.name = ?",
                (flow_run_name,),
            ).fetchall()
        if len(rows) >= want or time.monotonic() > deadline:
            return [(str(name), str(tags)) for name, tags in rows]
        time.sleep(0.2)


def test_hooks_run_name_and_tags_reach_the_api(
    prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.runtime import flow_run

    value = canary()
    monkeypatch.setenv("OPTIONS_TOKEN", value)
    events: list[str] = []
    lock = threading.Lock()

    def completed(task: Any, task_run: Any, state: Any) -> None:
        with lock:
            events.append(f"completed {task_run.name} {state.name}")

    def failed(task: Any, task_run: Any, state: Any) -> None:
        with lock:
            events.append(f"failed {task_run.name}")

    class Boom(Task):
        def run(self) -> None:
            raise RuntimeError("planned failure")

    secret = EnvVarSecret(
        "OPTIONS_TOKEN",
        task_run_name="fetch-{name}",
        tags=["secrets", "nightly"],
        on_completion=[completed],
        description="reads the token",
    )
    boom = Boom(task_name="boom", on_failure=[failed], task_run_name="boom-run")
    names: list[str] = []

    @flow
    def with_options() -> str:
        names.append(str(flow_run.name))
        token = secret()
        state = boom(return_state=True)
        return f"{len(token.get_secret_value())} {state.name}"

    assert with_options() == f"{len(value)} Failed"
    assert "completed fetch-OPTIONS_TOKEN Completed" in events
    assert "failed boom-run" in events
    runs = dict(_task_runs(prefect_api, names[0], want=2))
    assert set(runs) == {"fetch-OPTIONS_TOKEN", "boom-run"}, runs
    assert "secrets" in runs["fetch-OPTIONS_TOKEN"]
    assert "nightly" in runs["fetch-OPTIONS_TOKEN"]
    assert all(value not in name + tags for name, tags in runs.items())


def test_timeout_seconds_times_out_a_slow_task(prefect_api: PrefectAPI) -> None:
    from prefect import flow

    finished = threading.Event()

    class Slow(Task):
        def run(self, seconds: float = 60.0) -> str:
            end = time.monotonic() + seconds
            while time.monotonic() < end:  # short sleeps: any cancellation gets in
                time.sleep(0.05)
            finished.set()
            return "done"

    @flow
    def slow_flow() -> str:
        state = Slow(timeout_seconds=1)(return_state=True)
        return str(state.name)

    started = time.monotonic()
    assert slow_flow() == "TimedOut"
    assert time.monotonic() - started < 50, "the timeout must stop the task long before its 60 s"
    assert not finished.is_set()


def test_a_custom_run_name_stored_in_the_api_is_masked(
    prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.runtime import flow_run

    value = canary()
    monkeypatch.setenv("MASKED_NAME_TOKEN", value)
    names: list[str] = []

    @flow
    def careless() -> int:
        names.append(str(flow_run.name))
        token = EnvVarSecret("MASKED_NAME_TOKEN")()
        return Echo(task_run_name="echo-{value}")(value=token.get_secret_value())  # type: ignore[no-any-return]

    assert careless() == len(value)
    runs = _task_runs(prefect_api, names[0], want=2)
    assert any(name.startswith("echo-") for name, _ in runs), runs
    assert not any(value in name for name, _ in runs)


def test_what_prefect_stores_for_a_secret_ref_parameter(
    prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README says exactly what flow_run.parameters holds for SecretRef and SecretValue."""
    import json

    from prefect import flow
    from prefect.runtime import flow_run

    value = canary()
    monkeypatch.setenv("STORED_REF_TOKEN", value)
    names: list[str] = []

    @flow
    def takes_ref(ref: SecretRef, secret: SecretValue[str], unresolved: SecretRef) -> int:
        names.append(str(flow_run.name))
        return len(ref.resolve().get_secret_value())

    other = SecretRef.parse("vault://secret/app#token")
    assert takes_ref(SecretRef.parse("env://STORED_REF_TOKEN"), SecretValue(value), other) == len(value)
    with sqlite3.connect(prefect_api.database) as connection:
        row = connection.execute("SELECT parameters FROM flow_run WHERE name = ?", (names[0],)).fetchone()
    stored = json.loads(row[0])
    assert value not in row[0]
    # Measured with Prefect 3.9: the reference's fields as an object, not its text.
    assert stored["ref"] == {"scheme": "env", "location": "STORED_REF_TOKEN", "fragment": None, "params": []}
    assert SecretRef.parse("env://STORED_REF_TOKEN") == _ref_from_fields(stored["ref"])
    assert stored["secret"] == "<SecretValue>"
    assert stored["unresolved"] == {
        "scheme": "vault",
        "location": "secret/app",
        "fragment": "token",
        "params": [],
    }
    assert _ref_from_fields(stored["unresolved"]) == other


def _ref_from_fields(fields: dict[str, Any]) -> SecretRef:
    """What a deployment run validates the stored object back into (a SecretRef accepts its field dict)."""
    from pydantic import TypeAdapter

    return TypeAdapter(SecretRef).validate_python(fields)


def test_the_readme_run_signatures_match_the_code() -> None:
    import secret_tasks

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Tasks and Prefect\n", 1)[1].split("\n## ", 1)[0]
    listed = section.split("```text\n", 1)[1].split("\n```", 1)[0].splitlines()
    assert len(listed) == 9
    for line in listed:
        class_name, arguments = line.split(".run(", 1)
        run = inspect.unwrap(getattr(secret_tasks, class_name).run)
        actual = [f"{name}=None" for name in list(inspect.signature(run).parameters)[1:]]
        assert arguments.rstrip(")").split(", ") == actual, class_name


def test_with_options_cannot_turn_persistence_or_caching_back_on() -> None:
    """``as_prefect_task()`` is documented for ``with_options``: that door stays shut too."""
    pytest.importorskip("prefect")
    from prefect.cache_policies import NO_CACHE

    task = EnvVarSecret("WITH_OPTIONS_TOKEN").as_prefect_task()
    for options in ({"persist_result": True}, {"cache_policy": "DEFAULT"}, {"result_storage": "x"}):
        with pytest.raises(ConfigError, match="cannot be set"):
            task.with_options(**options)
    copy = task.with_options(retries=2, persist_result=False)
    assert copy.retries == 2
    assert copy.persist_result is False
    assert copy.cache_policy is NO_CACHE
    with pytest.raises(ConfigError, match="persist_result"):
        copy.with_options(persist_result=True)  # a copy of a copy keeps the refusal
