"""explain: every source asked, shadowed values, errors recorded, pins.

The chain against real and scripted sources (helpers: tests/chain/_support.py).
"""

from __future__ import annotations

from pathlib import Path

from authchain import Chain
from authchain.backends.dotenv.source import DotenvSource
from authchain.backends.env.source import EnvSource
from authchain.testing import MemorySource, canary
from tests.chain._support import (
    ScriptedSource,
    Sleeps,
    denied,
    secret,
    write_env_file,
)

# -- explain -----------------------------------------------------------------------------


def test_explain_asks_every_source_and_reports_shadowed(tmp_path: Path) -> None:
    env = EnvSource(environ={"TOKEN": canary()})
    dotenv = DotenvSource(path=write_env_file(tmp_path / ".env", {"TOKEN": canary()}))
    memory = MemorySource({"TOKEN": canary()})
    empty = MemorySource(name="empty")
    explanation = Chain([env, empty, dotenv, memory]).explain("TOKEN")
    assert [a.source for a in explanation.attempts] == ["explicit", "env", "empty", "dotenv", "memory"]
    assert explanation.winner is not None
    assert explanation.winner.source == "env"
    assert [a.source for a in explanation.shadowed] == ["dotenv", "memory"]
    text = str(explanation)
    assert text.startswith("TOKEN: found by env (env)\n")
    assert text.endswith("also defined in (shadowed): dotenv, memory")
    assert memory.calls == 1, "explain asks sources after the winner"
    data = explanation.as_dict()
    assert data["winner"] == "env"
    assert data["shadowed"] == ["dotenv", "memory"]
    assert [a["status"] for a in data["attempts"]] == [
        "not asked",
        "WINNER",
        "not found",
        "shadowed",
        "shadowed",
    ]


def test_explain_reports_the_cached_flag() -> None:
    memory = MemorySource({"TOKEN": canary()})
    chain = Chain([memory])
    assert not chain.explain("TOKEN").from_cache
    explanation = chain.explain("TOKEN")
    assert explanation.from_cache
    assert "found by memory (memory), from cache" in str(explanation)
    assert "[cached]" in str(explanation)
    assert memory.calls == 1


def test_explain_of_a_missing_name_does_not_raise() -> None:
    explanation = Chain([MemorySource()]).explain("TOKEN")
    assert not explanation.found
    assert explanation.winner is None
    assert str(explanation).startswith("TOKEN: not found by any source\n")


def test_explain_records_errors_instead_of_raising() -> None:
    broken = ScriptedSource(fault=denied, failures=100, name="vault-prod")
    value = canary()
    explanation = Chain([broken, MemorySource({"TOKEN": value})], sleep=Sleeps()).explain("TOKEN")
    assert explanation.attempts[1].outcome == "error"
    assert explanation.attempts[1].detail == "error: permission denied on kv/app"
    assert explanation.winner is not None
    assert explanation.winner.source == "memory"


def test_explain_shows_a_pin() -> None:
    memory = MemorySource({"creds": '{"password": "pw-example"}'})
    chain = Chain([memory], secrets={"DB_PASSWORD": "memory://creds#password"})
    assert secret(chain.resolve("DB_PASSWORD")) == "pw-example"
    explanation = chain.explain("DB_PASSWORD")
    assert explanation.pinned_to == "memory://creds#password"
    assert "pinned in config to memory://creds#password" in str(explanation)
