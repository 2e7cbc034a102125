"""AWS Secrets Manager and SSM Parameter Store: the ``aws-sm`` and ``aws-ssm`` sources
and references (``source.py``), the boto3 session and client factories (``client.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""
