"""The task base: defaults_from_attrs precedence, required settings, pickling, logging."""

from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import secret_tasks
from authchain import SecretValue, masking
from authchain.testing import canary
from secret_tasks import Task, defaults_from_attrs


class Connect(Task):
    def __init__(self, host: str | None = None, port: int | None = None, **kwargs: Any) -> None:
        self.host = host
        self.port = port
        super().__init__(**kwargs)

    @defaults_from_attrs("host", "port", required=("host",))
    def run(self, host: str | None = None, port: int | None = None) -> tuple[str | None, int | None]:
        return host, port


def test_init_only() -> None:
    assert Connect(host="init-host", port=1).run() == ("init-host", 1)


def test_run_only() -> None:
    assert Connect().run(host="run-host", port=2) == ("run-host", 2)


def test_run_wins_over_init_when_not_none() -> None:
    task = Connect(host="init-host", port=1)
    assert task.run(host="run-host") == ("run-host", 1)
    assert task.run(host=None, port=None) == ("init-host", 1)
    assert task.run("positional-host") == ("positional-host", 1)


def test_neither_raises_value_error_naming_both_places() -> None:
    with pytest.raises(ValueError, match=r"Connect: 'host' is not set") as caught:
        Connect(port=3).run()
    assert "Connect(host=...)" in str(caught.value)
    assert ".run(host=...)" in str(caught.value)


def test_optional_settings_may_stay_none() -> None:
    assert Connect(host="h").run() == ("h", None)


def test_required_must_be_an_attribute() -> None:
    with pytest.raises(TypeError, match="required settings"):
        defaults_from_attrs("a", required=("b",))


def test_calling_outside_a_flow_just_runs() -> None:
    assert Connect(host="h")(port=9) == ("h", 9)


def test_task_is_stateless_between_runs() -> None:
    task = Connect(host="h", port=1)
    task.run(host="other", port=2)
    assert task.run() == ("h", 1)


def test_run_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError):
        Task().run()


def test_task_options_are_kept() -> None:
    task = Connect(host="h", task_name="connect-db", retries=3, retry_delay_seconds=0.5, tags=["db"])
    assert (task.task_name, task.retries, task.retry_delay_seconds, task.tags) == (
        "connect-db",
        3,
        0.5,
        ("db",),
    )
    assert repr(task) == "<Connect 'connect-db'>"


def test_logger_outside_a_run_masks_resolved_values(caplog: pytest.LogCaptureFixture) -> None:
    value = canary()
    masking.register(SecretValue(value))
    task = Connect(host="h")
    with caplog.at_level(logging.INFO, logger="secret_tasks"):
        task.logger.info("connecting with %s", value)
    assert caplog.records, "the task logger must log through secret_tasks.<Class>"
    assert caplog.records[0].name == "secret_tasks.Connect"
    assert value not in caplog.text
    assert "connecting with ***" in caplog.text


def test_the_task_logger_behaves_like_a_standard_logger(caplog: pytest.LogCaptureFixture) -> None:
    task = Connect(host="h")
    with caplog.at_level(logging.INFO, logger="secret_tasks"):
        task.logger.info("host %(host)s", {"host": "db.example"})
        line = sys._getframe().f_lineno + 1
        task.logger.info("broken %s %s", "only-one")  # a format mistake must not fail the task
    first, second = caplog.records
    assert first.getMessage() == "host db.example"
    assert "log arguments did not match the format" in second.getMessage()
    assert (Path(second.pathname).name, second.lineno) == ("test_base.py", line), "the caller's line"


ALL_TASKS = [getattr(secret_tasks, name) for name in secret_tasks.__all__ if name.endswith("Secret")]


@pytest.mark.parametrize("task_class", ALL_TASKS, ids=lambda cls: cls.__name__)
def test_every_secret_task_round_trips_through_cloudpickle(task_class: type[Task]) -> None:
    task = task_class(retries=2)
    task.as_prefect_task()  # what a flow builds on first use: it stays behind
    clone = cloudpickle.loads(cloudpickle.dumps(task))
    assert type(clone) is task_class
    assert clone.retries == 2
    assert "_prefect_task" not in vars(clone)
    assert pickle.loads(pickle.dumps(task)).task_name == task.task_name  # noqa: S301 - our own bytes


def test_all_secret_tasks_are_exported() -> None:
    assert {cls.__name__ for cls in ALL_TASKS} == {
        "EnvVarSecret",
        "DotenvSecret",
        "FilesSecret",
        "KeyringSecret",
        "VaultSecret",
        "AWSSecretsManagerSecret",
        "AWSParameterStoreSecret",
        "GCPSecretManagerSecret",
        "AzureKeyVaultSecret",
        "PrefectSecret",
        "ChainSecret",
    }
