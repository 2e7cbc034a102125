"""Tests never leave the machine: the metadata-probe variables and the network guard.

The guard's own tests run a tiny suite in a child pytest (``pytester.runpytest_subprocess``):
its hook is installed in that child, which blocks the attempt before any packet is sent, so
the child's session fails with the violation reported while nothing leaves this machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tests import _network_guard, _offline

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
CHILD_CONFTEST = """\
from tests import _network_guard
_network_guard.install()
pytest_plugins = ["tests._network_guard"]
"""


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    pytester.makeconftest(CHILD_CONFTEST)
    return pytester


def run_child(child: pytest.Pytester, source: str) -> pytest.RunResult:
    child.makepyfile(test_child=textwrap.dedent(source))
    return child.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)


# -- the variables ----------------------------------------------------------------------------


def test_the_session_sets_every_metadata_variable_exactly() -> None:
    for name, value in _offline.OFFLINE_ENV.items():
        assert os.environ.get(name) == value, name
    assert os.environ["NO_GCE_CHECK"] == "true", "google-auth compares with exactly 'true'"
    for name in ("GCE_METADATA_HOST", "GCE_METADATA_IP"):
        assert os.environ[name].startswith("127.0.0.1:")


def test_the_closed_port_is_closed() -> None:
    host, port = _offline.CLOSED_LOOPBACK.split(":")
    with socket.socket() as probe:
        probe.settimeout(5)
        assert probe.connect_ex((host, int(port))) != 0, "nothing may listen on the closed port"


def test_google_auth_read_the_variables_at_import() -> None:
    from google.auth.compute_engine import _metadata

    assert _metadata._NO_GCE_CHECK is True
    assert _metadata._GCE_METADATA_HOST == _offline.CLOSED_LOOPBACK


def test_child_processes_inherit_the_variables() -> None:
    names = list(_offline.OFFLINE_ENV)
    code = "import json, os, sys; print(json.dumps({n: os.environ.get(n) for n in sys.argv[1:]}))"
    done = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=60, check=True
    )
    import json

    assert json.loads(done.stdout) == _offline.OFFLINE_ENV


def test_sdk_defaults_without_credentials_stay_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 and google-auth with no credentials anywhere: no probe leaves (the guard would
    record it and fail this test), and they answer "no credentials" at once."""
    import botocore.session
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_")) and name != "AWS_EC2_METADATA_DISABLED":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("HOME", os.devnull)
    monkeypatch.setenv("CLOUDSDK_CONFIG", os.devnull)
    before = len(_network_guard.violations)
    assert botocore.session.Session().get_credentials() is None
    with pytest.raises(DefaultCredentialsError):
        google.auth.default()
    assert _network_guard.violations[before:] == []


# -- the guard --------------------------------------------------------------------------------


def test_the_guard_is_installed_in_this_session() -> None:
    assert _network_guard.installed()


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "::ffff:127.0.0.1",
        "0.0.0.0",  # noqa: S104 (a connect to it reaches this host)
    ],
)
def test_loopback_hosts(host: str) -> None:
    assert _network_guard.is_loopback_host(host)
    assert _network_guard.is_loopback_host(host.encode())


@pytest.mark.parametrize(
    "host",
    ["10.255.255.1", "169.254.169.254", "8.8.8.8", "2001:db8::1", "fe80::1%eth0", "example.com", "", None],
)
def test_other_hosts(host: str | None) -> None:
    assert not _network_guard.is_loopback_host(host)


LEAVES = """
import socket, threading

def test_quiet_neighbour():
    pass

def test_leaves():
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("10.255.255.1", 9))
    except OSError as error:  # swallowed, as an SDK would: the guard still fails the test
        print("swallowed:", error)
    finally:
        s.close()

def test_leaves_from_a_library_thread():
    def probe():
        try:
            socket.create_connection(("169.254.169.254", 80), timeout=2).close()
        except OSError:
            pass
    worker = threading.Thread(target=probe, name="sdk-probe")
    worker.start()
    worker.join(10)

def test_sends_a_datagram():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"x", ("192.0.2.1", 53))
        except OSError:
            pass

def test_looks_up_a_name():
    try:
        socket.getaddrinfo("metadata.google.internal", 80)
    except OSError:
        pass

def test_ipv6_out():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.connect(("2001:db8::1", 9))
    except OSError:
        pass
"""


