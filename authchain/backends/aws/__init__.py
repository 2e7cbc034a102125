"""AWS Secrets Manager and SSM Parameter Store: the ``aws-sm`` and ``aws-ssm`` sources
and references (``source.py``), the boto3 session and client factories (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""

# What this package declares of itself (see authchain._declarations).
CLIENT_KIND = "aws"
CLIENT_FACTORIES = ("aws_client", "aws_session")
# botocore logs each signed request and each response body at DEBUG.
SDK_LOGGERS = ("botocore", "boto3", "s3transfer")
