"""A task of your own on the secret_tasks base, reusing a client factory.

    python examples/tasks/custom_task.py /app/config

The task is configured at __init__ and overridden at run; the boto3 client is
built at run time (never in __init__) by ``aws_client``, which finds its
credentials through the chain (explicit → AWS_CREDENTIALS → boto3's own
chain) and caches the client per process.
"""

from __future__ import annotations

import sys
from typing import Any

from authchain.clients import aws_client
from secret_tasks import Task, defaults_from_attrs


class CountParameters(Task):
    """Count the SSM parameters under a path."""

    def __init__(self, path: str | None = None, region_name: str | None = None, **kwargs: Any) -> None:
        self.path = path
        self.region_name = region_name
        super().__init__(**kwargs)

    @defaults_from_attrs("path", "region_name", required=("path",))
    def run(self, path: str | None = None, region_name: str | None = None) -> int:
        ssm = aws_client("ssm", region_name=region_name)
        pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True)
        count = sum(len(page["Parameters"]) for page in pages)
        self.logger.info("%d parameters under %s", count, path)
        return count


if __name__ == "__main__":
    print(CountParameters(region_name="us-east-1")(path=sys.argv[1]))
