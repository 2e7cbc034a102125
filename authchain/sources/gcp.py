"""Old home of the gcp source, kept for installs whose entry-point metadata still names it.

The backend lives in :mod:`authchain.backends.gcp`.
"""

from authchain.backends.gcp.source import GCPSecretManagerSource

__all__ = ["GCPSecretManagerSource"]
