"""``AWSSecretsManagerSecret`` and ``AWSParameterStoreSecret``, declared (``secret_tasks``
builds the classes: see :mod:`authchain.backends._task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authchain.backends._task import KEY, SecretTaskDeclaration, TaskParameter, reference
from authchain.refs import SecretRef

__all__ = ["TASKS"]

_REGION = TaskParameter("region", str, "the region to ask (default: the source's, else the SDK's).")


def _secrets_manager(values: Mapping[str, Any], chain: object) -> SecretRef:
    return reference(
        "aws-sm",
        str(values["secret_id"]),
        values["key"],
        stage=values["stage"],
        version_id=values["version_id"],
        region=values["region"],
    )


def _parameter_store(values: Mapping[str, Any], chain: object) -> SecretRef:
    return reference(
        "aws-ssm", str(values["name"]), values["key"], version=values["version"], region=values["region"]
    )


TASKS = (
    SecretTaskDeclaration(
        class_name="AWSSecretsManagerSecret",
        scheme="aws-sm",
        doc="An AWS Secrets Manager secret: ``aws-sm://SECRET_ID_OR_ARN[#KEY]``.",
        parameters=(
            TaskParameter("secret_id", str, "the secret's name (``prod/db``) or ARN."),
            KEY,
            TaskParameter("stage", str, "a version stage (``AWSPREVIOUS``; default ``AWSCURRENT``)."),
            TaskParameter("version_id", str, "a version id (instead of ``stage``)."),
            _REGION,
        ),
        reference=_secrets_manager,
    ),
    SecretTaskDeclaration(
        class_name="AWSParameterStoreSecret",
        scheme="aws-ssm",
        doc="An AWS SSM parameter (SecureString decrypted): ``aws-ssm:///PATH/NAME``.",
        parameters=(
            TaskParameter(
                "name", str, "the parameter's name (``/app/db/password``; the leading ``/`` is part of it)."
            ),
            KEY,
            TaskParameter("version", int, "a parameter version (default: the latest)."),
            _REGION,
        ),
        reference=_parameter_store,
    ),
)
