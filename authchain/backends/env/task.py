"""``EnvVarSecret``, declared (``secret_tasks`` builds the class: see :mod:`authchain.backends._task`)."""

from __future__ import annotations

from authchain.backends._task import KEY, SecretTaskDeclaration, TaskParameter

__all__ = ["TASKS"]


TASKS = (
    SecretTaskDeclaration(
        class_name="EnvVarSecret",
        scheme="env",
        doc="An environment variable (exactly ``name``: no prefix).",
        parameters=(
            TaskParameter("name", str, "the variable's name, exactly as set (``DB_PASSWORD``)."),
            KEY,
        ),
        example=(
            '>>> import os\n>>> os.environ["SECRET_TASKS_DOCTEST"] = "example"\n'
            ">>> EnvVarSecret(\"SECRET_TASKS_DOCTEST\")().get_secret_value()\n'example'"
        ),
    ),
)
