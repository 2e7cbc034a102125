"""``VaultSecret``, declared (``secret_tasks`` builds the class: see :mod:`authchain.backends._task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authchain.backends._task import SecretTaskDeclaration, TaskParameter, reference
from authchain.refs import SecretRef

__all__ = ["TASKS"]


def _reference(values: Mapping[str, Any], chain: object) -> SecretRef:
    location = f"{str(values['mount']).strip('/')}/{str(values['path']).strip('/')}"
    return reference("vault", location, values["key"], kv=values["kv_version"], version=values["version"])


TASKS = (
    SecretTaskDeclaration(
        class_name="VaultSecret",
        scheme="vault",
        doc=(
            "A Vault / OpenBao KV secret: ``vault://MOUNT/PATH[#KEY]``.\n\n"
            "``mount`` and ``path`` are written as users write them: ``/secret/`` and\n"
            "``/app/db`` mean ``secret`` and ``app/db`` (edge slashes are dropped, as\n"
            "hvac does); an empty inner segment (``a//b``), ``.`` or ``..`` is a ``ConfigError``."
        ),
        parameters=(
            TaskParameter("path", str, "the secret's path inside the mount (``app/db``)."),
            TaskParameter(
                "key",
                str,
                "the field of the secret to return (default: the field named like the path's "
                "last segment, else ``value``, else the whole secret as JSON).",
            ),
            TaskParameter("mount", str, "the KV mount (default ``secret``).", "secret"),
            TaskParameter("version", int, "a KV v2 version number (default: the latest)."),
            TaskParameter(
                "kv_version", int, "1 or 2 (default: the configured source's for its mount, else 2)."
            ),
        ),
        reference=_reference,
    ),
)
