"""``authchain.cli.main()`` called in-process (a program embedding the CLI): what it leaves behind.

The rest of the CLI suite runs the command as a subprocess, where nothing it
changes outlives it. In-process, docs/cli.md says what stays and what does
not: log masking stays installed (a value the command resolved must not show
up in the program's later log lines); the logging ``--debug`` turned on (a
root handler, the root level, the SDK loggers' levels), the masking filters on
the program's own handlers and the chains (with their threads) the command
made do not.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain, masking
from authchain._sdk_logging import sdk_loggers
from authchain.cli import main
from authchain.testing import canary
from tests._waiting import wait_for


@pytest.fixture
def plain_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No config anywhere: the default order (the environment is one of its sources)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    for name in ("AUTHCHAIN_CONFIG", "AUTHCHAIN_PROFILE", "AUTHCHAIN_DEBUG_SDK"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def logging_state() -> dict[str, object]:
    root = logging.getLogger()
    return {
        "root level": root.level,
        "root handlers": list(root.handlers),
        "handler filters": {id(handler): list(handler.filters) for handler in root.handlers},
        "sdk levels": {name: logging.getLogger(name).level for name in sdk_loggers()},
    }


def authchain_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith("authchain")}


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_main_restores_the_logging_it_changed(
    plain_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], debug: list[str]
) -> None:
    value = canary("in-process")
    monkeypatch.setenv("T_IN_PROCESS", value)
    # Hand-set levels on two SDK loggers: --debug quiets them, and must give them back.
    monkeypatch.setattr(logging.getLogger("botocore"), "level", logging.DEBUG)
    monkeypatch.setattr(logging.getLogger("hvac"), "level", logging.NOTSET)
    before = logging_state()
    assert main([*debug, "resolve", "T_IN_PROCESS"]) == 0
    assert logging_state() == before
    assert value not in capsys.readouterr().out  # masked unless --reveal


def test_masking_stays_installed_after_main_returns(
    plain_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented exception: a value main() resolved stays masked in later log lines,
    through handlers the program adds afterwards."""
    value = canary("stays-masked")
    monkeypatch.setenv("T_STAYS_MASKED", value)
    assert main(["resolve", "--reveal", "T_STAYS_MASKED"]) == 0
    assert capsys.readouterr().out.strip() == value  # asked for: shown on stdout
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.embedding_program")
    logger.addHandler(handler)
    try:
        logger.warning("connecting with %s", value)
    finally:
        logger.removeHandler(handler)
    assert value not in stream.getvalue()
    assert "connecting with *" in stream.getvalue()
    assert logging.getLogRecordFactory() is masking._masking_factory


def test_main_closes_the_chains_it_made(
    plain_process: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each command's chain (its pool threads, its sources' clients) is closed when main()
    returns, ``run`` included."""
    made: list[Chain] = []
    from_config = Chain.from_config

    def recording(*args: Any, **kwargs: Any) -> Chain:
        chain = from_config(*args, **kwargs)
        made.append(chain)
        # A pool thread, which only close() ends (these commands start none of their own).
        chain._executor().submit(lambda: None).result()
        assert authchain_threads() - before, "the chain has a pool thread to end"
        return chain

    monkeypatch.setattr(Chain, "from_config", recording)
    before = authchain_threads()
    for number in range(3):
        monkeypatch.setenv(f"T_SOURCE_{number}", canary(f"source-{number}"))
        monkeypatch.setenv(f"T_REF_{number}", f"env://T_SOURCE_{number}")
    code = main(["run", "--", sys.executable, "-c", "import os; print(len(os.environ['T_REF_1']))"])
    assert code == 0, capfd.readouterr().err
    assert main(["resolve", "T_SOURCE_0"]) == 0
    assert main(["explain", "T_SOURCE_0"]) == 0
    assert len(made) >= 3
    assert all(chain.closed for chain in made)
    wait_for(
        lambda: authchain_threads() - before,
        until=lambda left: not left,
        timeout=20,
        what="the threads of the chains main() made to end",
    )
