"""Old home of the keyring client factory; it lives in :mod:`authchain.backends.keyring.client`.

Import the factories from :mod:`authchain.clients` (the documented path).
"""

from authchain.backends.keyring.client import explain_keyring, keyring_backend

__all__ = ["explain_keyring", "keyring_backend"]
