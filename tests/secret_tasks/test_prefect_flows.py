"""Secret tasks inside real Prefect 3 flows, against Prefect's local API (SQLite).

The hygiene tests plant a canary, run a flow that passes it through a Secret
task into a downstream task, then search every file Prefect wrote (database
included) and every log record for the canary and its encoded forms.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest

from authchain import BackendError, Chain, SecretRef, SecretValue
from authchain.backends.env.source import EnvSource
from authchain.sources.base import Found, Key, NotFound, Source
from authchain.testing import canary
from secret_tasks import ChainSecret, EnvVarSecret, PrefectSecret
from tests._waiting import wait_for
from tests.servers.prefect_api import PrefectAPI

pytestmark = pytest.mark.timeout(180)

_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def encoded_forms(value: str) -> list[bytes]:
    raw = value.encode()
    forms = [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]
    for obj in (value, SecretValue(value)):
        forms.append(base64.b64encode(cloudpickle.dumps(obj)))
    return forms


def leaks(value: str, data: bytes) -> bool:
    """The canary in ``data``: raw, in a known encoding, or inside any base64 run."""
    if any(form in data for form in encoded_forms(value)):
        return True
    for run in _BASE64_RUN.findall(data):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(run + b"=" * (-len(run) % 4))
            except ValueError:
                continue
            if value.encode() in decoded:
                return True
    return False


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured_logs() -> Iterator[_Capture]:
    handler = _Capture()
    names = {"", "prefect", "prefect.flow_runs", "prefect.task_runs", "authchain", "secret_tasks"}
    names |= {name for name in logging.root.manager.loggerDict if name.startswith(("prefect", "authchain"))}
    loggers = [logging.getLogger(name) for name in sorted(names)]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def assert_nowhere(value: str, api: PrefectAPI, logs: _Capture) -> None:
    files = api.files()
    assert any(path.name.startswith(api.database.name) for path in files), "the database must be searched"
    leaked = [str(path.relative_to(path.anchor)) for path in files if leaks(value, path.read_bytes())]
    assert not leaked, f"the canary leaked into {len(leaked)} file(s) Prefect wrote"
    assert not any(leaks(value, line.encode()) for line in logs.lines), "the canary leaked into a log record"


def run_pipeline(variable: str, api: PrefectAPI) -> int:
    """Run the two-task pipeline; return once Prefect has recorded both task runs (it does so
    in the background), so the searches that follow see everything it will write."""
    from prefect import flow, task

    @task
    def use_token(token: SecretValue[str]) -> int:
        return len(token.get_secret_value())

    @flow
    def pipeline() -> int:
        token = EnvVarSecret(variable)()
        return use_token(token)  # type: ignore[no-any-return]

    state: Any = pipeline(return_state=True)
    api.wait_for_task_runs(state.state_details.flow_run_id, 2)
    return state.result()  # type: ignore[no-any-return]


def test_a_secret_never_reaches_the_database_results_or_logs(
    prefect_api: PrefectAPI, captured_logs: _Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary()
    monkeypatch.setenv("HYGIENE_DEFAULT_TOKEN", value)
    assert run_pipeline("HYGIENE_DEFAULT_TOKEN", prefect_api) == len(value)
    assert captured_logs.lines, "the flow must have logged something for this test to mean anything"
    assert_nowhere(value, prefect_api, captured_logs)


def test_not_even_when_results_persist_by_default(
    prefect_api: PrefectAPI, captured_logs: _Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings

    value = canary()
    monkeypatch.setenv("HYGIENE_PERSIST_TOKEN", value)
    storage = prefect_api.home / "storage"
    before = set(storage.rglob("*")) if storage.exists() else set()
    with temporary_settings(updates={PREFECT_RESULTS_PERSIST_BY_DEFAULT: True}):
        assert run_pipeline("HYGIENE_PERSIST_TOKEN", prefect_api) == len(value)
    wait_for(
        lambda: set(storage.rglob("*")) - before,
        what="result files written by persistence by default (else this test proves nothing)",
    )
    assert_nowhere(value, prefect_api, captured_logs)


def stored_parameters(api: PrefectAPI, flow_run_name: str) -> str:
    with sqlite3.connect(api.database) as connection:
        row = connection.execute(
            "SELECT parameters FROM flow_run WHERE name = ?", (flow_run_name,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_flow_parameters_store_references_and_never_values(
    prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.runtime import flow_run

    value = canary()
    monkeypatch.setenv("PARAM_TOKEN", value)
    names: list[str] = []

    @flow
    def with_parameters(ref: SecretRef, secret: SecretValue[str]) -> int:
        names.append(str(flow_run.name))
        return len(ref.resolve().get_secret_value()) + len(secret.get_secret_value())

    assert with_parameters(SecretRef.parse("env://PARAM_TOKEN"), SecretValue(value)) == 2 * len(value)
    stored = stored_parameters(prefect_api, names[0])
    assert "PARAM_TOKEN" in stored, "the reference itself is stored"
    assert value not in stored
    assert "<SecretValue>" in stored or "**********" in stored


def test_task_run_names_show_the_secret_name_not_the_value(
    prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    value = canary()
    monkeypatch.setenv("NAMED_TOKEN", value)

    @flow
    def named() -> None:
        EnvVarSecret("NAMED_TOKEN")()

    state: Any = named(return_state=True)
    names = prefect_api.wait_for_task_runs(state.state_details.flow_run_id, 1)
    assert "EnvVarSecret[NAMED_TOKEN]" in names
    assert not any(value in name for name in names)


class FailsOnce(Source):
    """A backend that is down for the first call, then answers."""

    type = "fails-once"

    def __init__(self, value: str) -> None:
        super().__init__(name="fails-once")
        self._value = value
        self.calls = 0
        self._lock = threading.Lock()

    def key_for(self, name: str) -> Key:
        return name

    def get(self, key: Key) -> Found | NotFound:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            raise BackendError("connection refused", retryable=True)
        return Found(SecretValue(self._value), f"{key} is here")

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("stays in this process")


def test_prefect_retries_a_secret_task_whose_backend_fails_once(prefect_api: PrefectAPI) -> None:
    from prefect import flow

    value = canary()
    source = FailsOnce(value)
    chain = Chain([source], retries=0)  # no chain retry: Prefect's task retry must do it
    secret = ChainSecret("FLAKY", chain=chain, retries=1, retry_delay_seconds=0)

    @flow
    def flaky() -> int:
        return len(secret().get_secret_value())

    assert flaky() == len(value)
    assert source.calls == 2


def test_async_flow_uses_a_secret_task(prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import flow

    value = canary()
    monkeypatch.setenv("ASYNC_TOKEN", value)

    @flow
    async def async_pipeline() -> int:
        token = EnvVarSecret("ASYNC_TOKEN")()
        await asyncio.sleep(0)
        return len(token.get_secret_value())

    state: Any = asyncio.run(async_pipeline(return_state=True))  # type: ignore[call-arg]
    assert state.result() == len(value)
    names = prefect_api.wait_for_task_runs(state.state_details.flow_run_id, 1)
    assert "EnvVarSecret[ASYNC_TOKEN]" in names, "it ran as a Prefect task run"


def test_prefect_secret_reads_a_block_inside_a_flow_sync_and_async(prefect_api: PrefectAPI) -> None:
    from prefect import flow
    from prefect.blocks.system import Secret

    plain, nested = canary(), canary()
    Secret(value=plain).save("st-plain-block", overwrite=True)
    Secret(value={"password": nested}).save("st-json-block", overwrite=True)

    @flow
    def sync_flow() -> tuple[str, str, str]:
        by_name = PrefectSecret("ST_PLAIN_BLOCK")()
        by_block = PrefectSecret("st-plain-block")()
        field = PrefectSecret("st-json-block", key="password")()
        return by_name.get_secret_value(), by_block.get_secret_value(), field.get_secret_value()

    @flow
    async def async_flow() -> str:
        return str(PrefectSecret("st-plain-block")().get_secret_value())

    assert sync_flow() == (plain, plain, nested)
    assert asyncio.run(async_flow()) == plain


def test_default_chain_source_explains_block_versus_prefect_1_form(
    prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.blocks.system import Secret

    from authchain.backends.prefect.source import PrefectSource

    Secret(value=canary()).save("st-explained", overwrite=True)
    monkeypatch.setenv("PREFECT__CONTEXT__SECRETS__ST_LEGACY_ONLY", canary())
    chain = Chain([PrefectSource(), EnvSource()])

    @flow
    def explained() -> tuple[str, str]:
        return str(chain.explain("ST_EXPLAINED")), str(chain.explain("ST_LEGACY_ONLY"))

    block_text, legacy_text = explained()
    assert "Secret block 'st-explained'" in block_text
    assert "PREFECT__CONTEXT__SECRETS__ST_LEGACY_ONLY is set (Prefect 1 local secret)" in legacy_text
    chain.clear_cache()
    outside = str(chain.explain("ST_EXPLAINED"))
    assert "not inside a Prefect flow or task run" in outside


def test_the_prefect_sources_environ_seam_does_not_travel_in_a_pickle() -> None:
    from authchain.backends.prefect.source import PrefectSource

    value = canary()
    source = PrefectSource(environ={"PREFECT__CONTEXT__SECRETS__TOKEN": value})
    found = source.get(source.key_for("TOKEN"))
    assert isinstance(found, Found)
    assert found.value == SecretValue(value), "the seam was read before pickling"
    data = cloudpickle.dumps(source)
    assert not leaks(value, data), "the Prefect 1 variable travelled in the pickle"
    assert cloudpickle.loads(data)._environ is None


def test_the_prefect_source_counts_as_local_only_outside_a_run(prefect_api: PrefectAPI) -> None:
    """Outside a run it reads only environment variables (no single flight or retries
    needed); inside one it calls the API, and gets the whole fetch machinery."""
    from prefect import flow

    from authchain.backends.prefect.source import PrefectSource

    source = PrefectSource()

    @flow
    def inside() -> bool:
        return source.is_local()

    assert source.is_local()
    assert inside() is False
    assert PrefectSource(only_in_run=False).is_local() is False
    assert EnvSource().is_local()


def test_the_api_listens_on_loopback_only(prefect_api: PrefectAPI) -> None:
    assert prefect_api.api_url.startswith("http://127.0.0.1:")


def test_prefect_secret_missing_block_fails_the_task_with_the_trail(prefect_api: PrefectAPI) -> None:
    from prefect import flow

    from authchain import SecretNotFound

    @flow
    def missing() -> str:
        try:
            PrefectSecret("st-no-such-block")()
        except SecretNotFound as error:
            return str(error)
        return "found?"

    message = missing()
    assert "'st-no-such-block' was not found by any source" in message
    assert "no Secret block named 'st-no-such-block'" in message
