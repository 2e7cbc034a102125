"""HashiCorp Vault / OpenBao KV: the ``vault`` source and references (``source.py``),
the logged-in hvac client factory (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""
