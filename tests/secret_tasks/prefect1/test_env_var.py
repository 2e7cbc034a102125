"""Prefect 1.4.1's ``tests/tasks/secrets/test_env_var.py``, ported to the shim.

Only the import changed; every original case and assertion is here. The
date case uses ``datetime.fromisoformat`` where the original used
``pendulum.parse`` (pendulum is not a dependency): the point is that
``cast`` may be any callable.
"""

from __future__ import annotations

import datetime

import pytest

from secret_tasks.prefect1 import EnvVarSecret


def test_init_with_name() -> None:
    e = EnvVarSecret(name="FOO")
    assert e.name == "FOO"


def test_default_cast_is_none() -> None:
    e = EnvVarSecret(name="FOO")
    assert e.cast is None


def test_run_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO", "1")
    e = EnvVarSecret(name="FOO")
    assert e.run() == "1"


def test_run_secret_without_name_set_returns_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOO", raising=False)
    e = EnvVarSecret(name="FOO")
    assert e.run() is None


def test_run_secret_with_new_name_at_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO", "1")
    monkeypatch.delenv("BAR", raising=False)
    e = EnvVarSecret(name="FOO")
    assert e.run(name="BAR") is None


def test_secret_name_set_at_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO", "1")
    e = EnvVarSecret()
    assert e.run("FOO") == "1"


def test_secret_raises_if_no_name_provided() -> None:
    e = EnvVarSecret()
    with pytest.raises(ValueError, match="secret name must be provided"):
        e.run()


def test_run_secret_with_new_name_at_runtime_and_raise_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO", "1")
    monkeypatch.delenv("BAR", raising=False)
    e = EnvVarSecret(name="FOO", raise_if_missing=True)
    with pytest.raises(ValueError, match="variable not set"):
        e.run(name="BAR")


def test_run_secret_without_name_set_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOO", raising=False)
    e = EnvVarSecret(name="FOO", raise_if_missing=True)
    with pytest.raises(ValueError, match="variable not set"):
        e.run()


def test_run_secret_with_cast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO", "1")
    e = EnvVarSecret(name="FOO", cast=int)
    assert e.run() == 1


def test_run_secret_without_name_set_returns_none_even_if_cast_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOO", raising=False)
    e = EnvVarSecret(name="FOO", cast=int)
    assert e.run() is None


def test_run_secret_without_name_set_raises_with_cast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOO", raising=False)
    e = EnvVarSecret(name="FOO", raise_if_missing=True, cast=int)
    with pytest.raises(ValueError, match="variable not set"):
        e.run()


def test_run_secret_with_cast_datetime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO", "2019-01-02 03:04:05")
    e = EnvVarSecret(name="FOO", cast=datetime.datetime.fromisoformat)
    assert e.run() == datetime.datetime(2019, 1, 2, 3, 4, 5)
