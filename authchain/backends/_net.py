"""What remote backends share about where a request goes and how long it may take.

A source that talks to a real service relaxes a check only for a loopback
endpoint (a test server, an emulator, a local tunnel: the TLS resource check
of Azure, plain-text gRPC for GCP), cuts each request's timeout to what is
left of the lookup's deadline, and follows a redirect only on the origin it
asked. One definition of each, so the backends agree.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from authchain._retry import time_left
from authchain.errors import BackendError

__all__ = ["is_loopback_host", "refuse_other_origin", "timeout_within_deadline"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``; brackets allowed)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def timeout_within_deadline(timeout: float) -> float:
    """``timeout``, shortened to what is left of the current lookup's deadline (at least 1 ms)."""
    left = time_left()
    return timeout if left is None else max(0.001, min(timeout, left))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number: no origin matches it
        port = None
    return scheme, (parts.hostname or "").lower(), port


def _shown(origin: tuple[str, str, int | None]) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port is None else f":{port}")


def refuse_other_origin(current: str, target: str, server: str, advice: str) -> None:
    """Raise unless a redirect from ``current`` to ``target`` stays on one origin (scheme, host, port).

    HTTP clients drop only ``Authorization`` when a redirect leaves the host (requests) or
    the domain (azure-core), and neither minds https → http: a credential in any other
    header or in the body (a login re-posted on 307/308) goes wherever the answer points.
    So a redirect elsewhere is an error, raised before the hop is sent; it says where the
    server pointed (scheme, host and port only, never a path or a credential) and ``advice``.
    """
    here, there = _origin(current), _origin(target)
    if here == there and None not in here:
        return
    downgrade = " (from https to plain http)" if here[0] == "https" and there[0] != "https" else ""
    raise BackendError(
        f"the {server} at {_shown(here)} redirected a request to {_shown(there)}{downgrade}, another "
        f"address; the request was not sent there (no credential follows a redirect to another address). "
        f"{advice}"
    )
