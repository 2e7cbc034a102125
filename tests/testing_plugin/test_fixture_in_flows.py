"""Inside a Prefect flow (a real local API), Secret tasks still see only the fixture's overrides."""

from __future__ import annotations

import secrets

import pytest

from authchain.testing import OverrideSource
from secret_tasks import AWSSecretsManagerSecret, EnvVarSecret, PrefectSecret, VaultSecret
from tests.servers.prefect_api import PrefectAPI

pytestmark = pytest.mark.timeout(180)


def test_tasks_in_a_flow_see_the_overrides_not_the_env_or_blocks(
    prefect_api: PrefectAPI, authchain_secrets: OverrideSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.blocks.system import Secret

    value, field, real = (f"canary-{secrets.token_hex(12)}" for _ in range(3))
    monkeypatch.setenv("FLOW_TOKEN", real)
    Secret(value=real).save("flow-token", overwrite=True)  # what PrefectSecret("FLOW_TOKEN") would read
    authchain_secrets["FLOW_TOKEN"] = value
    authchain_secrets["aws-sm://prod/db#password"] = field

    @flow
    def pipeline() -> list[str]:
        seen = [
            EnvVarSecret("FLOW_TOKEN")(),
            PrefectSecret("FLOW_TOKEN")(),
            VaultSecret("app/FLOW_TOKEN").submit().result(),
            AWSSecretsManagerSecret("prod/db", key="password", region="us-east-1").submit().result(),
        ]
        return [secret.get_secret_value() for secret in seen]

    assert pipeline() == [value, value, value, field]
