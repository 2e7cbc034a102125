"""The system keyring: the ``keyring`` source and references (``source.py``), the
keyring backend factory (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""
