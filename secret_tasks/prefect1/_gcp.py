"""Prefect 1's ``GCPSecret`` over the native :class:`secret_tasks.GCPSecretManagerSecret`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authchain.errors import ConfigError
from authchain.values import SecretValue
from secret_tasks import secrets as native
from secret_tasks.prefect1._task import SecretBase, defaults_from_attrs
from secret_tasks.prefect1._values import explicit_chain, text

__all__ = ["GCPSecret"]


class GCPSecret(SecretBase):
    """Prefect 1's ``GCPSecret``: one version of a Secret Manager secret, decoded as UTF-8 text.

    Args:
        project_id: the project holding the secret.
        secret_id: the secret's id.
        version_id: a version number or ``"latest"`` (the default).
        credentials: a service-account key (a dict, or its JSON text); default:
            ``GCP_CREDENTIALS`` through the chain, else Google's default credentials.
        **kwargs: Prefect 1 task arguments (see :class:`SecretBase`).
    """

    def __init__(
        self,
        project_id: str | int | None = None,
        secret_id: str | None = None,
        version_id: str | int = "latest",
        credentials: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.project_id = project_id
        self.secret_id = secret_id
        self.version_id = version_id
        self.credentials = credentials
        super().__init__(**kwargs)

    @defaults_from_attrs("project_id", "secret_id", "version_id", "credentials")
    def run(
        self,
        project_id: str | int | None = None,
        secret_id: str | None = None,
        version_id: str | int = "latest",
        credentials: Mapping[str, Any] | None = None,
    ) -> str:
        """The secret version's payload as a str.

        Args:
            project_id, secret_id, version_id, credentials: instead of the ones given at init.
        """
        if project_id is None:
            raise ValueError("A GCP project ID must be provided.")
        if secret_id is None:
            raise ValueError("A GCP Secret Manager secret ID must be provided.")
        options: dict[str, Any] = {}
        if credentials is not None:
            if not isinstance(credentials, (Mapping, str, SecretValue)):
                raise ConfigError(
                    f"{type(self).__name__}: credentials must be a service-account key "
                    f"(a dict or its JSON text), not {type(credentials).__name__}"
                )
            options = {
                "source_options": {"project": str(project_id), "credentials": "GCP_CREDENTIALS"},
                "chain": explicit_chain({"GCP_CREDENTIALS": text(credentials)}),
            }
        task = native.GCPSecretManagerSecret(
            str(secret_id), project=str(project_id), version=str(version_id), **options
        )
        return str(text(task.run()))
