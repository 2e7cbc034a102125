"""``DotenvSecret``, declared (``secret_tasks`` builds the class: see :mod:`authchain.backends._task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authchain.backends._task import SecretTaskDeclaration, TaskParameter, reference
from authchain.refs import SecretRef

__all__ = ["TASKS"]


def _reference(values: Mapping[str, Any], chain: object) -> SecretRef:
    return reference("dotenv", values["path"] or "", str(values["name"]))


TASKS = (
    SecretTaskDeclaration(
        class_name="DotenvSecret",
        scheme="dotenv",
        doc="A variable in a ``.env`` file (default: the configured or ``./.env`` file).",
        parameters=(
            TaskParameter("name", str, "the variable's name in the file."),
            TaskParameter(
                "path", str, "the ``.env`` file to read (default: the configured one, else ``./.env``)."
            ),
        ),
        reference=_reference,
    ),
)
