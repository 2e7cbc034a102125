"""Old home of the env source, kept for installs whose entry-point metadata still names it.

The backend lives in :mod:`authchain.backends.env`.
"""

from authchain.backends.env.source import EnvSource

__all__ = ["EnvSource"]