def test_a_test_that_leaves_fails_with_the_violation_reported(child: pytest.Pytester) -> None:
    result = run_child(child, LEAVES)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=5)
    out = result.stdout.str()
    for nodeid, address in [
        ("test_child.py::test_leaves", "10.255.255.1:9"),
        ("test_child.py::test_leaves_from_a_library_thread", "169.254.169.254:80"),
        ("test_child.py::test_sends_a_datagram", "192.0.2.1:53"),
        ("test_child.py::test_looks_up_a_name", "metadata.google.internal"),
        ("test_child.py::test_ipv6_out", "2001:db8::1:9"),
    ]:
        assert f"to {address} during {nodeid}" in out, (nodeid, out[-4000:])
    assert "(thread sdk-probe)" in out
    assert "in probe" in out, "the stack summary names the function that connected"
    assert "swallowed: [Errno" in out or "network guard blocked" in out


def test_an_attempt_outside_any_test_fails_the_session(child: pytest.Pytester) -> None:
    child.makeconftest(
        CHILD_CONFTEST
        + textwrap.dedent(
            """
            import socket
            def pytest_sessionstart(session):
                try:
                    socket.create_connection(("10.255.255.1", 9), timeout=2)
                except OSError:
                    pass
            """
        )
    )
    result = run_child(child, "def test_fine():\n    pass\n")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "10.255.255.1:9 during <outside any test" in result.stdout.str()


LOOPBACK = """
import os, socket, tempfile, pytest

def serve(family, host):
    server = socket.socket(family)
    server.bind((host, 0))
    server.listen()
    return server

def test_ipv4_loopback():
    with serve(socket.AF_INET, "127.0.0.1") as server:
        port = server.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        socket.create_connection(("localhost", port), timeout=5).close()
        assert socket.getaddrinfo("localhost", port)
        assert socket.gethostbyname("localhost")

def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        server = serve(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no ::1 here")
    with server:
        port = server.getsockname()[1]
        with socket.socket(socket.AF_INET6) as s:
            s.settimeout(5)
            s.connect(("::1", port))

def test_unix_socket():
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "s")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(path)
            server.listen()
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)

def test_numeric_and_own_name_lookups_are_local():
    socket.getaddrinfo("10.255.255.1", 9)  # numeric: no network; a connect would be checked
    socket.getaddrinfo(None, 0)
    try:
        socket.getaddrinfo(socket.gethostname(), None)
    except socket.gaierror as error:
        assert "network guard" not in str(error)
"""


def test_loopback_connections_pass(child: pytest.Pytester) -> None:
    result = run_child(child, LOOPBACK)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-4000:]
    assert "network guard" not in result.stdout.str()


def test_the_guard_blocks_in_this_session_too() -> None:
    """In this very session: the attempt raises before anything is sent, and is recorded
    against this test (the record is then cleared, so the test itself passes)."""
    before = len(_network_guard.violations)
    failures: list[BaseException] = []

    def attempt() -> None:
        try:
            socket.create_connection(("10.255.255.1", 9), timeout=2)
        except OSError as error:
            failures.append(error)

    worker = threading.Thread(target=attempt)
    worker.start()
    worker.join(10)
    assert failures
    assert "network guard" in str(failures[0])
    new = _network_guard.violations[before:]
    assert [(v.address, v.nodeid) for v in new] == [
        ("10.255.255.1:9", "tests/test_network_guard.py::test_the_guard_blocks_in_this_session_too")
    ]
    del _network_guard.violations[before:]
    _network_guard._state["reported"] = len(_network_guard.violations)


# -- a loaded machine: a session server's start-up is not charged to the test that asked ----------


@pytest.mark.timeout(2)
def test_a_server_start_up_does_not_count_against_the_asking_tests_timeout() -> None:
    import time

    from tests.servers.prefect_api import _test_timer_paused

    with _test_timer_paused():
        time.sleep(3)  # longer than this test's timeout: only a paused alarm lets it pass
