"""Inside a Prefect run, a Secret block that is not there is asked for once per run.

Every ``aws_client()`` resolves ``AWS_CREDENTIALS`` through the chain, whose
default includes the prefect source inside a run: without a remembered
absence, each call made one API request for a missing ``aws-credentials``
block. These tests run flows against Prefect's real local API and count the
block requests Prefect's HTTP client sends (no timings: the benchmark in
``benchmarks/bench_clients.py`` measures the cost).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain, clients
from authchain.backends.env.source import EnvSource
from authchain.backends.prefect.source import PrefectSource
from authchain.clients import aws_client
from tests.servers.prefect_api import PrefectAPI

REGION = "us-east-1"


class BlockRequests:
    """Counts the requests Prefect's clients send for block documents, sync and async."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def for_block(self, block: str) -> int:
        return sum(1 for path in self.paths if block in path)


@pytest.fixture
def block_requests(prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockRequests]:
    import httpx

    counter = BlockRequests()
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def note(request: httpx.Request) -> None:
        if "block_document" in request.url.path:
            counter.paths.append(request.url.path)

    def counted_sync(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        note(request)
        return sync_send(self, request, **kwargs)

    async def counted_async(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        note(request)
        return await async_send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", counted_sync)
    monkeypatch.setattr(httpx.AsyncClient, "send", counted_async)
    clients.clear()
    yield counter
    clients.clear()


def _chain(prefix: str) -> Chain:
    # The documented default order (prefect, then env), with an empty environment:
    # nothing has AWS_CREDENTIALS unless the test creates the block.
    return Chain([PrefectSource(block_prefix=prefix), EnvSource(environ={})])


def _prefix() -> str:
    return f"t{secrets.token_hex(4)}-"


def _access_key(client: Any) -> str | None:
    credentials = client._request_signer._credentials
    return None if credentials is None else str(credentials.get_frozen_credentials().access_key)


def _save_credentials(block: str) -> str:
    """An ``aws-credentials``-shaped Secret block with a fresh made-up key id; returns the id."""
    from prefect.blocks.system import Secret

    key_id = "AKIA" + secrets.token_hex(8).upper()
    value = {"aws_access_key_id": key_id, "aws_secret_access_key": secrets.token_hex(20)}
    Secret(value=value).save(block, overwrite=True, _sync=True)
    return key_id


def _in_flow(body: Callable[[], Any]) -> Any:
    from prefect import flow

    @flow(name="negative-cache-" + secrets.token_hex(3))
    def run() -> Any:
        return body()

    return run()


@pytest.fixture(autouse=True)
def _no_ambient_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3's own default finds nothing, whichever test set AWS variables before (moto's)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


def test_second_and_later_aws_client_calls_in_a_run_ask_the_api_nothing(
    block_requests: BlockRequests,
) -> None:
    prefix = _prefix()
    chain = _chain(prefix)
    block = prefix + "aws-credentials"

    def body() -> list[int]:
        counts = []
        for _ in range(5):
            before = block_requests.for_block(block)
            aws_client("s3", region_name=REGION, chain=chain)
            counts.append(block_requests.for_block(block) - before)
        return counts

    counts = _in_flow(body)
    assert counts[0] >= 1  # the first call does ask (the test counts what it means to)
    assert counts[1:] == [0, 0, 0, 0]


def test_the_next_run_asks_again_and_finds_a_block_created_between_runs(
    block_requests: BlockRequests,
) -> None:
    prefix = _prefix()
    chain = _chain(prefix)
    block = prefix + "aws-credentials"

    first = _in_flow(lambda: _access_key(aws_client("s3", region_name=REGION, chain=chain)))
    assert first is None  # no block: the SDK's (here empty) default
    key_id = _save_credentials(block)
    before = block_requests.for_block(block)
    second = _in_flow(lambda: _access_key(aws_client("s3", region_name=REGION, chain=chain)))
    assert block_requests.for_block(block) > before
    assert second == key_id


@pytest.mark.parametrize("forget", ["invalidate", "clear_cache"])
def test_a_block_created_mid_run_is_found_after_invalidate(
    block_requests: BlockRequests, forget: str
) -> None:
    prefix = _prefix()
    chain = _chain(prefix)
    block = prefix + "aws-credentials"

    def body() -> tuple[str | None, str | None, str | None, str, int]:
        missing = _access_key(aws_client("s3", region_name=REGION, chain=chain))
        key_id = _save_credentials(block)
        before = block_requests.for_block(block)
        # Remembered for the run: one answer throughout, no switch half-way.
        still = _access_key(aws_client("s3", region_name=REGION, chain=chain))
        asked = block_requests.for_block(block) - before
        if forget == "invalidate":
            chain.invalidate("AWS_CREDENTIALS")
        else:
            chain.clear_cache()
        found = _access_key(aws_client("s3", region_name=REGION, chain=chain))
        return missing, still, found, key_id, asked

    missing, still, found, key_id, asked = _in_flow(body)
    assert missing is None
    assert still is None
    assert asked == 0
    assert found == key_id


def test_resolve_and_resolve_many_remember_the_absence_for_the_run(block_requests: BlockRequests) -> None:
    prefix = _prefix()
    name = "MISSING_" + secrets.token_hex(4).upper()
    chain = _chain(prefix)
    block = prefix + name.lower().replace("_", "-")

    def body() -> list[int]:
        counts = []
        for _ in range(3):
            before = block_requests.for_block(block)
            assert chain.resolve(name, default=None) is None
            assert chain.resolve_many([name], default=None)[name] is None
            counts.append(block_requests.for_block(block) - before)
        return counts

    counts = _in_flow(body)
    assert counts[0] >= 1
    assert counts[1:] == [0, 0]


def test_a_found_block_is_still_served_and_a_new_value_after_invalidate(
    block_requests: BlockRequests,
) -> None:
    """Only absences are run-scoped: a found value and its invalidation behave as before."""
    from prefect.blocks.system import Secret

    prefix = _prefix()
    chain = _chain(prefix)
    name = "TOKEN_" + secrets.token_hex(4).upper()
    block = prefix + name.lower().replace("_", "-")
    old, new = secrets.token_hex(16), secrets.token_hex(16)
    Secret(value=old).save(block, overwrite=True, _sync=True)

    def body() -> tuple[str, str, str]:
        first = chain.resolve(name).get_secret_value()
        Secret(value=new).save(block, overwrite=True, _sync=True)
        cached = chain.resolve(name).get_secret_value()
        chain.invalidate(name)
        return first, cached, chain.resolve(name).get_secret_value()

    assert _in_flow(body) == (old, old, new)


def test_with_the_cache_disabled_every_call_asks(block_requests: BlockRequests) -> None:
    prefix = _prefix()
    chain = Chain([PrefectSource(block_prefix=prefix), EnvSource(environ={})], cache_ttl=0)
    name = "MISSING_" + secrets.token_hex(4).upper()
    block = prefix + name.lower().replace("_", "-")

    def body() -> int:
        for _ in range(3):
            chain.resolve(name, default=None)
        return block_requests.for_block(block)

    assert _in_flow(body) >= 3
