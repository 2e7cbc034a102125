"""Old home of the vault source, kept for installs whose entry-point metadata still names it.

The backend lives in :mod:`authchain.backends.vault`.
"""

from authchain.backends.vault.source import VaultSource

__all__ = ["VaultSource"]
