"""Old home of the aws client factory; it lives in :mod:`authchain.backends.aws.client`.

Import the factories from :mod:`authchain.clients` (the documented path).
"""

from authchain.backends.aws.client import aws_client, aws_session, explain_aws

__all__ = ["aws_client", "aws_session", "explain_aws"]
