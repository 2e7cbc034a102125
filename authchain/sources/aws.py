"""Old home of the aws source, kept for installs whose entry-point metadata still names it.

The backend lives in :mod:`authchain.backends.aws`.
"""

from authchain.backends.aws.source import AWSParameterStoreSource, AWSSecretsManagerSource

__all__ = ["AWSParameterStoreSource", "AWSSecretsManagerSource"]
