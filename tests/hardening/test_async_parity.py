"""``aresolve`` and ``aexplain`` answer as ``resolve`` and ``explain`` do, outcome by outcome,
against the real servers (OpenBao, moto, the GCP fake; faults from the counting proxy and the
fake, as in test_faults.py).

Where sync and async can be compared, a test makes the same lookup through the sync verb and
the awaited one, on two chains over the same source, and compares what users see: the value,
the error (type, flags, message), the requests that reached the server, and the ``explain``
table. Then what only async code can do wrong: a cancelled caller must not leave a half-filled
cache entry or a remembered answer.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

import authchain
from authchain import BackendError, Chain, SecretNotFound
from authchain.backends.env.source import EnvSource
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests._waiting import wait_for
from tests.hardening.conftest import Backend, make_backend
from tests.hardening.test_faults import FAULTS, _denied, later_source, proxied

pytestmark = pytest.mark.timeout(120)

KINDS = ["vault", "aws-sm", "gcp-sm"]


def both_errors(sync_chain: Chain, async_chain: Chain, name: str) -> tuple[BackendError, BackendError]:
    with pytest.raises(BackendError) as in_sync:
        sync_chain.resolve(name)
    with pytest.raises(BackendError) as in_async:
        asyncio.run(async_chain.aresolve(name))
    return in_sync.value, in_async.value


def same_error(left: BackendError, right: BackendError) -> None:
    assert type(left) is type(right)
    assert (left.source, left.retryable, left.access_denied) == (
        right.source,
        right.retryable,
        right.access_denied,
    )
    assert str(left) == str(right), "the same message, naming the same source, key and attempts"


@pytest.mark.parametrize("kind", KINDS)
def test_access_denied_is_raised_unretried_as_in_sync(kind: str, request: pytest.FixtureRequest) -> None:
    backend = _denied(kind, request)
    value = canary()
    backend.put("TOKEN", value)
    if kind == "aws-sm":
        backend.extras["moto"].enforce_iam(True)
    later = later_source()
    sync_chain = backend.chain(later.source, retries=5, backoff=0.01)
    async_chain = backend.chain(later.source, retries=5, backoff=0.01)
    in_sync, in_async = both_errors(sync_chain, async_chain, "TOKEN")
    same_error(in_sync, in_async)
    assert in_async.access_denied
    assert backend.calls("TOKEN") == 2, "one request each: access denied is never retried"
    assert later.asked == 0, "no silent fallthrough"
    assert_not_leaked(value, str(in_async), "the async error")
    assert str(asyncio.run(async_chain.aexplain("TOKEN"))) == str(sync_chain.explain("TOKEN"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_retryable_fault_is_retried_raised_or_skipped_as_in_sync(
    kind: str, request: pytest.FixtureRequest
) -> None:
    backend, proxy = proxied(kind, request)
    value = canary()
    backend.put("TOKEN", value)
    later = later_source()
    fault = FAULTS[kind][0]  # a 500 from Vault and AWS, UNAVAILABLE from gRPC
    assert fault.retryable
    assert fault.counted
    sync_chain = backend.chain(later.source, cache_ttl=60, retries=2, backoff=0.01)
    async_chain = backend.chain(later.source, cache_ttl=60, retries=2, backoff=0.01)
    if kind == "vault":
        sync_chain.check()  # log in first: the fault is about the read
    fault.arm(backend, proxy)
    try:
        in_sync, in_async = both_errors(sync_chain, async_chain, "TOKEN")
        assert later.asked == 0, "no silent fallthrough"
        explained = str(sync_chain.explain("TOKEN")), str(asyncio.run(async_chain.aexplain("TOKEN")))
    finally:
        fault.heal(backend, proxy)
    same_error(in_sync, in_async)
    assert "after 3 attempts" in str(in_async)
    assert backend.calls("TOKEN") == 3 * 4, "three attempts for each of resolve, aresolve, explain, aexplain"
    assert explained[0] == explained[1]
    assert asyncio.run(async_chain.aresolve("TOKEN")).get_secret_value() == value, "the error was not cached"

    backend.source.on_error = "skip"
    sync_skipping = backend.chain(later.source, retries=0)
    async_skipping = backend.chain(later.source, retries=0)
    fault.arm(backend, proxy)
    try:
        assert asyncio.run(async_skipping.aresolve("TOKEN")).get_secret_value() == later.value, (
            "skip moves on"
        )
        assert sync_skipping.resolve("TOKEN").get_secret_value() == later.value
        assert str(asyncio.run(async_skipping.aexplain("TOKEN"))) == str(sync_skipping.explain("TOKEN"))
    finally:
        fault.heal(backend, proxy)
        backend.source.on_error = "raise"


def test_order_trail_and_shadowing_across_three_stores_as_in_sync(request: pytest.FixtureRequest) -> None:
    """Vault (missing), then AWS SM (has it), then GCP and the environment (shadowed)."""
    vault, aws, gcp = (make_backend(kind, request) for kind in KINDS)
    first, second, third = canary(), canary(), canary()
    aws.put("ORDERED", first)
    gcp.put("ORDERED", second)
    environ = {"ORDERED": third, **vault.creds}

    def chain() -> Chain:
        return Chain([vault.source, aws.source, gcp.source, EnvSource(environ=environ, name="env")])

    sync_chain, async_chain = chain(), chain()
    explained_async = asyncio.run(async_chain.aexplain("ORDERED"))
    explained_sync = sync_chain.explain("ORDERED")
    assert str(explained_async) == str(explained_sync)
    assert explained_async.winner is not None
    assert explained_async.winner.source == "aws-sm"
    assert [attempt.source for attempt in explained_async.shadowed] == ["gcp-sm", "env"]
    for text in (first, second, third):
        assert_not_leaked(text, str(explained_async), "the explain table")
    assert asyncio.run(async_chain.aresolve("ORDERED")).get_secret_value() == first
    assert asyncio.run(async_chain.aexplain("ORDERED")).from_cache, "aexplain sees the cache, as explain does"
    with pytest.raises(SecretNotFound) as in_sync:
        sync_chain.resolve("NOWHERE_AT_ALL")
    with pytest.raises(SecretNotFound) as in_async:
        asyncio.run(async_chain.aresolve("NOWHERE_AT_ALL"))
    assert str(in_async.value) == str(in_sync.value), "every source asked, in order, the same trail"


@pytest.mark.parametrize("kind", KINDS)
def test_negative_ttl_and_stale_if_error_apply_to_aresolve(
    kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    backend, proxy = proxied(kind, request)
    now = [0.0]
    chain = backend.chain(cache_ttl=10, negative_ttl=30, stale_if_error=100, retries=0, clock=lambda: now[0])
    if kind == "vault":
        chain.check()
    assert asyncio.run(chain.aresolve("ARRIVES", default=None)) is None
    arrived = canary()
    backend.put("ARRIVES", arrived)
    assert asyncio.run(chain.aresolve("ARRIVES", default=None)) is None, "'not found' is remembered"
    assert backend.calls("ARRIVES") == 1
    now[0] = 31.0
    assert asyncio.run(chain.aresolve("ARRIVES")).get_secret_value() == arrived
    assert backend.calls("ARRIVES") == 2

    value = canary()
    backend.put("STALE", value)
    assert asyncio.run(chain.aresolve("STALE")).get_secret_value() == value
    now[0] += 20.0  # past cache_ttl, inside stale_if_error
    fault = FAULTS[kind][0]
    fault.arm(backend, proxy)
    try:
        with caplog.at_level(logging.WARNING, logger="authchain"):
            served = asyncio.run(chain.aresolve("STALE"))
    finally:
        fault.heal(backend, proxy)
    assert served.get_secret_value() == value, "the cached value, served while its refresh fails"
    assert backend.calls("STALE") == 2, "the refresh was tried"
    assert any("STALE" in record.getMessage() for record in caplog.records), "and said so in the log"
    assert_not_leaked(value, caplog.text, "the warning")


@pytest.mark.parametrize("kind", KINDS)
def test_debug_logs_of_the_sdks_during_aresolve_are_masked(
    kind: str, request: pytest.FixtureRequest, debug_sdk_logging: list[logging.LogRecord]
) -> None:
    """The SDK log records made in the pool's threads wait for the value's registration, as in sync."""
    authchain.install_log_masking()
    backend = make_backend(kind, request)
    value = canary()
    backend.put("TOKEN", value)
    backend.put("JSON", json.dumps({"password": value}))
    debug_sdk_logging.clear()
    chain = backend.chain(cache_ttl=0)
    assert asyncio.run(chain.aresolve("TOKEN")).get_secret_value() == value
    assert asyncio.run(chain.aresolve_many(["JSON"]))["JSON"].json() == {"password": value}
    asyncio.run(chain.aexplain("TOKEN"))
    assert debug_sdk_logging, "debug logging was on"
    if kind == "aws-sm":
        assert any(record.name == "botocore.parsers" for record in debug_sdk_logging), "bodies were logged"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in debug_sdk_logging:
        assert_not_leaked(value, formatter.format(record), f"a {record.levelname} record of {record.name}")


# -- cancellation: nothing half-filled ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancelled_fetch_that_then_fails_leaves_nothing_cached(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """The only waiter is cancelled while its fetch hangs; the fetch then fails in its thread
    (for Vault, whose fetch ran on the stopped loop: in the thread that took it over).

    Nothing may be cached (no entry, no remembered answer), and the next lookup asks the
    server again and gets the value.
    """
    backend, proxy = proxied(kind, request)
    value = canary()
    backend.put("HUNG", value)
    chain = backend.chain(cache_ttl=60, retries=0)
    if kind == "vault":
        chain.check()
    proxy.fail("hang")
    if kind == "gcp-sm":  # gRPC is not HTTP/1: the proxy counts its connections, not requests
        proxy.connections = 0
        reached = lambda: proxy.connections  # noqa: E731
    else:
        before = proxy.count()  # chain.check()'s requests went through already
        reached = lambda: proxy.count() > before  # noqa: E731

    async def cancel_while_hung() -> None:
        task = asyncio.ensure_future(chain.aresolve("HUNG"))
        await asyncio.to_thread(wait_for, reached, what="the request to reach the hanging proxy", timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    flights = chain._cache._flights._calls
    try:
        asyncio.run(cancel_while_hung())
        if backend.source.has_native_async():
            # Vault's fetch ran on the loop; the loop stopped under it, so a thread took it
            # over with a request of its own, which hangs too until the source's timeout.
            wait_for(lambda: not flights, what="the handed-over fetch to fail", timeout=15)
    finally:
        proxy.heal()  # a hung connection is closed: a fetch still under way fails in its thread
    wait_for(lambda: not flights, what="the abandoned fetch to settle", timeout=15)
    source, key = backend.source, backend.source.key_for("HUNG")
    assert chain._cache.hit(source, key) is None, "a failed fetch leaves no entry"
    assert chain._cache.answer("HUNG") is None, "nor a remembered answer"
    if kind == "gcp-sm":
        from tests.hardening.test_faults import wait_for_grpc

        backend.put("TOKEN", canary())
        wait_for_grpc(backend)  # gRPC's reconnect backoff after the closed connection
    assert asyncio.run(chain.aresolve("HUNG")).get_secret_value() == value


def test_a_walk_cancelled_between_sources_remembers_no_answer(request: pytest.FixtureRequest) -> None:
    """Cancelled while the second store is asked, after the first said "not found": the first's
    answer is kept (it was whole), but no answer for the name is remembered, and the next
    lookup walks again and finds the value."""
    from tests.chain.test_async import slow_backend

    first = make_backend("gcp-sm", request)
    slow = slow_backend("vault", request, 0.3)
    value = canary()
    slow.put("WALKED", value)
    chain = Chain(
        [first.source, slow.source, EnvSource(environ=dict(slow.creds), name="creds")], cache_ttl=60
    )

    async def cancel_mid_walk() -> None:
        task = asyncio.ensure_future(chain.aresolve("WALKED"))
        await asyncio.to_thread(
            wait_for, lambda: first.calls("WALKED"), what="the first store to be asked", timeout=10
        )
        flights = chain._cache._flights._calls
        await asyncio.to_thread(  # the Vault read is under way behind its 300 ms
            wait_for,
            lambda: any(key[0] == slow.source.name for key in list(flights)),
            what="the Vault read to start",
            timeout=10,
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_mid_walk())
    assert chain._cache.answer("WALKED") is None, "a walk that did not end remembers nothing"
    wait_for(lambda: not chain._cache._flights._calls, what="the Vault read to settle", timeout=15)
    # The Vault read ran on the loop asyncio.run stopped: a thread took it over with a request
    # of its own (after the loop's, if that had gone out); the one that landed whole was cached.
    proxy = slow.extras["proxy"]
    sent = proxy.count(lambda asked: asked.target.endswith("/WALKED"))
    assert sent in (1, 2)
    got = asyncio.run(chain.aresolve("WALKED"))
    assert got.get_secret_value() == value
    assert first.calls("WALKED") == 2, "the first store's 'not found' is not remembered (negative_ttl 0)"
    assert proxy.count(lambda asked: asked.target.endswith("/WALKED")) == sent, "served from the cache"
    wait_for(lambda: slow.calls("WALKED"), until=lambda calls: calls == sent, what="each request read")


def test_cancelling_aresolve_many_and_aexplain_leaves_their_fetches_to_the_cache(
    request: pytest.FixtureRequest,
) -> None:
    from tests.chain.test_async import slow_backend

    backend: Backend = slow_backend("aws-sm", request, 0.3)
    values = {f"M{number}": canary() for number in range(3)}
    for name, value in values.items():
        backend.put(name, value)
    chain = backend.chain(cache_ttl=60)

    async def cancel_both() -> None:
        many = asyncio.ensure_future(chain.aresolve_many(list(values)))
        explained = asyncio.ensure_future(chain.aexplain("M0"))
        await asyncio.to_thread(  # fetches under way (behind 300 ms), so the cancel is what is tested
            wait_for, lambda: chain._cache._flights._calls, what="the reads to start", timeout=10
        )
        for task in (many, explained):
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(cancel_both())
    wait_for(lambda: not chain._cache._flights._calls, what="the abandoned fetches to settle", timeout=15)
    got = asyncio.run(chain.aresolve_many(list(values)))
    assert {name: got[name].get_secret_value() for name in values} == values
    assert all(backend.calls(name) == 1 for name in values), "served from what the cancelled calls fetched"
