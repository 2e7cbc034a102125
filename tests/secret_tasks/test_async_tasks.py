"""Secret tasks in async code: called plainly and awaited (``arun``), inside async Prefect
flows and outside any flow, against OpenBao (behind a latency proxy) and Prefect's local API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from authchain import SecretValue
from authchain.testing import canary
from secret_tasks import EnvVarSecret, PrefectSecret, VaultSecret
from tests.servers.openbao import OpenBao
from tests.servers.prefect_api import PrefectAPI

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def slow_vault_options(openbao: OpenBao, tcp_proxy: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    host, port = openbao.url.removeprefix("http://").split(":")
    proxy = tcp_proxy((host, int(port)))
    proxy.latency = 0.3
    monkeypatch.setenv("ST_ASYNC_VAULT_TOKEN", openbao.root_token)
    return {"url": proxy.url, "token": "env://ST_ASYNC_VAULT_TOKEN", "timeout": 5.0}


async def ticks_while(awaitable: Any) -> tuple[Any, int, float]:
    """Await ``awaitable`` while a 10 ms ticker runs: (its result, ticks counted, seconds)."""
    count = 0
    done = False

    async def ticker() -> None:
        nonlocal count
        while not done:
            await asyncio.sleep(0.01)
            count += 1

    beat = asyncio.ensure_future(ticker())
    started = time.perf_counter()
    try:
        result = await awaitable
    finally:
        done = True
        await beat
    return result, count, time.perf_counter() - started


def test_arun_outside_a_flow_does_not_block_the_loop(
    openbao: OpenBao, slow_vault_options: dict[str, Any]
) -> None:
    value = canary()
    openbao.put("t/async-task/db", {"password": value})
    task = VaultSecret("t/async-task/db", key="password", source_options=slow_vault_options)
    result, ticks, seconds = asyncio.run(ticks_while(task.arun()))
    assert isinstance(result, SecretValue)
    assert result.get_secret_value() == value
    # About one tick per 10 ms of the >= 0.3 s fetch; a blocked loop would count ~1.
    assert ticks >= seconds / 0.01 / 3, (ticks, seconds)


def test_secret_tasks_in_an_async_flow_called_plainly_and_awaited(
    prefect_api: PrefectAPI,
    openbao: OpenBao,
    slow_vault_options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect import flow
    from prefect.blocks.system import Secret

    from_env, from_vault, from_block = canary(), canary(), canary()
    monkeypatch.setenv("ST_ASYNC_ENV", from_env)
    openbao.put("t/async-flow/db", {"password": from_vault})
    Secret(value=from_block).save("st-async-block", overwrite=True)
    vault = VaultSecret("t/async-flow/db", key="password", source_options=slow_vault_options)

    @flow
    async def pipeline() -> dict[str, Any]:
        plain = EnvVarSecret("ST_ASYNC_ENV")()
        awaited = await EnvVarSecret("ST_ASYNC_ENV").arun()
        block = await PrefectSecret("st-async-block").arun()
        from_store, ticks, seconds = await ticks_while(vault.arun())
        return {
            "plain": plain.get_secret_value(),
            "awaited": awaited.get_secret_value(),
            "block": block.get_secret_value(),
            "vault": from_store.get_secret_value(),
            "loop went on": ticks >= seconds / 0.01 / 3,
        }

    state: Any = asyncio.run(pipeline(return_state=True))  # type: ignore[call-arg]
    assert state.result() == {
        "plain": from_env,
        "awaited": from_env,
        "block": from_block,
        "vault": from_vault,
        "loop went on": True,
    }
    names = prefect_api.wait_for_task_runs(state.state_details.flow_run_id, 4)
    assert names.count("EnvVarSecret[ST_ASYNC_ENV]") == 2, "the awaited form ran as a Prefect task run too"
    assert any(name.startswith("VaultSecret") for name in names)
