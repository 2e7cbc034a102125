"""Secrets resolved on Dask workers from references, never shipped through the graph.

A real ``LocalCluster`` (2 process workers, 127.0.0.1), the session's OpenBao
(counted at the server through its audit log), moto for the S3 writes of a
lazily built client, and the session Prefect API. Hygiene is checked on what
really travelled: the bytes between the Dask client and the scheduler (a
recording proxy), the pickled arguments, every worker and nanny log line,
and every file Prefect wrote, database included.
"""

from __future__ import annotations

import os
import pickle
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import pytest

from authchain import ConfigError, SecretRef
from authchain.clients import aws_client, lazy, vault_client
from authchain.dask import AuthchainWorkerPlugin, preload
from authchain.testing import canary
from tests._waiting import wait_for
from tests.distributed.conftest import N_WORKERS, THREADS_PER_WORKER, WireRecorder, write_config
from tests.distributed.jobs import CARELESS, digest, read_and_store, timed_resolve, worker_state
from tests.secret_tasks.test_prefect_flows import leaks
from tests.servers.moto_server import MotoServer
from tests.servers.openbao import OpenBao
from tests.servers.prefect_api import PrefectAPI
from tests.servers.proxy import TCPProxy

if TYPE_CHECKING:
    from distributed import Client

pytestmark = pytest.mark.timeout(180)

TASKS = 20
KEYS = 4


# -- helpers --------------------------------------------------------------------------


def seed(openbao: OpenBao, run: str) -> tuple[list[str], list[SecretRef]]:
    """KEYS canary values in OpenBao; TASKS references cycling over them."""
    values = [canary() for _ in range(KEYS)]
    for index, value in enumerate(values):
        openbao.put(f"t/dask-{run}/k{index}", {"value": value})
    refs = [SecretRef.parse(f"vault://secret/t/dask-{run}/k{i % KEYS}#value") for i in range(TASKS)]
    return values, refs


def kv_reads(openbao: OpenBao, mark: int, run: str) -> list[str]:
    """The KV reads of this run's secrets that reached the server since ``mark``."""
    return [path for path in openbao.requests_since(mark) if path.startswith(f"secret/data/t/dask-{run}/")]


def worker_log_lines(client: Client) -> list[str]:
    lines = []
    for nanny in (False, True):
        for records in client.get_worker_logs(nanny=nanny).values():
            lines += [message for _level, message in records]
    return lines


def check_results(
    results: list[tuple[str, int, int]], values: list[str], moto: MotoServer, bucket: str
) -> None:
    expected = [digest(values[i % KEYS]) for i in range(TASKS)]
    assert [result[0] for result in results] == expected
    clients_per_worker: dict[int, set[int]] = defaultdict(set)
    for _, pid, client_id in results:
        clients_per_worker[pid].add(client_id)
    built = {pid: len(ids) for pid, ids in clients_per_worker.items()}
    assert set(built.values()) == {1}, f"one lazy client per worker process, not {built}"
    s3 = moto.client("s3")
    stored = [s3.get_object(Bucket=bucket, Key=f"out/{i}")["Body"].read().decode() for i in range(TASKS)]
    assert stored == expected, "each task wrote through its lazily built S3 client"


def check_hygiene(
    values: list[str], token: str, wire: WireRecorder, submitted: bytes, logs: list[str]
) -> None:
    assert len(submitted) < 8192, "references and lazy clients pickle small"
    for value in values:
        assert not leaks(value, submitted), "a value is in the pickled arguments"
        assert not leaks(value, bytes(wire.sent)), "a value went from the client to the scheduler"
        assert not leaks(value, bytes(wire.received)), "a value came back from the cluster"
        assert not any(leaks(value, line.encode()) for line in logs), "a value is in a worker log"
    assert token.encode() not in wire.sent
    assert not any(token in line for line in logs)
    assert any(f"{CARELESS} ***" in line for line in logs), "the careless log line must be there, masked"


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"dask-{uuid.uuid4().hex[:12]}"
    moto.client("s3").create_bucket(Bucket=name)
    return name


# -- the plugin and what travels --------------------------------------------------------


