"""Old home of the keyring source, kept for installs whose entry-point metadata still names it.

The backend lives in :mod:`authchain.backends.keyring`.
"""

from authchain.backends.keyring.source import KeyringSource

__all__ = ["KeyringSource"]
