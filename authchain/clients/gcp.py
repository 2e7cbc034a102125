"""Old home of the gcp client factory; it lives in :mod:`authchain.backends.gcp.client`.

Import the factories from :mod:`authchain.clients` (the documented path).
"""

from authchain.backends.gcp.client import explain_gcp, gcp_credentials, gcp_secret_manager_client

__all__ = ["explain_gcp", "gcp_credentials", "gcp_secret_manager_client"]
