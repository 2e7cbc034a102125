"""The system keyring: the ``keyring`` source and references (``source.py``), the
keyring backend factory (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""

# What this package declares of itself (see authchain._declarations).
CLIENT_KIND = "keyring"
CLIENT_FACTORIES = ("keyring_backend",)
