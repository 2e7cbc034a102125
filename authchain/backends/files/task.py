"""``FilesSecret``, declared (``secret_tasks`` builds the class: see :mod:`authchain.backends._task`)."""

from __future__ import annotations

from authchain.backends._task import KEY, SecretTaskDeclaration, TaskParameter

__all__ = ["TASKS"]


TASKS = (
    SecretTaskDeclaration(
        class_name="FilesSecret",
        scheme="files",
        doc=(
            "A mounted secret file (``/run/secrets``, a Kubernetes Secret volume, "
            "``$CREDENTIALS_DIRECTORY``).\n\n"
            "``name`` is the file's name exactly (no ``prefix`` or ``name_transform``),\n"
            "looked up in the directories of the configured ``files`` source, else the\n"
            "platform's; it never leaves them (no absolute path, no ``..``)."
        ),
        parameters=(
            TaskParameter("name", str, "the file's name in the secrets directory (``db_password``)."),
            KEY,
        ),
        shared_docs=(
            (
                "source_options",
                "settings of a dedicated ``files`` source, used instead of the configured one "
                '(``{"path": "/etc/app-secrets"}``).',
            ),
        ),
    ),
)
