"""Azure Key Vault: the ``azure-kv`` source and references (``source.py``), the
azure-identity credential and ``SecretClient`` factories (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""
