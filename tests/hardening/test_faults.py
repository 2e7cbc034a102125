"""Faults against the real servers: each has a documented outcome, in bounded time.

OpenBao, moto and the gRPC Secret Manager fake answer for real; the counting
TCP proxy in front of them injects what a server cannot be told to do (500,
503, throttling, resets, a connection that is accepted and never answered),
and the GCP fake injects gRPC status codes itself. For every fault the tests
check: the outcome (``BackendError`` retried or not, access denied, not
found), how many requests reached the server, how long it took, that a
later source holding the same name is *not* asked (no silent fallthrough)
unless the failing source is ``on_error = "skip"``, and that the error was
not cached (after the fault heals, the next lookup asks the server again and
gets the value).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authchain import BackendError, Chain, ConfigError, SecretNotFound
from authchain.backends.env.source import EnvSource
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.hardening.conftest import REMOTE, Backend, CountingEnviron, make_backend, token
from tests.servers.proxy import TCPProxy

pytestmark = pytest.mark.timeout(90)

TIMEOUT = 0.5
RETRIES = 2


def dead_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proxied(kind: str, request: pytest.FixtureRequest, **settings: Any) -> tuple[Backend, TCPProxy]:
    """A backend whose every request goes through a counting proxy we can break."""
    settings.setdefault("timeout", TIMEOUT)
    if kind in ("aws-sm", "aws-ssm"):
        backend = make_backend(kind, request, **settings)
        return backend, backend.extras["proxy"]
    start: Callable[[tuple[str, int]], TCPProxy] = request.getfixturevalue("tcp_proxy")
    if kind == "vault":
        openbao = request.getfixturevalue("openbao")
        host, port = openbao.url.removeprefix("http://").split(":")
        proxy = start((host, int(port)))
        backend = make_backend(kind, request, url=proxy.url, **settings)
        path = f"/v1/secret/data/{backend.extras['prefix']}/"
        # Faults answered by the proxy never reach OpenBao: count at the proxy.
        backend.calls = lambda name: proxy.count(lambda r: r.method == "GET" and r.target == path + name)
        return backend, proxy
    fake = request.getfixturevalue("gcp_fake")
    proxy = start(("127.0.0.1", int(fake.port)))
    return make_backend(kind, request, endpoint=f"127.0.0.1:{proxy.port}", **settings), proxy


@dataclass
class Later:
    """A source after the failing one that holds the same name (it must not be asked)."""

    source: EnvSource
    environ: CountingEnviron
    value: str

    @property
    def asked(self) -> int:
        return self.environ.reads.count("TOKEN")


def later_source() -> Later:
    environ = CountingEnviron()
    value = canary("later")
    environ["TOKEN"] = value
    return Later(EnvSource(environ=environ, name="later"), environ, value)


# -- the faults ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    arm: Callable[[Backend, TCPProxy], None]
    heal: Callable[[Backend, TCPProxy], None]
    retryable: bool = True
    counted: bool = True
    """Whether the server-side count of requests sees each attempt."""


def _respond(status: int, body: dict[str, Any], content_type: str) -> Callable[[Backend, TCPProxy], None]:
    def arm(backend: Backend, proxy: TCPProxy) -> None:
        data = json.dumps(body).encode()
        headers = {"Content-Type": content_type}
        if "__type" in body:
            headers["x-amzn-ErrorType"] = str(body["__type"])
        proxy.fail("respond", status=status, body=data, headers=headers)

    return arm


def _heal_proxy(backend: Backend, proxy: TCPProxy) -> None:
    proxy.heal()


def _grpc(code: str) -> Callable[[Backend, TCPProxy], None]:
    def arm(backend: Backend, proxy: TCPProxy) -> None:
        import grpc

        backend.extras["fake"].fail("AccessSecretVersion", getattr(grpc.StatusCode, code))

    return arm


def _heal_fake(backend: Backend, proxy: TCPProxy) -> None:
    backend.extras["fake"].clear_faults()


def _proxy(mode: str) -> Callable[[Backend, TCPProxy], None]:
    def arm(backend: Backend, proxy: TCPProxy) -> None:
        proxy.fail(mode)  # type: ignore[arg-type]

    return arm


VAULT_JSON = "application/json"
AWS_JSON = "application/x-amz-json-1.1"
FAULTS: dict[str, list[Fault]] = {
    "vault": [
        Fault("500", _respond(500, {"errors": ["internal error"]}, VAULT_JSON), _heal_proxy),
        Fault("503 sealed", _respond(503, {"errors": ["Vault is sealed"]}, VAULT_JSON), _heal_proxy),
        Fault("429", _respond(429, {"errors": ["rate limit quota exceeded"]}, VAULT_JSON), _heal_proxy),
        Fault("reset", _proxy("reset"), _heal_proxy),
        Fault("hang", _proxy("hang"), _heal_proxy),
        Fault("not vault", _respond(200, {"hello": "world"}, "text/html"), _heal_proxy, retryable=False),
    ],
    "aws-sm": [
        Fault(
            "500", _respond(500, {"__type": "InternalServiceError", "message": "oops"}, AWS_JSON), _heal_proxy
        ),
        Fault(
            "503", _respond(503, {"__type": "ServiceUnavailable", "message": "down"}, AWS_JSON), _heal_proxy
        ),
        Fault(
            "throttled",
            _respond(400, {"__type": "ThrottlingException", "message": "Rate exceeded"}, AWS_JSON),
            _heal_proxy,
        ),
        Fault("reset", _proxy("reset"), _heal_proxy),
        Fault("hang", _proxy("hang"), _heal_proxy),
        Fault(
            "validation",
            _respond(400, {"__type": "ValidationException", "message": "bad"}, AWS_JSON),
            _heal_proxy,
            retryable=False,
        ),
    ],
    "gcp-sm": [
        Fault("UNAVAILABLE", _grpc("UNAVAILABLE"), _heal_fake),
        Fault("RESOURCE_EXHAUSTED", _grpc("RESOURCE_EXHAUSTED"), _heal_fake),
        Fault("INTERNAL", _grpc("INTERNAL"), _heal_fake, retryable=False),
        Fault("reset", _proxy("reset"), _heal_proxy, counted=False),
        Fault("hang", _proxy("hang"), _heal_proxy, counted=False),
    ],
}
FAULTS["aws-ssm"] = FAULTS["aws-sm"]
CASES = [(kind, fault) for kind in REMOTE for fault in FAULTS[kind]]


@pytest.mark.parametrize(("kind", "fault"), CASES, ids=[f"{kind}-{fault.name}" for kind, fault in CASES])
def test_fault_outcome_attempts_time_fallthrough_and_cache(
    kind: str, fault: Fault, request: pytest.FixtureRequest
) -> None:
    backend, proxy = proxied(kind, request)
    value = canary()
    backend.put("TOKEN", value)
    later = later_source()
    chain = backend.chain(later.source, cache_ttl=60, retries=RETRIES, backoff=0.01)
    if kind == "vault":
        chain.check()  # log in first: the fault is about the read, not the login
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
    assert str(error).startswith(f"{backend.source.name}: "), "the message names the source"
    assert "TOKEN" in error.message, "the message names the key"
    if fault.retryable:
        assert f"after {attempts} attempts" in error.message
    if fault.counted:
        assert backend.calls("TOKEN") == attempts, "requests that reached the server"
    assert elapsed < attempts * TIMEOUT + 2.0, "bounded by timeout x attempts + backoff"
    assert later.asked == 0, "no silent fallthrough to a later source"
    assert_not_leaked(value, str(error), "the error")

    fault.heal(backend, proxy)
    if kind == "gcp-sm":
        wait_for_grpc(backend)
    before = backend.calls("TOKEN")
    assert chain.resolve("TOKEN").get_secret_value() == value, "the error was not cached"
    if fault.counted:
        assert backend.calls("TOKEN") == before + 1
    assert chain.resolve("TOKEN").get_secret_value() == value
    if fault.counted:
        assert backend.calls("TOKEN") == before + 1, "the value is cached"

    backend.source.on_error = "skip"
    skipping = backend.chain(later.source, cache_ttl=60, retries=0)
    if kind == "vault":
        skipping.check()
    fault.arm(backend, proxy)
    try:
        assert skipping.resolve("TOKEN").get_secret_value() == later.value, "skip moves on"
        explanation = skipping.explain("TOKEN")
    finally:
        fault.heal(backend, proxy)
        backend.source.close()
    assert later.asked >= 1
    line = explanation.attempts[1]
    assert (line.source, line.outcome) == (backend.source.name, "error")
    assert explanation.winner is not None
    assert explanation.winner.source == "later"


def wait_for_grpc(backend: Backend) -> None:
    """gRPC waits out a reconnect backoff (about a second) after resets, in a subchannel
    it may share between channels: ask the source itself (not the chain, whose cache is
    under test) until the channel is back."""
    backend.source.close()
    give_up = time.monotonic() + 5
    while True:
        try:
            backend.source.get(backend.source.key_for("TOKEN"))
        except BackendError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)
        else:
            return


# -- connection refused ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", REMOTE)
def test_connection_refused_is_a_retryable_error_in_bounded_time(
    kind: str, request: pytest.FixtureRequest
) -> None:
    port = dead_port()
    where = {
        "vault": {"url": f"http://127.0.0.1:{port}"},
        "aws-sm": {"endpoint_url": f"http://127.0.0.1:{port}"},
        "aws-ssm": {"endpoint_url": f"http://127.0.0.1:{port}"},
        "gcp-sm": {"endpoint": f"127.0.0.1:{port}"},
    }[kind]
    backend = make_backend(kind, request, timeout=TIMEOUT, **where)
    later = later_source()
    chain = backend.chain(later.source, retries=RETRIES, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert time.monotonic() - started < 3.0
    assert caught.value.retryable
    assert f"after {RETRIES + 1} attempts" in str(caught.value)
    assert caught.value.source == backend.source.name
    assert later.asked == 0
    assert chain.check()[0].status == "unreachable"


# -- access denied ---------------------------------------------------------------------------


def _denied(kind: str, request: pytest.FixtureRequest) -> Backend:
    """A backend whose reads of ``TOKEN`` are refused by the server (IAM in moto, a policy in
    OpenBao, the Key Vault fake's denial)."""
    if kind == "vault":
        backend = make_backend(kind, request, timeout=TIMEOUT)
        openbao = backend.extras["server"]
        # The token may read elsewhere in secret/ (so the mount probe answers and the read
        # is made, and refused); a token that may use nothing in the mount is refused
        # before any read (tests/hardening/test_reads.py).
        root = openbao.client()
        root.sys.create_or_update_policy(
            "elsewhere", 'path "secret/data/elsewhere/*" { capabilities = ["read"] }'
        )
        backend.creds = {
            "VAULT_TOKEN": root.auth.token.create(policies=["elsewhere"])["auth"]["client_token"]
        }
        return backend
    if kind == "azure-kv":  # the fake's vault refuses the secret every test here reads
        backend = make_backend(kind, request, timeout=TIMEOUT)
        backend.extras["fake"].deny(backend.source.secret_name("TOKEN"))  # type: ignore[attr-defined]
        return backend
    if kind in ("aws-sm", "aws-ssm"):
        backend = make_backend(kind, request, timeout=TIMEOUT)
        moto = backend.extras["moto"]
        keys = moto.iam_user(["ssm:DescribeParameters"])  # nothing that reads
        backend.creds = {"AWS_CREDENTIALS": json.dumps(keys)}
        backend.source.credentials = "AWS_CREDENTIALS"  # type: ignore[attr-defined]
        request.addfinalizer(lambda: moto.enforce_iam(False))
        return backend
    backend = make_backend(kind, request, timeout=TIMEOUT)
    import grpc

    backend.extras["fake"].fail("AccessSecretVersion", grpc.StatusCode.PERMISSION_DENIED)
    return backend


@pytest.mark.parametrize("kind", [*REMOTE, "azure-kv"])
def test_access_denied_is_never_retried_and_names_source_and_key(
    kind: str, request: pytest.FixtureRequest
) -> None:
    backend = _denied(kind, request)
    value = canary()
    backend.put("TOKEN", value)
    if kind in ("aws-sm", "aws-ssm"):
        backend.extras["moto"].enforce_iam(True)
    later = later_source()
    chain = backend.chain(later.source, retries=5, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert time.monotonic() - started < 2.0
    error = caught.value
    assert error.access_denied
    assert not error.retryable
    assert error.source == backend.source.name
    assert "TOKEN" in error.message
    assert "denied" in error.message
    assert backend.calls("TOKEN") == 1, "never retried"
    assert later.asked == 0
    explanation = chain.explain("TOKEN")
    assert explanation.attempts[1].outcome == "error"
    assert "denied" in explanation.attempts[1].detail


# -- the server goes away in the middle of resolve_many -------------------------------------------


def _killed_midway(
    chain: Chain, names: list[str], first_request: Callable[[], bool], kill: Callable[[], None]
) -> tuple[BaseException | None, float]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = chain.resolve_many(names)
        except BaseException as error:
            outcome["error"] = error

    started = time.monotonic()
    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not first_request() and time.monotonic() < deadline:
        time.sleep(0.01)
    kill()
    worker.join(30)
    assert not worker.is_alive(), "resolve_many came back"
    assert "result" not in outcome, "no partial result is returned as if all were well"
    return outcome.get("error"), time.monotonic() - started


def test_vault_killed_during_resolve_many(
    own_openbao: Any, tcp_proxy: Callable[[tuple[str, int]], TCPProxy]
) -> None:
    from authchain.backends.vault.source import VaultSource

    names = [f"N{number}" for number in range(24)]
    for name in names:
        own_openbao.put(f"t/{name}", {name: canary()})
    host, port = own_openbao.url.removeprefix("http://").split(":")
    proxy = tcp_proxy((host, int(port)))
    proxy.latency = 0.05
    source = VaultSource(url=proxy.url, path_prefix="t", timeout=TIMEOUT)
    chain = Chain(
        [source, EnvSource(environ={"VAULT_TOKEN": own_openbao.root_token}, name="creds")],
        retries=RETRIES,
        backoff=0.01,
    )
    error, elapsed = _killed_midway(chain, names, lambda: proxy.count() >= 4, own_openbao.stop)
    assert isinstance(error, BackendError)
    assert error.retryable
    assert error.source == "vault"
    assert elapsed < 5.0


def test_moto_killed_during_resolve_many(
    request: pytest.FixtureRequest, tcp_proxy: Callable[[tuple[str, int]], TCPProxy]
) -> None:
    from moto.server import ThreadedMotoServer

    from authchain.backends.aws.source import CHUNK_WORKERS, SM_BATCH_LIMIT, AWSSecretsManagerSource
    from tests.servers.moto_server import REGION, MotoServer

    moto: MotoServer = request.getfixturevalue("moto")  # state is process-wide: seed through it
    # More chunks of 20 than are sent at once: the requests already on the wire when
    # the server dies may still be answered; the chunk sent after one of them is not.
    names = [f"N{number}" for number in range(SM_BATCH_LIMIT * (CHUNK_WORKERS + 1))]
    prefix = f"t{token()}/"
    client = moto.client("secretsmanager")
    for name in names:
        client.create_secret(Name=prefix + name, SecretString=canary())
    own = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    own.start()
    try:
        host, port = own.get_host_and_port()
        proxy = tcp_proxy((host, port))
        proxy.latency = 0.2
        source = AWSSecretsManagerSource(
            region=REGION, endpoint_url=proxy.url, prefix=prefix, timeout=TIMEOUT
        )
        chain = Chain([source], retries=RETRIES, backoff=0.01)
        error, elapsed = _killed_midway(chain, names, lambda: proxy.count() >= 1, own.stop)
    finally:
        own.stop()
    assert isinstance(error, BackendError)
    assert error.retryable
    assert error.source == "aws-sm"
    assert "batch" in error.message
    assert elapsed < 6.0


def test_gcp_server_stopped_during_resolve_many() -> None:
    from authchain.backends.gcp.source import GCPSecretManagerSource
    from authchain.testing.gcp import FakeSecretManager

    fake = FakeSecretManager(project="killed").start()
    try:
        names = [f"N{number}" for number in range(16)]
        for name in names:
            fake.set_secret(name, canary())
        fake.delay("AccessSecretVersion", 0.3)
        source = GCPSecretManagerSource(project="killed", endpoint=fake.endpoint, environ={}, timeout=TIMEOUT)
        chain = Chain([source], retries=RETRIES, backoff=0.01)
        error, elapsed = _killed_midway(
            chain, names, lambda: fake.calls("AccessSecretVersion") >= 1, fake.stop
        )
        source.close()
    finally:
        fake.stop()
    assert isinstance(error, BackendError)
    assert error.retryable
    assert error.source == "gcp-sm"
    assert elapsed < 5.0


# -- the whole-lookup deadline --------------------------------------------------------------------


@pytest.mark.parametrize("kind", REMOTE)
def test_deadline_bounds_a_server_that_never_answers(kind: str, request: pytest.FixtureRequest) -> None:
    """Many retries of a hung server stop at the deadline, not after retries x timeout."""
    backend, proxy = proxied(kind, request, timeout=0.4)
    backend.put("TOKEN", canary())
    chain = backend.chain(retries=50, backoff=0.05, deadline=1.0)
    if kind == "vault":
        chain.check()
    proxy.fail("hang")
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    elapsed = time.monotonic() - started
    proxy.heal()
    # vault and gcp-sm shorten their request timeout to what is left; botocore's
    # timeout is fixed per client, so an AWS attempt may run its own timeout past it.
    overrun = 0.4 if kind in ("aws-sm", "aws-ssm") else 0.0
    # Without the deadline: 50 retries x 0.4 s. The margin is for a loaded CI machine.
    assert elapsed < 1.0 + overrun + 1.5, f"the 1s deadline held ({elapsed:.2f}s)"
    assert caught.value.retryable
    assert "deadline" in str(caught.value)


@pytest.mark.parametrize("kind", REMOTE)
def test_deadline_stops_retries_and_backoff_of_fast_failures(
    kind: str, request: pytest.FixtureRequest
) -> None:
    backend, proxy = proxied(kind, request)
    chain = backend.chain(retries=100, backoff=0.2, deadline=0.8)
    if kind == "vault":
        chain.check()
    if kind == "gcp-sm":
        _grpc("UNAVAILABLE")(backend, proxy)
    else:
        proxy.fail("reset")
    started = time.monotonic()
    with pytest.raises(BackendError, match="deadline") as caught:
        chain.resolve("TOKEN")
    assert time.monotonic() - started < 0.8 + 1.0, "not 100 retries with backoff"
    assert caught.value.retryable
    proxy.heal()


def test_deadline_applies_to_callers_waiting_on_the_same_fetch(request: pytest.FixtureRequest) -> None:
    """A second caller joining a hung fetch (single flight) is bounded by its own deadline too."""
    backend, proxy = proxied("vault", request, timeout=5.0)
    chain = backend.chain(retries=0, deadline=0.8)
    chain.check()
    proxy.fail("hang")
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            chain.resolve("TOKEN")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=resolve) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started
    proxy.heal()
    assert len(errors) == 2
    assert all(isinstance(error, BackendError) for error in errors)
    assert elapsed < 0.8 + 1.5, "bounded by the deadline, not the 5 s timeout"


def test_deadline_reached_before_a_later_source_fails_instead_of_moving_on() -> None:
    from authchain.sources.base import Found, Key, NotFound, Source

    class Slow(Source):
        type = "slow"

        def key_for(self, name: str) -> Key:
            return name

        def get(self, key: Key) -> Found | NotFound:
            time.sleep(0.3)
            return NotFound(f"{key} is not here")

    later = later_source()
    chain = Chain([Slow(), later.source], deadline=0.2)
    with pytest.raises(BackendError, match="deadline") as caught:
        chain.resolve("TOKEN")
    assert caught.value.source == "later"
    assert later.asked == 0
    assert Chain([Slow(), later.source], deadline=0).resolve("TOKEN").get_secret_value() == later.value


def test_deadline_setting_from_toml_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text('deadline = 2.5\n[sources.env]\ntype = "env"\n')
    assert Chain.from_config(config).deadline == 2.5
    monkeypatch.setenv("AUTHCHAIN_DEADLINE", "0")
    assert Chain.from_config(config).deadline == 0
    assert Chain([]).deadline == 30.0
    config.write_text('deadline = -1\n[sources.env]\ntype = "env"\n')
    monkeypatch.delenv("AUTHCHAIN_DEADLINE")
    with pytest.raises(ConfigError, match="deadline"):
        Chain.from_config(config)


# -- malformed payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", REMOTE)
def test_malformed_payloads(kind: str, request: pytest.FixtureRequest) -> None:
    backend = make_backend(kind, request, timeout=5.0)
    assert backend.reference is not None
    reference: Callable[[str], str] = backend.reference

    def base(name: str) -> str:
        return reference(name).split("#")[0]

    document = {"user": canary()}
    if kind == "vault":  # a Vault secret is a JSON object of fields already
        backend.extras["server"].put(f"{backend.extras['prefix']}/DOC", document)
    else:
        backend.put("DOC", json.dumps(document))
    chain = backend.chain(cache_ttl=60, retries=3)
    started = time.monotonic()
    if kind != "vault":
        not_json = canary()
        backend.put("PLAIN", f"{{not json {not_json}")
        with pytest.raises(BackendError, match="not valid JSON") as caught:
            chain.resolve(base("PLAIN") + "#user")
        assert not caught.value.retryable
        assert backend.calls("PLAIN") == 1, "a payload that is not JSON is not retried"
        assert_not_leaked(not_json, str(caught.value), "the not-JSON error")
    with pytest.raises(SecretNotFound, match="password"):
        chain.resolve(base("DOC") + "#password")
    assert chain.resolve(base("DOC") + "#user").get_secret_value() == document["user"]
    assert time.monotonic() - started < 3.0
    # The cache holds the value, never an error: the same lookups ask no more.
    asked = backend.calls("DOC")
    assert chain.resolve(base("DOC") + "#user").get_secret_value() == document["user"]
    with pytest.raises(SecretNotFound, match="password"):
        chain.resolve(base("DOC") + "#password")
    assert backend.calls("DOC") == asked


@pytest.mark.parametrize("kind", ["vault", "aws-sm", "aws-ssm", "gcp-sm"])
def test_a_one_megabyte_value_round_trips(kind: str, request: pytest.FixtureRequest) -> None:
    backend = make_backend(kind, request, timeout=10.0)
    value = canary() + "x" * (1024 * 1024) + canary()
    if kind == "aws-ssm":
        backend.extras["client"].put_parameter(
            Name=backend.extras["prefix"] + "BIG", Value=value, Type="SecureString", Tier="Advanced"
        )
    else:
        backend.put("BIG", value)
    started = time.monotonic()
    assert backend.chain().resolve("BIG").get_secret_value() == value
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("kind", ["aws-sm", "gcp-sm"])
def test_non_utf8_bytes_come_back_as_bytes(kind: str, request: pytest.FixtureRequest) -> None:
    backend = make_backend(kind, request, timeout=5.0)
    raw = b"\xff\xfe\x00binary" + canary().encode()
    if kind == "aws-sm":
        backend.extras["client"].create_secret(Name=backend.extras["prefix"] + "BIN", SecretBinary=raw)
    else:
        backend.extras["fake"].set_secret(backend.extras["prefix"] + "BIN", raw, project="authchain-test")
    chain = backend.chain()
    assert chain.resolve("BIN").get_secret_value() == raw
    assert backend.reference is not None
    with pytest.raises(BackendError, match="not valid JSON"):
        chain.resolve(backend.reference("BIN") + "#field")


def test_corrupted_gcp_payload_is_retried_then_heals(request: pytest.FixtureRequest) -> None:
    backend = make_backend("gcp-sm", request, timeout=5.0)
    value = canary()
    backend.put("TOKEN", value)
    backend.extras["fake"].corrupt_crc(times=1)
    assert backend.chain(retries=1).resolve("TOKEN").get_secret_value() == value
    assert backend.calls("TOKEN") == 2


# -- a Vault token that expires mid-run ----------------------------------------------------------------


def _login_role(openbao: Any, *, uses: int) -> tuple[str, str]:
    root = openbao.client()
    role = f"fault-{token()}"
    root.auth.approle.create_or_update_approle(
        role, token_policies=["reader"], token_ttl="1s", token_max_ttl="1s", secret_id_num_uses=uses
    )
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    return role_id, secret_id


@pytest.mark.parametrize("uses", [0, 1], ids=["relogin-succeeds", "relogin-refused"])
def test_vault_token_expiring_mid_run_logs_in_again_once(uses: int, request: pytest.FixtureRequest) -> None:
    backend = make_backend("vault", request, auth="approle", clock=lambda: 0.0, timeout=5.0)
    openbao = backend.extras["server"]
    role_id, secret_id = _login_role(openbao, uses=uses)
    backend.creds = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    value = canary()
    backend.put("TOKEN", value)
    chain = backend.chain(cache_ttl=0, retries=3, backoff=0.01)
    assert chain.resolve("TOKEN").get_secret_value() == value
    mark = openbao.audit_mark()
    time.sleep(1.5)  # the 1-second token expires; the frozen clock hides it from the source
    read = f"secret/data/{backend.extras['prefix']}/TOKEN"
    if uses == 0:
        assert chain.resolve("TOKEN").get_secret_value() == value
        assert openbao.requests_since(mark) == [read, "auth/token/lookup-self", "auth/approle/login", read]
        return
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert caught.value.access_denied
    assert not caught.value.retryable
    assert caught.value.source == "vault"
    assert "approle login" in caught.value.message
    assert openbao.requests_since(mark) == [read, "auth/token/lookup-self", "auth/approle/login"], (
        "one re-login, no loop"
    )
