"""HashiCorp Vault / OpenBao KV: the ``vault`` source and references (``source.py``),
the logged-in hvac client factory (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""

# What this package declares of itself (see authchain._declarations).
CLIENT_KIND = "vault"
CLIENT_FACTORIES = ("vault_client",)
# hvac logs its requests at DEBUG.
SDK_LOGGERS = ("hvac",)
