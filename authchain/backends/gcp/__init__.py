"""GCP Secret Manager: the ``gcp-sm`` source and references (``source.py``), the
google-auth credentials and Secret Manager client factories (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""

# What this package declares of itself (see authchain._declarations).
CLIENT_KIND = "gcp"
CLIENT_FACTORIES = ("gcp_credentials", "gcp_secret_manager_client")
# grpc, google-auth and the API core log requests and token exchanges at DEBUG.
SDK_LOGGERS = (
    "grpc",
    "google.auth",
    "google.oauth2",
    "google.api_core",
    "google.cloud",
    "google_auth_httplib2",
)
