"""``authchain run`` hands over ordinary URLs untouched, and does not scan for them.

``DATABASE_URL=postgres://app@db/app`` looks like ``scheme://...``, so ``run``
asks whether ``postgres`` is a source type. authchain's own types are read
from its own metadata at no cost; any other name used to mean a scan of
every installed distribution's entry points (tens of milliseconds, growing
with the environment) in every process that saw such a variable. Common URL
schemes are now never source types (a plugin cannot claim one), so they are
plain text without a scan; a scheme that is neither (``foo://``) is still
looked up among plugins, at most once per process.

The command runs as a real subprocess; the scans are counted by wrapping
``importlib.metadata.entry_points`` in that process before authchain starts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from authchain import _registry
from authchain._run import build_environment
from tests.cli_run._helpers import clean_environment

COUNTING_CLI = """
import atexit, importlib.metadata, sys
scans = []
real = importlib.metadata.entry_points
def counting(*args, **kwargs):
    scans.append(1)
    return real(*args, **kwargs)
importlib.metadata.entry_points = counting
atexit.register(lambda: sys.stderr.write(f"ENTRY-POINT-SCANS={len(scans)}\\n"))
from authchain.cli import main
sys.exit(main(sys.argv[1:]))
"""

SHOW = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('T_')}))"

PLAIN = {
    "T_DATABASE_URL": "postgres://app@db.internal:5432/app",
    "T_PG": "postgresql://app@db/app?sslmode=require",
    "T_MYSQL": "mysql://root@127.0.0.1/db",
    "T_REDIS": "redis://cache:6379/0",
    "T_API": "https://api.example.invalid/v1",
    "T_BUCKET": "s3://bucket/key",
    "T_AMQP": "amqp://guest@mq//",
}


def run_counting(folder: Path, env: dict[str, str]) -> tuple[dict[str, str], int, str]:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", COUNTING_CLI, "run", "--", sys.executable, "-c", SHOW],
        cwd=folder,
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    scans = [line for line in done.stderr.splitlines() if line.startswith("ENTRY-POINT-SCANS=")]
    return json.loads(done.stdout), int(scans[-1].partition("=")[2]), done.stderr


def test_common_urls_reach_the_child_unchanged_without_a_scan(tmp_path: Path) -> None:
    seen, scans, _ = run_counting(tmp_path, PLAIN)
    assert seen == PLAIN
    assert scans == 0, "a common URL scheme made the process scan every distribution's entry points"


def test_unknown_schemes_pass_through_and_are_looked_up_at_most_once(tmp_path: Path) -> None:
    unknown = {f"T_X{n}": f"nosuchscheme{n}://host/{n}" for n in range(5)}
    seen, scans, _ = run_counting(tmp_path, {**unknown, **PLAIN})
    assert seen == {**unknown, **PLAIN}
    assert scans == 1, "an unknown scheme is looked up (so the counter sees scans), once"


def test_common_url_schemes_are_never_source_types_and_cost_no_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process: the scan itself is not even asked for."""

    def no_scan() -> dict[str, str]:
        raise AssertionError("scanned every distribution for a common URL scheme")

    monkeypatch.setattr(_registry, "_entry_points", no_scan)
    monkeypatch.setattr(
        _registry, "_own_entry_points", lambda: {"env": "authchain.backends.env.source:EnvSource"}
    )
    for scheme in ("postgres", "postgresql", "mysql", "redis", "rediss", "https", "http", "s3", "gs", "amqp"):
        assert not _registry.is_registered(scheme)
    environ = dict(PLAIN)
    built = build_environment(environ, lambda: pytest.fail("no variable needs a chain"))
    assert built == environ


def test_a_plugin_cannot_claim_a_common_url_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    """Otherwise ``postgres://`` values would depend on what happens to be installed."""
    monkeypatch.setattr(
        _registry, "_own_entry_points", lambda: {"env": "authchain.backends.env.source:EnvSource"}
    )
    monkeypatch.setattr(_registry, "_metadata_installed", lambda: True)
    monkeypatch.setattr(_registry, "_errors", {})

    class Entry:
        def __init__(self, name: str, value: str) -> None:
            self.name, self.value = name, value

    monkeypatch.setattr(
        "importlib.metadata.entry_points",
        lambda group: [
            Entry("postgres", "evil.module:Pg"),
            Entry("extra", "authchain.backends.env.source:EnvSource"),
        ],
    )
    _registry._entry_points.cache_clear()
    try:
        types = _registry.registered_types()
        assert "postgres" not in types
        assert "extra" in types
        assert "common URL scheme" in _registry.plugin_errors()["postgres"]
    finally:
        _registry._entry_points.cache_clear()
