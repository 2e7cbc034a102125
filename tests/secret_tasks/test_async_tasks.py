"""Secret tasks in async code: called plainly and awaited (``arun``), inside async Prefect
flows and outside any flow, against OpenBao, moto and the GCP fake (each 300 ms away: a
latency proxy, the fake's own delay) and Prefect's local API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from authchain import SecretValue
from authchain.testing import canary
from authchain.testing.gcp import FakeSecretManager
from secret_tasks import (
    AWSSecretsManagerSecret,
    EnvVarSecret,
    GCPSecretManagerSecret,
    PrefectSecret,
    VaultSecret,
)
from tests.servers.moto_server import REGION, MotoServer
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


def loop_went_on(ticks: int, seconds: float) -> bool:
    """A 10 ms ticker kept ticking through a fetch of ``seconds``: a loop blocked for the fetch
    counts one or two ticks; a loop sharing 2 busy cores with the SDK's first client build in a
    pool thread (boto3: hundreds of ms holding the GIL) and a CPU-bound neighbour counted a
    quarter of the ideal, so a tenth is the bound."""
    return ticks >= max(5.0, seconds / 0.01 / 10)


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
    assert loop_went_on(ticks, seconds), (ticks, seconds)


@pytest.mark.parametrize("kind", ["aws-sm", "gcp-sm"])
def test_arun_and_plain_calls_of_aws_and_gcp_tasks_outside_a_flow(
    kind: str, request: pytest.FixtureRequest
) -> None:
    value = canary()
    task: Any
    if kind == "aws-sm":
        moto: MotoServer = request.getfixturevalue("moto")
        proxy = request.getfixturevalue("moto_proxy")
        moto.client("secretsmanager").create_secret(Name=f"async-task/{value[:12]}", SecretString=value)
        options = {"endpoint_url": proxy.url, "region": REGION, "timeout": 5.0}
        task = AWSSecretsManagerSecret(f"async-task/{value[:12]}", source_options=options)
        proxy.latency = 0.3
    else:
        fake: FakeSecretManager = request.getfixturevalue("gcp_fake")
        fake.set_secret(f"async-task-{value[:12]}", value, project="st-async")
        options = {"endpoint": fake.endpoint, "project": "st-async", "timeout": 5.0}
        task = GCPSecretManagerSecret(f"async-task-{value[:12]}", project="st-async", source_options=options)
        fake.delay("AccessSecretVersion", 0.3)

    async def both() -> tuple[Any, int, float, Any]:
        awaited, ticks, seconds = await ticks_while(task.arun())
        plain = task()  # called plainly from a coroutine: a sync call, as in a sync flow
        return awaited, ticks, seconds, plain

    awaited, ticks, seconds, plain = asyncio.run(both())
    assert isinstance(awaited, SecretValue)
    assert awaited.get_secret_value() == value
    assert plain.get_secret_value() == value
    assert seconds >= 0.3, "the request went through the 300 ms of latency"
    assert loop_went_on(ticks, seconds), (ticks, seconds)


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
            "loop went on": loop_went_on(ticks, seconds),
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
