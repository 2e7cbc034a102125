"""The faults of test_faults.py, for ``azure-kv``: each has its documented outcome, in bounded time.

Key Vault speaks HTTPS, so the counting TCP proxy in front of the fake vault
cannot answer an HTTP status itself (it sees only TLS records): status faults
(500, 503, 429) are answered by the fake vault, and the proxy does what a
server cannot be told to do (reset the connection, accept a request and never
answer, die). The Entra authority is asked directly, not through the proxy:
the faults are about the vault's reads. Requests are counted at the fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from authchain import BackendError
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.hardening.conftest import Backend, make_backend
from tests.hardening.test_faults import RETRIES, TIMEOUT, _killed_midway, dead_port, later_source
from tests.servers.proxy import TCPProxy

pytest.importorskip("azure.keyvault.secrets", reason="needs the azure extra")

pytestmark = pytest.mark.timeout(90)


def proxied(request: pytest.FixtureRequest, **settings: Any) -> tuple[Backend, TCPProxy]:
    """The azure-kv backend whose vault requests go through a proxy we can break."""
    start: Callable[[tuple[str, int]], TCPProxy] = request.getfixturevalue("tcp_proxy")
    fake = request.getfixturevalue("azure_vault")
    proxy = start(("127.0.0.1", fake.port))
    settings.setdefault("timeout", TIMEOUT)
    backend = make_backend("azure-kv", request, vault_url=f"https://127.0.0.1:{proxy.port}", **settings)
    return backend, proxy


@dataclass(frozen=True)
class Fault:
    name: str
    arm: Callable[[Backend, TCPProxy], None]
    retryable: bool = True
    counted: bool = True
    """Whether each attempt reaches the fake (and is counted there)."""


def _status(status: int, retry_after: float | None = None) -> Callable[[Backend, TCPProxy], None]:
    def arm(backend: Backend, proxy: TCPProxy) -> None:
        backend.extras["fake"].fail(status, times=1000, retry_after=retry_after)

    return arm


def _proxy(mode: str) -> Callable[[Backend, TCPProxy], None]:
    def arm(backend: Backend, proxy: TCPProxy) -> None:
        proxy.fail(mode)  # type: ignore[arg-type]

    return arm


def heal(backend: Backend, proxy: TCPProxy) -> None:
    proxy.heal()
    with backend.extras["fake"]._lock:
        backend.extras["fake"]._faults.clear()


FAULTS = [
    Fault("500", _status(500)),
    Fault("503", _status(503)),
    Fault("429 with Retry-After", _status(429, retry_after=0.05)),
    Fault("reset", _proxy("reset"), counted=False),
    Fault("hang", _proxy("hang"), counted=False),
    Fault("400", _status(400), retryable=False),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_fault_outcome_attempts_time_fallthrough_and_cache(
    fault: Fault, request: pytest.FixtureRequest
) -> None:
    backend, proxy = proxied(request)
    value = canary()
    backend.put("TOKEN", value)
    later = later_source()
    chain = backend.chain(later.source, cache_ttl=60, retries=RETRIES, backoff=0.01)
    chain.check()  # the challenge and the token first: the fault is about the read
    fault.arm(backend, proxy)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    elapsed = time.monotonic() - started
    error = caught.value
    attempts = RETRIES + 1 if fault.retryable else 1
    assert error.retryable is fault.retryable
    assert not error.access_denied
    assert error.source == backend.source.name
    assert "TOKEN" in error.message, "the message names the key"
    if fault.retryable:
        assert f"after {attempts} attempts" in error.message
    if fault.counted:
        assert backend.calls("TOKEN") == attempts, "requests that reached the server"
    assert elapsed < attempts * TIMEOUT + 2.0, "bounded by timeout x attempts + backoff"
    assert later.asked == 0, "no silent fallthrough to a later source"
    assert_not_leaked(value, str(error), "the error")

    heal(backend, proxy)
    before = backend.calls("TOKEN")
    assert chain.resolve("TOKEN").get_secret_value() == value, "the error was not cached"
    assert backend.calls("TOKEN") == before + 1
    assert chain.resolve("TOKEN").get_secret_value() == value
    assert backend.calls("TOKEN") == before + 1, "the value is cached"

    backend.source.on_error = "skip"
    skipping = backend.chain(later.source, cache_ttl=60, retries=0)
    fault.arm(backend, proxy)
    try:
        assert skipping.resolve("TOKEN").get_secret_value() == later.value, "skip moves on"
        explanation = skipping.explain("TOKEN")
    finally:
        heal(backend, proxy)
    line = explanation.attempts[1]
    assert (line.source, line.outcome) == (backend.source.name, "error")
    assert explanation.winner is not None
    assert explanation.winner.source == "later"


def test_five_hundreds_then_success_is_the_value(request: pytest.FixtureRequest) -> None:
    backend, _ = proxied(request)
    value = canary()
    backend.put("TOKEN", value)
    chain = backend.chain(cache_ttl=0, retries=RETRIES, backoff=0.01)
    chain.check()
    backend.extras["fake"].fail(503, times=RETRIES)
    assert chain.resolve("TOKEN").get_secret_value() == value
    assert backend.calls("TOKEN") == RETRIES + 1


def test_connection_refused_is_a_retryable_error_in_bounded_time(request: pytest.FixtureRequest) -> None:
    backend = make_backend("azure-kv", request, timeout=TIMEOUT, vault_url=f"https://127.0.0.1:{dead_port()}")
    later = later_source()
    chain = backend.chain(later.source, retries=RETRIES, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert time.monotonic() - started < 3.0
    assert caught.value.retryable
    assert f"after {RETRIES + 1} attempts" in str(caught.value)
    assert later.asked == 0
    assert chain.check()[0].status == "unreachable"


def test_vault_killed_during_resolve_many(request: pytest.FixtureRequest) -> None:
    backend, proxy = proxied(request)
    names = [f"N{number}" for number in range(24)]
    for name in names:
        backend.put(name, canary())
    chain = backend.chain(retries=RETRIES, backoff=0.01)
    chain.check()
    backend.extras["fake"].latency = 0.05
    error, elapsed = _killed_midway(
        chain, names, lambda: backend.calls("N0") + backend.calls("N1") >= 1, proxy.stop
    )
    assert isinstance(error, BackendError)
    assert error.retryable
    assert error.source == backend.source.name
    assert elapsed < 5.0


def test_deadline_bounds_a_vault_that_never_answers(request: pytest.FixtureRequest) -> None:
    backend, proxy = proxied(request, timeout=0.4)
    backend.put("TOKEN", canary())
    chain = backend.chain(retries=50, backoff=0.05, deadline=1.0)
    chain.check()
    proxy.fail("hang")
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    elapsed = time.monotonic() - started
    proxy.heal()
    assert elapsed < 1.0 + 1.5, f"the 1s deadline held ({elapsed:.2f}s)"
    assert caught.value.retryable
    assert "deadline" in str(caught.value)


def test_deadline_bounds_a_slow_vault(request: pytest.FixtureRequest) -> None:
    """Slower than the deadline on every request: each request's timeout is cut to what is left."""
    backend, _ = proxied(request, timeout=5.0)
    backend.put("TOKEN", canary())
    chain = backend.chain(retries=5, backoff=0.05, deadline=1.0)
    chain.check()
    backend.extras["fake"].latency = 3.0
    started = time.monotonic()
    with pytest.raises(BackendError, match="deadline"):
        chain.resolve("TOKEN")
    assert time.monotonic() - started < 1.0 + 1.5


def test_deadline_stops_retries_and_backoff_of_fast_failures(request: pytest.FixtureRequest) -> None:
    backend, proxy = proxied(request)
    chain = backend.chain(retries=100, backoff=0.2, deadline=0.8)
    chain.check()
    proxy.fail("reset")
    started = time.monotonic()
    with pytest.raises(BackendError, match="deadline") as caught:
        chain.resolve("TOKEN")
    assert time.monotonic() - started < 0.8 + 1.0, "not 100 retries with backoff"
    assert caught.value.retryable
    proxy.heal()
