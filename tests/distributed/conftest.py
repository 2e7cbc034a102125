"""A real Dask ``LocalCluster`` (2 process workers on 127.0.0.1) for the distributed tests.

One cluster per test module, closed at the end of the module whatever
happened. Workers get what they need the way production workers do: through
their environment (``LocalCluster(env=...)``: the OpenBao address and a
reader token, moto's endpoint and made-up keys, the session Prefect API),
never as task arguments. Each test then registers the authchain worker plugin
with its own config, which gives every worker a fresh chain and cache.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.servers.moto_server import MotoServer
from tests.servers.openbao import OpenBao
from tests.servers.prefect_api import PrefectAPI
from tests.servers.proxy import TCPProxy

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

N_WORKERS = 2
THREADS_PER_WORKER = 4


class WireRecorder(TCPProxy):
    """A TCP proxy that keeps every byte it forwards, both ways.

    Put between a Dask client and the scheduler, ``sent`` is exactly what the
    client submitted (task graphs, pickled arguments) and ``received`` what
    came back (results, logs, errors).
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(upstream)
        self.sent = bytearray()
        self.received = bytearray()

    @property
    def address(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def _deliver(self, client: socket.socket, upstream: socket.socket, data: bytes) -> bool:
        delivered = super()._deliver(client, upstream, data)
        if delivered:
            with self._lock:
                self.sent += data
        return delivered

    def _answered(self, chunk: bytes) -> None:
        with self._lock:
            self.received += chunk


def worker_env(openbao: OpenBao, prefect_api: PrefectAPI, home: Path) -> dict[str, str]:
    """The environment every worker process starts with: addresses, non-secret settings, one token."""
    env = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}  # moto's
    env.update(
        {
            "VAULT_ADDR": openbao.url,
            "VAULT_TOKEN": openbao.tokens["reader"],
            "HOME": str(home),  # no ~/.vault-token or ~/.aws of the user's
            "PREFECT_API_URL": prefect_api.api_url,
            "PREFECT_HOME": str(prefect_api.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        }
    )
    return env


@pytest.fixture(scope="module")
def dask_cluster(
    openbao: OpenBao,
    moto_server: MotoServer,
    prefect_api: PrefectAPI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalCluster]:
    """Two worker processes (four threads each) on 127.0.0.1, no dashboard."""
    pytest.importorskip("distributed", reason="needs the dask extra")
    from distributed import LocalCluster

    assert os.environ.get("AWS_ENDPOINT_URL") == moto_server.url, "workers must inherit moto, not AWS"
    home = tmp_path_factory.mktemp("dask-worker-home")
    cluster = LocalCluster(
        n_workers=N_WORKERS,
        threads_per_worker=THREADS_PER_WORKER,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # The scheduler serves a small HTTP API (health, metrics) even without a
        # dashboard: on a free loopback port, not 8787.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        env=worker_env(openbao, prefect_api, home),
        silence_logs=logging.WARNING,
        local_directory=str(home / "scratch"),
    )
    try:
        yield cluster
    finally:
        cluster.close(timeout=30)


@pytest.fixture(scope="module")
def dask_client(dask_cluster: LocalCluster) -> Iterator[Client]:
    """A client connected straight to the scheduler (for setup, logs and ``client.run``)."""
    from distributed import Client

    client = Client(dask_cluster, set_as_default=False)
    try:
        client.wait_for_workers(N_WORKERS, timeout=60)
        yield client
    finally:
        client.close()


@pytest.fixture
def wire(dask_cluster: LocalCluster) -> Iterator[WireRecorder]:
    """A recording proxy in front of the scheduler; connect a client to ``wire.address``."""
    host, port = dask_cluster.scheduler_address.removeprefix("tcp://").rsplit(":", 1)
    with WireRecorder((host, int(port))) as recorder:
        yield recorder


def write_config(folder: Path, *, vault_url: str = "${VAULT_ADDR}", cache_ttl: float = 300) -> Path:
    """A worker config: a Vault source (token: VAULT_TOKEN from the worker's env), then env."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "authchain.toml"
    path.write_text(
        f"cache_ttl = {cache_ttl}\n"
        "negative_ttl = 60\n"
        "retries = 0\n"
        "\n"
        "[sources.vault]\n"
        'type = "vault"\n'
        f'url = "{vault_url}"\n'
        'path_prefix = "t/names"\n'
        "\n"
        "[sources.env]\n"
        'type = "env"\n',
        encoding="utf-8",
    )
    return path
