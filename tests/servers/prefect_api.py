"""Prefect's own local API (SQLite) for the session, in a temporary PREFECT_HOME.

Started once (it costs seconds) and only when a test asks for it; every
file it writes is under ``home`` or next to ``database``, so the hygiene
tests can search all of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests._waiting import wait_for

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


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

    def rows(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """One read of the API's database (a new connection each time: no stale snapshot)."""
        with closing(sqlite3.connect(self.database)) as connection:
            return [tuple(row) for row in connection.execute(sql, tuple(parameters))]

    def task_runs(self, flow_run_id: object) -> list[tuple[str, str | None]]:
        """``(name, state_type)`` of the flow run's task runs recorded so far."""
        return [
            (str(name), None if state is None else str(state))
            for name, state in self.rows(
                "SELECT name, state_type FROM task_run WHERE replace(flow_run_id, '-', '') = ?",
                (str(flow_run_id).replace("-", ""),),
            )
        ]

    def wait_for_task_runs(self, flow_run_id: object, count: int, timeout: float = 60) -> list[str]:
        """The names of the flow run's task runs once ``count`` of them are recorded in a
        final state: Prefect records task runs from events, after the flow has returned."""
        runs = wait_for(
            lambda: self.task_runs(flow_run_id),
            until=lambda found: len(found) >= count and all(state in FINAL_STATES for _, state in found),
            timeout=timeout,
            what=f"{count} finished task run(s) of flow run {flow_run_id} in the task_run table",
        )
        return [name for name, _ in runs]


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
    with ps.temporary_settings(updates=updates), contextlib.ExitStack() as stack:
        with _test_timer_paused():
            stack.enter_context(prefect_test_harness(server_startup_timeout=180))
            _warm_up()
        url = ps.PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        database = Path(url.split(":///", 1)[1])
        yield PrefectAPI(home=home, database=database, api_url=str(ps.PREFECT_API_URL.value()))


@contextlib.contextmanager
def _test_timer_paused() -> Iterator[None]:
    """Pause pytest-timeout's alarm (its signal method) while the server starts.

    The server starts inside whichever test asks for it first (``make_backend`` asks from
    the test body), and on a loaded machine its start-up and migrations can take most of
    that test's timeout. The start-up has its own bound (``server_startup_timeout``); the
    test gets the rest of its own time back afterwards."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    if remaining:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, remaining)


def _warm_up() -> None:
    """Run one empty flow so Prefect configures its logging now, not inside a test
    (its dictConfig would drop handlers a test attached before its first flow)."""
    from prefect import flow

    @flow
    def warm_up() -> None:
        return None

    warm_up()
