"""Old home of the vault client factory; it lives in :mod:`authchain.backends.vault.client`.

Import the factories from :mod:`authchain.clients` (the documented path).
"""

from authchain.backends.vault.client import explain_vault, vault_client

__all__ = ["explain_vault", "vault_client"]
