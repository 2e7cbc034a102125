"""Azure Key Vault: 50 cold secrets behind 20 ms per request.

The in-process HTTPS Key Vault fake (``tests/servers/azure_keyvault.py``: the
secrets REST API, the 401 bearer challenge and a token endpoint, TLS from a
throwaway CA) runs in a child process (``_servers.py``) and waits 20 ms
before answering each vault request: TLS cannot be delayed per request by
the TCP proxy, so the server adds it.

- 50 secrets, cold: ``chain.resolve_many`` (Key Vault has no batch read; the
  source is concurrent, so the chain's bounded pool runs the lookups,
  ``max_workers = 8`` by default) vs a naive loop of ``SecretClient.get_secret``
  on a raw SDK client with the same credential class, interleaved.
"""

from __future__ import annotations

from typing import Any

from benchmarks._harness import (
    Case,
    Row,
    generated_secret,
    interleaved,
    main,
    pooled_reads_row,
)

LATENCY = 0.020
COUNT = 50
CLIENT_ID = "00000000-0000-4000-8000-0000000be4c4"


def _fifty(server: Any, quick: bool) -> Row:
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    from authchain import Chain
    from authchain.backends.azure.source import AzureKeyVaultSource

    client_secret = generated_secret()
    server.add_client(CLIENT_ID, client_secret)
    names = [f"S{number:02d}" for number in range(COUNT)]
    for name in names:
        server.set_secret(name, generated_secret())
    environ = {
        "AZURE_TENANT_ID": server.tenant,
        "AZURE_CLIENT_ID": CLIENT_ID,
        "AZURE_CLIENT_SECRET": client_secret,
    }
    source = AzureKeyVaultSource(
        vault_url=server.url, authority=server.url, ca_bundle=server.ca_file, environ=environ, timeout=10
    )
    chain = Chain([source])
    credential = ClientSecretCredential(
        server.tenant,
        CLIENT_ID,
        client_secret,
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=server.ca_file,
    )
    raw = SecretClient(
        server.url, credential, verify_challenge_resource=False, connection_verify=server.ca_file
    )
    chain.resolve(names[0])  # token, challenge and connection out of the way, untimed
    raw.get_secret(names[0])
    server.set_latency(LATENCY)

    def pooled() -> None:
        chain.clear_cache()
        assert len(chain.resolve_many(names)) == COUNT

    def naive() -> None:
        for name in names:
            raw.get_secret(name)

    stats = interleaved({"authchain": Case(pooled), "naive": Case(naive)}, 1 if quick else 5)
    before = server.reads()
    pooled()
    requests = server.reads() - before
    server.set_latency(0.0)
    floor = interleaved({"authchain": Case(pooled), "naive": Case(naive)}, 1 if quick else 3)
    chain.close()
    raw.close()
    credential.close()
    return pooled_reads_row(
        "Azure Key Vault",
        "SecretClient.get_secret",
        stats,
        floor,
        requests=requests,
        workers=chain.max_workers,
        count=COUNT,
        latency=LATENCY,
    )


def run(quick: bool) -> list[Row]:
    try:
        import azure.keyvault.secrets  # noqa: F401
        import trustme  # noqa: F401
    except ImportError:
        why = "needs the azure extra and trustme (pip install 'authchain[azure,test]')"
        return [Row(f"{COUNT} Azure Key Vault secrets", "", why, "", "≥ 5× faster", "skipped")]
    from benchmarks._servers import AzureVaultProcess

    with AzureVaultProcess() as server:
        return [_fifty(server, quick)]


if __name__ == "__main__":
    main(run)
