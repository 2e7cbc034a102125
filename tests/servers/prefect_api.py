"""Prefect's own local API (SQLite) for the session, in a temporary PREFECT_HOME.

Started once (it costs seconds) and only when a test asks for it; every
file it writes is under ``home`` or next to ``database``, so the hygiene
tests can search all of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class PrefectAPI:
    home: Path
    database: Path
    api_url: str

    def files(self) -> list[Path]:
        """Every file the API and the flows wrote: PREFECT_HOME and the database files."""
        found = [path for path in self.home.rglob("*") if path.is_file()]
        found += [path for path in self.database.parent.glob(self.database.name + "*") if path.is_file()]
        return found


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectAPI]:
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import prefect.settings as ps
    from prefect.testing.utilities import prefect_test_harness

    updates = {
        ps.PREFECT_HOME: str(home),
        ps.PREFECT_LOCAL_STORAGE_PATH: str(home / "storage"),
        ps.PREFECT_SERVER_ANALYTICS_ENABLED: False,
        ps.PREFECT_LOGGING_TO_API_BATCH_INTERVAL: 0.3,
    }
    with ps.temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=180):
        _warm_up()
        url = ps.PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        database = Path(url.split(":///", 1)[1])
        yield PrefectAPI(home=home, database=database, api_url=str(ps.PREFECT_API_URL.value()))


def _warm_up() -> None:
    """Run one empty flow so Prefect configures its logging now, not inside a test
    (its dictConfig would drop handlers a test attached before its first flow)."""
    from prefect import flow

    @flow
    def warm_up() -> None:
        return None

    warm_up()
