"""examples/dask runs as a user would run it, against the session's servers.

The example starts its own temporary LocalCluster (DaskTaskRunner with the
``authchain.dask`` preload), so this checks the preload path end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from authchain.testing import canary
from tests.secret_tasks.test_prefect_flows import leaks
from tests.servers.moto_server import MotoServer
from tests.servers.openbao import OpenBao
from tests.servers.prefect_api import PrefectAPI

pytestmark = pytest.mark.timeout(180)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dask" / "reports_on_dask.py"


def test_reports_on_dask_example(
    openbao: OpenBao, moto: MotoServer, prefect_api: PrefectAPI, tmp_path: Path
) -> None:
    pytest.importorskip("prefect_dask", reason="needs prefect-dask")
    passwords = [canary(), canary()]
    for index, password in enumerate(passwords):
        openbao.put(f"t/example/db{index}", {"password": password})
    references = [f"vault://secret/t/example/db{day % 2}#password" for day in range(6)]
    moto.client("s3").create_bucket(Bucket="example-reports")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHCHAIN_", "PREFECT_"))}
    environment.update(
        {
            "VAULT_ADDR": openbao.url,
            "VAULT_TOKEN": openbao.tokens["reader"],
            "PREFECT_API_URL": prefect_api.api_url,
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "HOME": str(tmp_path),
        }
    )
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "example-reports", *references],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert result.stdout.decode().strip().endswith("wrote 6 reports to s3://example-reports/reports/")
    s3 = moto.client("s3")
    for day in range(6):
        body = s3.get_object(Bucket="example-reports", Key=f"reports/day-{day}.txt")["Body"].read().decode()
        assert body.endswith(f"a password of {len(passwords[day % 2])} chars")
    for password in passwords:
        assert not leaks(password, result.stdout + result.stderr)
    assert b"Run preload setup: authchain.dask" in result.stderr, "the workers loaded the preload"
    assert b"Starting temporary server" not in result.stderr, "every process used the session's API"
