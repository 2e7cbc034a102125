"""A pytest plugin that fails the suite when a test reaches for a non-loopback address.

Tests may send traffic to this machine only. :func:`install` adds a ``sys.addaudithook``
hook that sees every ``socket.connect``/``socket.connect_ex``/``socket.sendto`` and every name
lookup (``socket.getaddrinfo``, ``socket.gethostbyname[_ex]``) made by Python code in this
process: to a destination that is not loopback it records the event (address, the test that
was running, a stack summary) and raises ``OSError`` so nothing is sent. Raising alone would
not do: the SDKs run requests in their own threads and turn errors into "no credentials
found" or a retry, which would hide the attempt; so the pytest hooks below fail the test
phase during which the attempt happened, and the session (for attempts outside any test).

Loopback: 127.0.0.0/8, ::1 (and IPv4-mapped 127.x), ``localhost`` and ``*.localhost``, the
unspecified address (Linux connects 0.0.0.0 and :: to this host), and every non-IP family
(``AF_UNIX`` paths, netlink). Name lookups of numeric addresses and of this host's own name
are allowed (they are answered locally; the connection that follows is checked).

Limits: the hook sees this process only. Dask ``LocalCluster`` workers, Prefect's server
subprocess and ``python -m authchain.cli`` children are other processes; they inherit the
metadata-probe variables of ``tests/_offline.py`` through ``os.environ`` but not this guard.
Native code that opens sockets itself (gRPC's C core and its resolver) raises no audit event.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
import threading
import traceback
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest

OUTSIDE_TESTS = "<outside any test: collection or session start/end>"

_CONNECT_EVENTS = frozenset({"socket.connect", "socket.sendto"})
_LOOKUP_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname"})
_EVENTS = _CONNECT_EVENTS | _LOOKUP_EVENTS
_INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)


@dataclass(frozen=True)
class Violation:
    """One blocked attempt: what, where to, during which test, from where in the code."""

    event: str
    address: str
    nodeid: str
    thread: str
    stack: str

    def describe(self) -> str:
        return (
            f"{self.event} to {self.address} during {self.nodeid} (thread {self.thread}); "
            f"blocked. Stack:\n{self.stack}"
        )


violations: list[Violation] = []
_lock = threading.Lock()
_state = {"current": OUTSIDE_TESTS, "installed": False, "reported": 0}
_own_names: frozenset[str] = frozenset()


def _host_text(host: object) -> str | None:
    if isinstance(host, bytes):
        return host.decode("ascii", "replace")
    return host if isinstance(host, str) else None


def is_loopback_host(host: object) -> bool:
    """Whether connecting to ``host`` stays on this machine (see the module docstring)."""
    text = _host_text(host)
    if text is None:
        return False
    name = text.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False  # a name other than localhost: connecting would look it up
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _lookup_is_local(host: object) -> bool:
    if host is None or host in ("", b""):
        return True
    text = _host_text(host)
    if text is None:
        return True  # not a name (an int, say): nothing to look up
    name = text.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
        return True  # numeric: answered without the network; the connection is checked
    except ValueError:
        pass
    return is_loopback_host(name) or name in _own_names


def _record(event: str, address: str) -> None:
    frames = traceback.extract_stack()[:-2]  # drop this function and the hook
    stack = "".join(traceback.format_list(frames[-12:]))
    violation = Violation(event, address, _state["current"], threading.current_thread().name, stack)
    with _lock:
        violations.append(violation)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _EVENTS:
        return
    if event in _CONNECT_EVENTS:
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) not in _INET_FAMILIES or not isinstance(address, tuple):
            return  # AF_UNIX paths, netlink, ...: local by construction
        if not address or is_loopback_host(address[0]):
            return
        shown = f"{_host_text(address[0])}:{address[1] if len(address) > 1 else '?'}"
        _record(event, shown)
        raise OSError(errno.ENETUNREACH, f"the test network guard blocked {event} to {shown}")
    host = args[0] if args else None
    if _lookup_is_local(host):
        return
    shown = str(_host_text(host))
    _record(event, shown)
    raise socket.gaierror(socket.EAI_NONAME, f"the test network guard blocked a lookup of {shown}")


def install() -> None:
    """Add the audit hook once per process (audit hooks cannot be removed)."""
    global _own_names
    if _state["installed"]:
        return
    names = {"localhost"}
    try:
        hostname = socket.gethostname()
        names |= {hostname.lower(), hostname.lower().split(".", 1)[0]}
    except OSError:
        pass
    _own_names = frozenset(names)
    _state["installed"] = True
    sys.addaudithook(_hook)


def installed() -> bool:
    return bool(_state["installed"])


def _unreported() -> list[Violation]:
    with _lock:
        new = violations[int(_state["reported"]) :]
        _state["reported"] = len(violations)
    return new


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    _unreported()  # attempts before this test were reported by the session
    _state["current"] = item.nodeid
    try:
        yield
    finally:
        _state["current"] = OUTSIDE_TESTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    new = [violation for violation in _unreported() if violation.nodeid == item.nodeid]
    if not new:
        return
    text = "\n\n".join(violation.describe() for violation in new)
    report.outcome = "failed"
    report.longrepr = (
        f"this test reached for an address off this machine ({len(new)} attempt(s)); "
        f"tests may use loopback only\n\n{text}"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not violations:
        return
    terminalreporter.section("network guard: attempts to leave this machine", sep="=", red=True)
    for violation in violations:
        terminalreporter.write_line(violation.describe())


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if violations and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
