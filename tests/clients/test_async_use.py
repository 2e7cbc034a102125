"""Client factories from async code: ``await asyncio.to_thread(factory, ...)`` builds off the
loop (boto3's import and client build take ~200 ms), concurrent first builds give one client,
and the client works against moto's real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from authchain import Chain
from authchain.backends.env.source import EnvSource
from authchain.clients import aws_client, clear
from authchain.testing import canary
from tests.servers.moto_server import REGION, MotoServer


@pytest.fixture(autouse=True)
def _fresh_client_cache() -> Iterator[None]:
    clear()
    yield
    clear()


def test_concurrent_first_builds_from_coroutines_share_one_client(moto: MotoServer) -> None:
    keys = moto.iam_user(["ssm:*"])
    moto.enforce_iam()
    credentials = {
        "ACCESS_KEY": keys["aws_access_key_id"],
        "SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
    }
    # The factory finds AWS_CREDENTIALS through the chain, in the worker thread.
    chain = Chain([EnvSource(environ={"AWS_CREDENTIALS": json.dumps(credentials)})])

    def build() -> Any:
        return aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=chain)

    async def scenario() -> tuple[list[Any], int]:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                await asyncio.sleep(0.005)
                ticks += 1

        beat = asyncio.ensure_future(ticker())
        clients = await asyncio.gather(*(asyncio.to_thread(build) for _ in range(8)))
        done = True
        await beat
        return list(clients), ticks

    clients, ticks = asyncio.run(scenario())
    assert all(client is clients[0] for client in clients), "one client for eight concurrent first builds"
    assert ticks >= 2, "the loop went on while the clients were built"
    name, value = f"/clients/{canary('p')}", canary()
    clients[0].put_parameter(Name=name, Value=value, Type="String")
    assert clients[0].get_parameter(Name=name)["Parameter"]["Value"] == value, "it works against moto"
