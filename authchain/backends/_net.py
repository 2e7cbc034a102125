"""What remote backends share about where a request goes and how long it may take.

A source that talks to a real service relaxes a check only for a loopback
endpoint (a test server, an emulator, a local tunnel: the TLS resource check
of Azure, plain-text gRPC for GCP), and cuts each request's timeout to what is
left of the lookup's deadline. One definition of each, so the backends agree.
"""

from __future__ import annotations

import ipaddress

from authchain._retry import time_left

__all__ = ["is_loopback_host", "timeout_within_deadline"]


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
