"""A credential cycle split across two threads is a ``ConfigError`` naming it, never a hang.

``[sources.vault] token = "aws-sm://..."`` and ``[sources.sm] credentials =
"vault://..."``: each store's credential is kept in the other. One thread alone
finds the cycle (tests/hardening/test_same_kind_credentials.py). Two threads
warming the two stores at once used to wait for each other: thread 1 led the
fetch of the AWS keys from Vault and, to log in to Vault, waited for the fetch
of the Vault token from AWS; thread 2 led that one and, to sign it, waited for
the fetch thread 1 led. With no deadline they waited for ever; with one, both
failed only when it passed, saying a fetch was "still being fetched". Now the
single flight sees the two waits close a loop and the thread that closes it
raises the cycle, which its flight hands to the other.

The servers are real (OpenBao, moto) though no request reaches them: no
credential is ever read, because every way to read one needs the other.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain
from authchain.errors import ConfigError
from authchain.sources.base import Source
from tests._waiting import wait_for
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.openbao import OpenBao

BOUND = 20.0  # seconds a cycle may take to be reported on a loaded 2-core machine


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ambient Vault token or AWS identity: a credential comes from the chain or not at all."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("VAULT_TOKEN", "VAULT_ADDR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def crossed_chain(
    openbao: OpenBao, moto: MotoServer, work: Path, *, deadline: float = 0
) -> tuple[Chain, str, str]:
    """Vault's token lives in aws-sm, aws-sm's keys in Vault; returns the chain and both references."""
    tag = secrets.token_hex(5)
    token_ref, keys_ref = f"aws-sm://cycle-{tag}/vault-token", f"vault://secret/cycle-{tag}/aws#keys"
    path = work / "authchain.toml"
    path.write_text(
        f"""
order = ["vault", "sm", "env"]
deadline = {deadline}
[sources.vault]
type = "vault"
url = "{openbao.url}"
token = "{token_ref}"
[sources.sm]
type = "aws-sm"
endpoint_url = "{moto.url}"
region = "{REGION}"
credentials = "{keys_ref}"
[sources.env]
type = "env"
"""
    )
    return Chain.from_config(path), token_ref, keys_ref


def both_at_once(chain: Chain, refs: list[str]) -> dict[str, BaseException | str]:
    """Resolve ``refs`` from one thread each, started together; what each ended with.

    The threads are daemons and the wait is bounded: a deadlock fails the test
    instead of hanging the suite.
    """
    start = threading.Barrier(len(refs))
    outcomes: dict[str, BaseException | str] = {}

    def read(ref: str) -> None:
        start.wait(BOUND)
        try:
            outcomes[ref] = chain.resolve(ref).get_secret_value()
        except BaseException as error:
            outcomes[ref] = error

    for ref in refs:
        threading.Thread(target=read, args=(ref,), daemon=True).start()
    return wait_for(
        lambda: dict(outcomes),
        until=lambda seen: len(seen) == len(refs),
        timeout=BOUND,
        what="both threads to finish (they deadlocked otherwise)",
    )


def meet_before_resolving_credentials(sources: list[Source]) -> None:
    """Each source's first credential lookup waits until every source has started its own.

    Both threads then lead the fetch they were asked for before either asks for the
    other's: the interleaving that used to deadlock, made certain. Only the order
    of events changes; each lookup then runs as it would.
    """
    meet = threading.Barrier(len(sources))
    for source in sources:
        original: Callable[..., Any] = source.resolve_credential
        first = [True]

        def resolve_credential(
            name: Any, *, _original: Callable[..., Any] = original, _first: list[bool] = first, **kw: Any
        ) -> Any:
            if _first[0]:
                _first[0] = False
                meet.wait(BOUND)
            return _original(name, **kw)

        source.resolve_credential = resolve_credential  # type: ignore[method-assign]


def assert_named_cycle(error: BaseException | str, token_ref: str, keys_ref: str) -> None:
    assert isinstance(error, ConfigError), f"expected the cycle as a ConfigError, got {error!r}"
    message = str(error)
    assert "credential cycle" in message
    for named in ("vault needs", "sm (aws-sm) needs", token_ref, keys_ref):
        assert named in message


@pytest.mark.parametrize("deadline", [0, 30])
def test_two_threads_each_leading_half_of_a_cycle_raise_it(
    openbao: OpenBao, moto: MotoServer, isolated: Path, deadline: float
) -> None:
    """Forced: each thread leads one fetch, then needs the one the other leads. Without a
    deadline this hung for ever; with one, it failed only when the deadline passed."""
    chain, token_ref, keys_ref = crossed_chain(openbao, moto, isolated, deadline=deadline)
    meet_before_resolving_credentials([chain.source("vault"), chain.source("sm")])
    outcomes = both_at_once(chain, [keys_ref, token_ref])
    try:
        for outcome in outcomes.values():
            assert_named_cycle(outcome, token_ref, keys_ref)
            assert "still being fetched" not in str(outcome)
    finally:
        chain.close()


@pytest.mark.parametrize("attempt", range(10))
@pytest.mark.usefixtures("fine_grained_switching")
def test_any_interleaving_of_the_two_threads_raises_the_cycle(
    openbao: OpenBao, moto: MotoServer, isolated: Path, attempt: int
) -> None:
    """Unforced, with the GIL switching every microsecond: whichever thread gets how far
    first, both end with the cycle (found in one thread, or across the two)."""
    chain, token_ref, keys_ref = crossed_chain(openbao, moto, isolated)
    try:
        outcomes = both_at_once(chain, [keys_ref, token_ref])
        for outcome in outcomes.values():
            assert_named_cycle(outcome, token_ref, keys_ref)
    finally:
        chain.close()
