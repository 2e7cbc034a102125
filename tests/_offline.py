"""The one place that keeps the SDKs' cloud-metadata probes on this machine.

Without credentials, boto3 asks the EC2 instance metadata service, ``google.auth.default()``
checks for a GCE metadata server, and azure-identity's managed identity asks its pod-identity
authority: all of them at addresses off this machine (169.254.169.254, metadata.google.internal).
Tests send traffic to loopback only, so these variables turn the probes off or point them at
a closed port on 127.0.0.1 (a refused connection is immediate; a dropped one costs seconds).

They are read when the SDK module is imported (google-auth reads ``NO_GCE_CHECK`` in
``google.auth.compute_engine._metadata`` at import and compares it with exactly ``"true"``),
so :func:`apply` runs before any SDK import: at the top of ``tests/conftest.py``, in the
benchmarks' harness and in the examples' environment. Child processes (Prefect's server,
Dask workers, ``python -m authchain.cli``) inherit ``os.environ`` and so get them too.

A test that exercises "the client library's own default" points these variables at a local
fake with ``monkeypatch.setenv`` instead (and un-does it at its end).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# Port 9 (discard) is privileged and not served here: connecting is refused at once.
CLOSED_LOOPBACK = "127.0.0.1:9"

OFFLINE_ENV: dict[str, str] = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_GCE_CHECK": "true",  # exactly lower-case: google-auth compares with "true"
    "GCE_METADATA_HOST": CLOSED_LOOPBACK,
    "GCE_METADATA_ROOT": CLOSED_LOOPBACK,  # the older name of GCE_METADATA_HOST
    "GCE_METADATA_IP": CLOSED_LOOPBACK,
    "AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://{CLOSED_LOOPBACK}",
}


def apply(environ: MutableMapping[str, str] | None = None) -> None:
    """Set every variable in :data:`OFFLINE_ENV` (overriding what the shell had: a value
    such as ``NO_GCE_CHECK=True`` would silently not count)."""
    target = os.environ if environ is None else environ
    target.update(OFFLINE_ENV)
