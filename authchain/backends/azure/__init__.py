"""Azure Key Vault: the ``azure-kv`` source and references (``source.py``), the
azure-identity credential and ``SecretClient`` factories (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""

# What this package declares of itself (see authchain._declarations).
CLIENT_KIND = "azure"
CLIENT_FACTORIES = ("azure_credential", "azure_secret_client")
# azure-core's HTTP policies and msal log requests and token exchanges at DEBUG.
SDK_LOGGERS = ("azure", "msal")
