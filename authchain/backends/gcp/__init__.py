"""GCP Secret Manager: the ``gcp-sm`` source and references (``source.py``), the
google-auth credentials and Secret Manager client factories (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""
