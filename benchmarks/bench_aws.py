"""AWS Secrets Manager: one cold resolve, 50 cold secrets behind 20 ms of latency, single flight.

A moto ``ThreadedMotoServer`` on 127.0.0.1 holds generated secrets; the
counting TCP proxy from ``tests/servers/proxy.py`` sits in front of it to add
latency per request and to count what went over the wire. Both run in child
processes (``_servers.py``), so they do not compete with the measured code
for this process's GIL.

- Cold resolve of one secret (cache cleared before each call, client built)
  vs raw boto3 ``get_secret_value`` on an already-built client, both straight
  to moto, interleaved.
- 50 secrets, cold, 20 ms added to every request: ``chain.resolve_many``
  (``BatchGetSecretValue``, 20 ids per call) vs a naive loop of
  ``get_secret_value`` on a raw boto3 client through the same proxy.
- 32 threads released together ask for one key that is not cached: the
  proxy counts ``GetSecretValue`` requests (single flight: exactly 1).
"""

from __future__ import annotations

from typing import Any

from benchmarks._harness import (
    REGION,
    Case,
    Row,
    fmt_ratio,
    fmt_time,
    generated_secret,
    interleaved,
    main,
    moto_server,
    single_flight_race,
    single_flight_row,
    verdict,
)

LATENCY = 0.020
COUNT = 50
THREADS = 32
TARGET = "X-Amz-Target"


def _chain(endpoint_url: str, prefix: str = "") -> Any:
    from authchain import Chain
    from authchain.backends.aws.source import AWSSecretsManagerSource

    return Chain([AWSSecretsManagerSource(region=REGION, endpoint_url=endpoint_url, prefix=prefix)])


def _raw_client(endpoint_url: str) -> Any:
    import boto3

    return boto3.session.Session().client("secretsmanager", region_name=REGION, endpoint_url=endpoint_url)


def _cold_one(moto: Any, quick: bool) -> Row:
    url = moto.url
    moto.client("secretsmanager").create_secret(Name="bench-one", SecretString=generated_secret())
    chain = _chain(url)
    raw = _raw_client(url)
    chain.resolve("bench-one")  # builds the client; the cache is cleared below
    raw.get_secret_value(SecretId="bench-one")
    namespace = {"chain": chain, "raw": raw}
    number = 2 if quick else 20
    stats = interleaved(
        {
            "authchain": Case('chain.clear_cache(); chain.resolve("bench-one")', namespace, number),
            "boto3": Case('raw.get_secret_value(SecretId="bench-one")["SecretString"]', namespace, number),
        },
        2 if quick else 15,
    )
    chain.close()
    raw.close()
    mine, base = stats["authchain"].median, stats["boto3"].median
    return Row(
        "cold `resolve` of one AWS SM secret",
        fmt_time(mine),
        f"raw boto3 `get_secret_value` {fmt_time(base)}",
        fmt_ratio(mine / base) + " boto3",
        "≤ 1.2×",
        verdict(mine <= 1.2 * base),
        (
            f"chain overhead ≈ {fmt_time(mine - base)} per cold resolve"
            if mine > base
            else "no chain overhead measurable: its median was the lower"
        )
        + " (moto on 127.0.0.1, no added latency)",
        {k: v.as_dict() for k, v in stats.items()},
    )


def _fifty(moto: Any, quick: bool) -> Row:
    from benchmarks._servers import ProxyProcess

    admin = moto.client("secretsmanager")
    names = [f"S{number:02d}" for number in range(COUNT)]
    for name in names:
        admin.create_secret(Name=f"bench/{name}", SecretString=generated_secret())
    with ProxyProcess((moto.host, moto.port)) as proxy:
        chain = _chain(proxy.url, prefix="bench/")
        raw = _raw_client(proxy.url)
        chain.resolve(names[0])  # build the client and connect, untimed
        raw.get_secret_value(SecretId=f"bench/{names[0]}")
        proxy.set_latency(LATENCY)

        def batch() -> None:
            chain.clear_cache()
            assert len(chain.resolve_many(names)) == COUNT

        def naive() -> None:
            for name in names:
                raw.get_secret_value(SecretId=f"bench/{name}")["SecretString"]

        stats = interleaved({"authchain": Case(batch), "naive": Case(naive)}, 1 if quick else 5)
        proxy.clear()
        batch()
        batches = proxy.count(header=(TARGET, "secretsmanager.BatchGetSecretValue"))
        requests = proxy.count()
        chain.close()
        raw.close()
    mine, base = stats["authchain"].median, stats["naive"].median
    return Row(
        f"{COUNT} AWS SM secrets, cold, +20 ms per request",
        f"`resolve_many` {fmt_time(mine)} ({requests} requests, {batches} BatchGetSecretValue)",
        f"naive `get_secret_value` loop {fmt_time(base)} ({COUNT} requests)",
        fmt_ratio(base / mine) + " faster",
        "≥ 10× faster",
        verdict(base >= 10 * mine),
        "",
        {k: v.as_dict() for k, v in stats.items()} | {"requests": requests, "batches": batches},
    )


def _single_flight(moto: Any, quick: bool) -> Row:
    from benchmarks._servers import ProxyProcess

    moto.client("secretsmanager").create_secret(Name="bench-flight", SecretString=generated_secret())
    moto.client("secretsmanager").create_secret(Name="bench-warm", SecretString=generated_secret())
    with ProxyProcess((moto.host, moto.port)) as proxy:
        chain = _chain(proxy.url)
        chain.resolve("bench-warm")  # the client exists before the race
        proxy.set_latency(LATENCY)
        counts = single_flight_race(
            chain,
            proxy,
            "bench-flight",
            lambda: proxy.count(header=(TARGET, "secretsmanager.GetSecretValue")),
            threads=THREADS,
            trials=1 if quick else 5,
        )
        chain.close()
    return single_flight_row(
        f"{THREADS} threads × one uncached AWS SM key",
        "GetSecretValue call(s)",
        counts,
        "counted at the TCP proxy in front of moto",
    )


def run(quick: bool) -> list[Row]:
    with moto_server() as moto:
        return [_cold_one(moto, quick), _fifty(moto, quick), _single_flight(moto, quick)]


if __name__ == "__main__":
    main(run)
