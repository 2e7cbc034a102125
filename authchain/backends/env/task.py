"""``EnvVarSecret``, declared (``secret_tasks`` builds the class: see :mod:`authchain.backends._task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authchain.backends._task import KEY, SecretTaskDeclaration, TaskParameter, reference
from authchain.refs import SecretRef

__all__ = ["TASKS"]


def _reference(values: Mapping[str, Any], chain: object) -> SecretRef:
    return reference("env", str(values["name"]), values["key"])


TASKS = (
    SecretTaskDeclaration(
        class_name="EnvVarSecret",
        scheme="env",
        doc="An environment variable (exactly ``name``: no prefix).",
        parameters=(
            TaskParameter("name", str, "the variable's name, exactly as set (``DB_PASSWORD``)."),
            KEY,
        ),
        reference=_reference,
        example=(
            '>>> import os\n>>> os.environ["SECRET_TASKS_DOCTEST"] = "example"\n'
            ">>> EnvVarSecret(\"SECRET_TASKS_DOCTEST\")().get_secret_value()\n'example'"
        ),
    ),
)