def test_the_plugin_pickles_small_and_refuses_secret_values(tmp_path: Path) -> None:
    plugin = AuthchainWorkerPlugin(
        tmp_path / "authchain.toml",
        profile="prod",
        env={"VAULT_ADDR": "http://127.0.0.1:8200", "DB_PASSWORD": "vault://secret/app#password"},
    )
    data = cloudpickle.dumps(plugin)
    assert len(data) < 1024
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    assert (clone.config, clone.profile, clone.env) == (plugin.config, plugin.profile, plugin.env)
    value = canary()
    for name in ("VAULT_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "PREFECT_API_KEY", "GCP_CREDENTIALS"):
        with pytest.raises(ConfigError, match="looks like a credential") as caught:
            AuthchainWorkerPlugin(env={name: value})
        assert value not in str(caught.value)


def test_a_set_up_plugin_still_pickles_as_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import authchain

    value = canary()
    monkeypatch.setenv("DASK_PLUGIN_LOCAL_SECRET", value)
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.env]\ntype = "env"\n', encoding="utf-8")
    plugin = AuthchainWorkerPlugin(config, env={"AUTHCHAIN_DASK_TEST_MARK": "local"}, log_masking=False)
    plugin.setup(worker=None)  # type: ignore[arg-type]  # the plugin needs nothing from the worker
    try:
        assert authchain.resolve("DASK_PLUGIN_LOCAL_SECRET").get_secret_value() == value  # now cached
        data = cloudpickle.dumps(plugin)
        assert len(data) < 1024
        assert not leaks(value, data)
    finally:
        plugin.teardown(worker=None)  # type: ignore[arg-type]
    assert "AUTHCHAIN_DASK_TEST_MARK" not in os.environ


