"""Client factories from async code: ``await abuild(factory, ...)`` (and ``LazyClient.aget``)
build off the event loop, concurrent first builds give one client, and the clients work
against the real servers (moto, OpenBao, the GCP fake).

What must not happen on the loop: the SDK's import and client build (boto3: ~200 ms) and the
factory's credential lookup through the chain (here a Vault read behind 100 ms of latency).
Each test records the thread every factory call ran in; none may be the loop's.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from authchain import Chain
from authchain.backends.env.source import EnvSource
from authchain.backends.vault.source import VaultSource
from authchain.clients import (
    abuild,
    aws_client,
    clear,
    gcp_secret_manager_client,
    lazy,
    vault_client,
)
from authchain.testing import canary
from authchain.testing.gcp import FakeSecretManager
from tests.clients.test_gcp_keyring import made_up_service_account
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.openbao import OpenBao

pytestmark = pytest.mark.timeout(120)
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _fresh_client_cache() -> Iterator[None]:
    clear()
    yield
    clear()


class Recorded:
    """A factory that notes the thread of each call."""

    def __init__(self, factory: Callable[..., Any]) -> None:
        self.factory = factory
        self.threads: list[int] = []
        self.__name__ = getattr(factory, "__name__", "factory")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.get_ident())
        return self.factory(*args, **kwargs)


async def ticking(work: Awaitable[T], every: float = 0.005) -> tuple[T, int, int]:
    """``work``'s result, the ticks of a ``every``-second ticker meanwhile, and the loop's thread."""
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(every)
            ticks += 1

    beat = asyncio.ensure_future(ticker())
    try:
        result = await work
    finally:
        done = True
        await beat
    return result, ticks, threading.get_ident()


def test_concurrent_first_builds_share_one_client_and_leave_the_loop_free(
    moto: MotoServer, openbao: OpenBao, tcp_proxy: Any
) -> None:
    keys = moto.iam_user(["ssm:*"])
    moto.enforce_iam()
    credentials = {
        "ACCESS_KEY": keys["aws_access_key_id"],
        "SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
    }
    prefix = f"t/clients-async/{canary('p')}"
    openbao.put(f"{prefix}/AWS_CREDENTIALS", {"AWS_CREDENTIALS": json.dumps(credentials)})
    host, port = openbao.url.removeprefix("http://").split(":")
    slow = tcp_proxy((host, int(port)))
    slow.latency = 0.1
    # The factory finds AWS_CREDENTIALS in Vault, 100 ms away: a lookup that must not
    # run on the loop either.
    chain = Chain(
        [
            VaultSource(url=slow.url, path_prefix=prefix, timeout=5.0),
            EnvSource(environ={"VAULT_TOKEN": openbao.tokens["reader"]}, name="creds"),
        ],
        cache_ttl=60,
    )
    factory = Recorded(aws_client)

    async def scenario() -> tuple[list[Any], int, int]:
        work = asyncio.gather(
            *(
                abuild(factory, "ssm", endpoint_url=moto.url, region_name=REGION, chain=chain)
                for _ in range(8)
            )
        )
        clients, ticks, loop_thread = await ticking(work)
        return list(clients), ticks, loop_thread

    clients, ticks, loop_thread = asyncio.run(scenario())
    assert all(client is clients[0] for client in clients), "one client for eight concurrent first builds"
    assert len(factory.threads) == 8
    assert loop_thread not in factory.threads, "no factory call ran on the event loop"
    # The Vault read alone takes 100 ms: a loop blocked by it would count no tick meanwhile.
    assert ticks >= 5, "the loop went on while the client was built"
    assert slow.count() >= 1, "the credentials came from Vault, through the chain"
    name, value = f"/clients/{canary('p')}", canary()
    clients[0].put_parameter(Name=name, Value=value, Type="String")
    assert clients[0].get_parameter(Name=name)["Parameter"]["Value"] == value, "it works against moto"
    assert aws_client("ssm", endpoint_url=moto.url, region_name=REGION, chain=chain) is clients[0], (
        "the sync call gets the client the async one built"
    )


def test_vault_client_and_lazy_client_from_async_code(openbao: OpenBao) -> None:
    path = f"t/clients-async/{canary('v')}"
    value = canary()
    openbao.put(path, {"value": value})
    chain = Chain([EnvSource(environ={"VAULT_TOKEN": openbao.tokens["reader"]})], cache_ttl=60)
    factory = Recorded(vault_client)
    deferred = lazy(vault_client, url=openbao.url, chain=chain)

    async def scenario() -> tuple[Any, Any, int]:
        built, _, loop_thread = await ticking(abuild(factory, url=openbao.url, chain=chain))
        later = await deferred.aget()
        return built, later, loop_thread

    client, later, loop_thread = asyncio.run(scenario())
    assert loop_thread not in factory.threads
    read = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    assert read["data"]["data"]["value"] == value, "a logged-in client, against OpenBao"
    assert later is client, "LazyClient.aget gets the same cached client"


def test_gcp_client_from_async_code(gcp_fake: FakeSecretManager) -> None:
    value = canary()
    gcp_fake.set_secret("clients-async", value, project="clients-project")
    chain = Chain(
        [EnvSource(environ={"GCP_CREDENTIALS": json.dumps(made_up_service_account())})], cache_ttl=0
    )
    factory = Recorded(gcp_secret_manager_client)

    async def scenario() -> tuple[Any, int]:
        client, _, loop_thread = await ticking(abuild(factory, endpoint=gcp_fake.endpoint, chain=chain))
        return client, loop_thread

    client, loop_thread = asyncio.run(scenario())
    assert loop_thread not in factory.threads
    response = client.access_secret_version(
        name="projects/clients-project/secrets/clients-async/versions/latest", retry=None, timeout=5
    )
    assert response.payload.data.decode() == value


def test_a_cancelled_build_still_caches_its_client(moto: MotoServer) -> None:
    chain = Chain([EnvSource(environ={})], cache_ttl=0)
    started = threading.Event()
    release = threading.Event()

    def slow_factory(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(10)
        return aws_client(*args, **kwargs)

    arguments: dict[str, Any] = {
        "endpoint_url": moto.url,
        "region_name": REGION,
        "credentials": {"ACCESS_KEY": "AKIDEXAMPLE", "SECRET_ACCESS_KEY": canary()},
        "chain": chain,
    }

    async def scenario() -> None:
        task = asyncio.ensure_future(abuild(slow_factory, "sts", **arguments))
        assert await asyncio.to_thread(started.wait, 10), "the build started"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()

    from authchain.clients._base import CACHE

    assert not CACHE, "nothing cached before the build"
    asyncio.run(scenario())  # asyncio.run waits for the default executor's threads

    built = len(CACHE)
    assert built >= 1, "the build went on after its caller was cancelled, and was cached"
    aws_client("sts", **arguments)
    assert len(CACHE) == built, "the sync call got the client the cancelled build made"
