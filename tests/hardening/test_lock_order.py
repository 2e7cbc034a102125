"""Cold sources that bootstrap through each other, used at once from two threads, never deadlock.

``[vault, aws-sm, env]`` where the Vault token and the AWS keys both come from
the environment: the Vault source's token lookup walks past aws-sm, and
aws-sm's key lookup walks past Vault. When each source held its own lock while
resolving its credentials, one thread building aws-sm and another logging in
to Vault waited for each other forever (no deadline applies to a lock). Now
no source holds a lock while it resolves credentials. The GIL's switch
interval is shortened so the two threads interleave inside those sections.
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import pytest

from authchain import Chain
from tests.servers.moto_server import REGION, MotoServer
from tests.servers.openbao import OpenBao


@pytest.mark.parametrize("attempt", range(12))
@pytest.mark.usefixtures("fine_grained_switching")
def test_cold_sources_bootstrapping_through_each_other_do_not_deadlock(
    openbao: OpenBao, moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attempt: int
) -> None:
    tag = secrets.token_hex(5)
    vault_value, aws_value = (f"canary-{secrets.token_hex(10)}" for _ in range(2))
    openbao.put(f"t/{tag}/x", {"v": vault_value})
    moto.client("secretsmanager").create_secret(Name=f"lock-{tag}", SecretString=aws_value)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    keys = {"ACCESS_KEY": "AKIALOCKORDER", "SECRET_ACCESS_KEY": secrets.token_hex(20)}
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps(keys))
    path = tmp_path / "authchain.toml"
    path.write_text(
        f"""
order = ["vault", "sm", "env"]
[sources.vault]
type = "vault"
url = "{openbao.url}"
[sources.sm]
type = "aws-sm"
endpoint_url = "{moto.url}"
region = "{REGION}"
credentials = "AWS_CREDENTIALS"
[sources.env]
type = "env"
"""
    )
    chain = Chain.from_config(path)
    start = threading.Barrier(2)
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def read(ref: str) -> None:
        start.wait()
        try:
            results[ref] = chain.resolve(ref).get_secret_value()
        except BaseException as error:
            errors.append(error)

    refs = {f"aws-sm://lock-{tag}": aws_value, f"vault://secret/t/{tag}/x#v": vault_value}
    threads = [threading.Thread(target=read, args=(ref,), daemon=True) for ref in refs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "the two threads deadlocked"
    assert errors == []
    assert results == refs
    chain.close()