def test_references_and_lazy_clients_pickle_without_values_clients_or_credentials(
    openbao: OpenBao, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authchain import Chain
    from authchain._default import set_default_chain
    from authchain.backends.env.source import EnvSource
    from authchain.backends.vault.source import VaultSource

    value, token = canary(), openbao.tokens["reader"]
    openbao.put("t/dask-pickle/db", {"password": value})
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.setenv("VAULT_TOKEN", token)
    previous = set_default_chain(Chain([VaultSource(), EnvSource()]))
    try:
        ref = SecretRef.parse("vault://secret/t/dask-pickle/db#password")
        assert ref.resolve().get_secret_value() == value  # caches the value, builds a Vault client
        client = lazy(vault_client)
        assert client.is_authenticated()  # builds the hvac client, which holds the token
        for obj, limit in ((ref, 512), (client, 512)):
            data = cloudpickle.dumps(obj)
            assert len(data) < limit
            assert not leaks(value, data)
            assert token.encode() not in data
        clone = pickle.loads(cloudpickle.dumps(client))  # noqa: S301 - our own bytes
        assert clone._client is None, "a used lazy client travels as its factory call only"
    finally:
        mine = set_default_chain(previous)
        assert mine is not None
        mine.close()


def test_registering_sets_up_every_worker_and_removing_restores_it(
    dask_client: Client, prefect_api: PrefectAPI, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    preload(dask_client, config, env={"AUTHCHAIN_DASK_TEST_MARK": "on"})
    states = dask_client.run(worker_state)
    assert len(states) == N_WORKERS
    for state in states.values():
        assert state["chain"] == "<Chain: explicit, vault, env>"
        assert state["mark"] == "on"
        assert state["masked"], "log masking is installed: a record made on the worker is masked"
        assert state["prefect_api_url"] == prefect_api.api_url, "workers use the session's Prefect API"
    dask_client.unregister_worker_plugin("authchain")
    for state in dask_client.run(worker_state).values():
        assert state["mark"] is None, "teardown restores the environment"
        assert state["chain"] is None, "teardown restores the previous default chain"


def test_a_broken_worker_config_fails_at_registration(dask_client: Client, tmp_path: Path) -> None:
    broken = tmp_path / "authchain.toml"
    broken.write_text('order = ["vault"]\n[sources.vault]\ntype = "vault"\nmount = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="mount"):
        preload(dask_client, broken)
    preload(dask_client, write_config(tmp_path / "good"))  # and a good one replaces it


# -- (b) plain dask.distributed ---------------------------------------------------------


def test_client_map_resolves_references_on_the_workers(
    dask_client: Client, wire: WireRecorder, openbao: OpenBao, moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    from distributed import Client

    preload(dask_client, write_config(tmp_path))
    run = uuid.uuid4().hex[:12]
    values, refs = seed(openbao, run)
    s3 = lazy(aws_client, "s3")
    arguments = (refs, [s3] * TASKS, [bucket] * TASKS, list(range(TASKS)))
    submitted = cloudpickle.dumps((read_and_store, *arguments))
    mark = openbao.audit_mark()
    with Client(wire.address, set_as_default=False) as client:
        results = client.gather(client.map(read_and_store, *arguments, pure=False))
        logs = worker_log_lines(client)  # through the proxy as well
    reads = kv_reads(openbao, mark, run)
    check_results(results, values, moto, bucket)
    assert set(reads) == {f"secret/data/t/dask-{run}/k{i}" for i in range(KEYS)}
    assert len(reads) <= N_WORKERS * KEYS, f"{len(reads)} reads: more than one per worker per key"
    wait_for(lambda: f"t/dask-{run}/k0".encode() in wire.sent, what="the recorder to see the references")
    check_hygiene(values, openbao.tokens["reader"], wire, submitted, logs)


# -- (a) a Prefect flow on DaskTaskRunner -------------------------------------------------


def wait_for_the_api(api: PrefectAPI, flow_run_id: str) -> tuple[list[str], list[str]]:
    """The flow run's task-run states and log messages, once every task run is recorded
    COMPLETED and its masked careless line arrived (both reach the API asynchronously)."""

    def read() -> tuple[list[str], list[str]]:
        states = [
            str(row[0])
            for row in api.rows("SELECT state_type FROM task_run WHERE flow_run_id = ?", (flow_run_id,))
        ]
        messages = [
            str(row[0]) for row in api.rows("SELECT message FROM log WHERE flow_run_id = ?", (flow_run_id,))
        ]
        return states, messages

    def complete(found: tuple[list[str], list[str]]) -> bool:
        states, messages = found
        masked = sum(f"{CARELESS} ***" in message for message in messages)
        return states == ["COMPLETED"] * TASKS and masked >= TASKS

    return wait_for(read, until=complete, what=f"{TASKS} completed task runs and their masked log lines")


def test_prefect_flow_on_dask_task_runner_reads_secrets_by_reference(
    dask_client: Client,
    wire: WireRecorder,
    openbao: OpenBao,
    moto: MotoServer,
    prefect_api: PrefectAPI,
    bucket: str,
    tmp_path: Path,
) -> None:
    from prefect_dask import DaskTaskRunner

    from tests.distributed.prefect_jobs import fan_out

    preload(dask_client, write_config(tmp_path))
    run = uuid.uuid4().hex[:12]
    values, refs = seed(openbao, run)
    submitted = cloudpickle.dumps((fan_out, refs, bucket))
    mark = openbao.audit_mark()
    state: Any = fan_out.with_options(task_runner=DaskTaskRunner(address=wire.address))(
        refs, bucket, return_state=True
    )
    results = state.result()
    reads = kv_reads(openbao, mark, run)
    check_results(results, values, moto, bucket)
    assert set(reads) == {f"secret/data/t/dask-{run}/k{i}" for i in range(KEYS)}
    assert len(reads) <= N_WORKERS * KEYS, f"{len(reads)} reads: more than one per worker per key"
    wait_for(lambda: f"t/dask-{run}/k0".encode() in wire.sent, what="the recorder to see the references")

    flow_run_id = str(state.state_details.flow_run_id)
    task_states, messages = wait_for_the_api(prefect_api, flow_run_id)
    assert task_states == ["COMPLETED"] * TASKS, "the workers reported to the session's API"
    assert sum(f"{CARELESS} ***" in message for message in messages) >= TASKS

    logs = worker_log_lines(dask_client)
    check_hygiene(values, openbao.tokens["reader"], wire, submitted, logs)
    leaked = [
        path.name for path in prefect_api.files() for value in values if leaks(value, path.read_bytes())
    ]
    assert not leaked, f"a value leaked into {leaked}"


# -- (c) per-worker single flight ----------------------------------------------------------

TTL = 4.0
PER_WORKER = 2 * THREADS_PER_WORKER  # whole meetings: every task finds its party


def test_one_backend_call_per_worker_per_ttl(dask_client: Client, openbao: OpenBao, tmp_path: Path) -> None:
    with TCPProxy(("127.0.0.1", int(openbao.url.rsplit(":", 1)[1]))) as slow:
        slow.latency = 0.5  # every miss waits, so concurrent misses on a worker really overlap
        preload(dask_client, write_config(tmp_path, vault_url=slow.url, cache_ttl=TTL))
        run = uuid.uuid4().hex[:12]
        value = canary()
        openbao.put(f"t/dask-{run}/shared", {"value": value})
        ref = SecretRef.parse(f"vault://secret/t/dask-{run}/shared#value")
        workers = sorted(dask_client.scheduler_info()["workers"])

        def wave() -> tuple[list[tuple[int, float, float, str]], float]:
            started = time.monotonic()
            futures = [
                dask_client.submit(
                    timed_resolve,
                    ref,
                    i,
                    THREADS_PER_WORKER,
                    workers=[w],
                    allow_other_workers=False,
                    pure=False,
                )
                for w in workers
                for i in range(PER_WORKER)
            ]
            return dask_client.gather(futures), time.monotonic() - started

        mark = openbao.audit_mark()
        first, took = wave()
        assert took < TTL, "the first wave must fit in one TTL for this test to mean anything"
        assert len(kv_reads(openbao, mark, run)) == N_WORKERS, "one call per worker for 8 tasks each"
        assert {result[3] for result in first} == {digest(value)}
        by_worker: dict[int, list[float]] = defaultdict(list)
        for pid, start, end, _ in first:
            by_worker[pid].append(end - start)
        assert len(by_worker) == N_WORKERS
        for durations in by_worker.values():
            waited = sum(duration >= 0.4 for duration in durations)
            assert waited >= THREADS_PER_WORKER, "tasks that met missed at once and shared one slow call"

        time.sleep(TTL + 0.5)
        mark = openbao.audit_mark()
        second, _ = wave()
        assert len(kv_reads(openbao, mark, run)) == N_WORKERS, "after the TTL: one new call per worker"
        assert {result[3] for result in second} == {digest(value)}
