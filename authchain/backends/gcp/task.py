"""``GCPSecretManagerSecret``, declared (``secret_tasks`` builds the class: see
:mod:`authchain.backends._task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authchain.backends._task import KEY, SecretTaskDeclaration, TaskParameter, reference
from authchain.errors import ConfigError
from authchain.refs import SecretRef

__all__ = ["TASKS"]


def _reference(values: Mapping[str, Any], chain: object) -> SecretRef:
    project, location = values["project"], values["location"]
    path = f"{values['secret']}/versions/{values['version']}"
    if location and not project:
        raise ConfigError(
            f"GCPSecretManagerSecret: location={location!r} needs project= too "
            "(a regional reference names both: projects/P/locations/L/secrets/S)"
        )
    if project:
        region = f"/locations/{location}" if location else ""
        path = f"projects/{project}{region}/secrets/{path}"
    return reference("gcp-sm", path, values["key"])


TASKS = (
    SecretTaskDeclaration(
        class_name="GCPSecretManagerSecret",
        scheme="gcp-sm",
        doc=(
            "A GCP Secret Manager secret version: ``gcp-sm://projects/P[/locations/L]/secrets/S/versions/V``."
        ),
        parameters=(
            TaskParameter("secret", str, "the secret's id (``db-password``)."),
            TaskParameter("project", str, "the project (default: the source's, else the SDK's)."),
            TaskParameter(
                "location",
                str,
                "the region of a regional secret (``europe-west4``; needs ``project``). "
                "Default: the source's ``location``, else a global secret.",
            ),
            TaskParameter("version", str, "a version number or ``latest`` (the default).", "latest"),
            KEY,
        ),
        reference=_reference,
    ),
)
