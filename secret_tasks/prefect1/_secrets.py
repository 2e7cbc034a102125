"""Prefect 1's ``PrefectSecret``, ``EnvVarSecret`` and ``VaultSecret`` over the native tasks.

Each ``run`` maps its Prefect 1 arguments, asks a native Secret task (so the
chain, references, caching and masking apply) and hands back what Prefect 1
returned: a plain value, JSON decoded, ``cast`` applied.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from authchain._chain import Chain
from authchain.backends.vault.source import VaultKey, VaultSource
from authchain.errors import SecretNotFound
from secret_tasks import secrets as native
from secret_tasks.prefect1._task import SecretBase, defaults_from_attrs
from secret_tasks.prefect1._values import (
    Prefect1SecretKeyError,
    Prefect1SecretNotFound,
    explicit_chain,
    parsed,
    text,
)

__all__ = ["EnvVarSecret", "PrefectSecret", "VaultSecret"]


class PrefectSecret(SecretBase):
    """Prefect 1's ``PrefectSecret``: a secret by name, JSON decoded.

    Reads, in order, ``PREFECT__CONTEXT__SECRETS__<NAME>``, the
    ``[context.secrets]`` table of the Prefect 1 user config
    (``PREFECT__USER_CONFIG_PATH``, else ``~/.prefect/config.toml``) and,
    inside a Prefect 3 run, the Secret block named after the name
    (``DB_PASSWORD`` → ``db-password``): the native
    :class:`secret_tasks.PrefectSecret`.

    Args:
        name: the secret's name, also the task's name (as in Prefect 1).
        **kwargs: Prefect 1 task arguments (see :class:`SecretBase`).

    Raises (at run):
        ValueError: no name; or the secret is missing (a ``Prefect1SecretNotFound``,
            also an authchain ``SecretNotFound``, listing the places asked).
    """

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        self.secret_name = name
        super().__init__(name=name, **kwargs)

    def run(self, name: str | None = None) -> Any:
        """The secret's value: a JSON document decoded, any other text as it is.

        Args:
            name: the secret to read instead of the one named at init.
        """
        if name is None:
            name = self.secret_name
        if name is None:
            raise ValueError("A secret name must be provided.")
        try:
            value = native.PrefectSecret(name).run()
        except SecretNotFound as error:
            raise Prefect1SecretNotFound.from_error(error, f'Local Secret "{name}" was not found.') from None
        return parsed(value)


class EnvVarSecret(PrefectSecret):
    """Prefect 1's ``EnvVarSecret``: an environment variable, ``None`` when it is not set.

    Args:
        name: the variable's name, also the task's name.
        cast: called on the value when there is one (``int``, a date parser, ...).
        raise_if_missing: raise ``ValueError`` instead of returning ``None``.
        **kwargs: Prefect 1 task arguments (see :class:`SecretBase`).
    """

    def __init__(
        self,
        name: str | None = None,
        cast: Callable[[Any], Any] | None = None,
        raise_if_missing: bool = False,
        **kwargs: Any,
    ) -> None:
        self.cast = cast
        self.raise_if_missing = raise_if_missing
        super().__init__(name=name, **kwargs)

    def run(self, name: str | None = None) -> Any:
        """The variable's value (``cast`` applied), or None when unset and not ``raise_if_missing``.

        Args:
            name: the variable to read instead of the one named at init.
        """
        if name is None:
            name = self.secret_name
        if name is None:
            raise ValueError("A secret name must be provided.")
        if self.raise_if_missing:
            try:
                found = native.EnvVarSecret(name).run()
            except SecretNotFound as error:
                raise Prefect1SecretNotFound.from_error(
                    error, f"Environment variable not set: {name}"
                ) from None
        else:
            found = native.EnvVarSecret(name, default=None).run()
        value = text(found)
        if value is not None and self.cast is not None:
            value = self.cast(value)
        return value


_VAULT_PATH = re.compile(r"^(?P<mount_point>[^/]+)/(?P<path>.+)$")
_KUBE_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


class VaultSecret(SecretBase):
    """Prefect 1's ``VaultSecret``: the whole KV v2 secret at ``"<mount_point>/<path>"``, as a dict.

    The server is ``VAULT_ADDR`` (or ``vault_addr``); the credentials are the
    Prefect 1 secret ``vault_credentials_secret`` (read as :class:`PrefectSecret`
    reads it) in one of Prefect 1's shapes: ``{"VAULT_TOKEN": ...}``,
    ``{"VAULT_ROLE_ID": ..., "VAULT_SECRET_ID": ...}`` or
    ``{"VAULT_KUBE_AUTH_ROLE": ..., "VAULT_KUBE_AUTH_PATH": ...,
    "VAULT_KUBE_TOKEN_FILE": ...}``. The read goes through authchain's vault
    source (masking, retries, path checks); unlike the native
    :class:`secret_tasks.VaultSecret`, the mount is part of ``name`` and the
    whole secret is returned, never one field of it.

    Args:
        name: ``"<mount_point>/<path>"`` (``"secret/app/db"``), also the task's name.
        vault_credentials_secret: the Prefect 1 secret holding the credentials.
        **kwargs: Prefect 1 task arguments (see :class:`SecretBase`).
    """

    def __init__(
        self,
        name: str,
        vault_credentials_secret: str = "VAULT_CREDENTIALS",  # noqa: S107 - a name
        **kwargs: Any,
    ) -> None:
        self.vault_credentials_secret = vault_credentials_secret
        kwargs["name"] = name
        super().__init__(**kwargs)

    @defaults_from_attrs("name")
    def run(self, name: str | None = None) -> Any:
        """The secret's key/value data as a dict.

        Args:
            name: ``"<mount_point>/<path>"`` to read instead of the one given at init.

        Raises:
            ValueError: no ``VAULT_ADDR``; credentials of no supported shape; a name
                that is not ``<mount_point>/<path>``; the credentials secret missing.
            KeyError: no secret at that path (also an authchain ``SecretNotFound``).
            authchain.BackendError: the server refused the login or the read.
        """
        url = os.environ.get("VAULT_ADDR") or os.environ.get("vault_addr")  # noqa: SIM112 - Prefect 1 read both
        if not url:
            raise ValueError(
                'VAULT_ADDR url var not found. Either "VAULT_ADDR" or "vault_addr" env var required.'
            )
        credentials = PrefectSecret(self.vault_credentials_secret).run()
        settings, values = _vault_auth(credentials)
        match = _VAULT_PATH.fullmatch(str(name))
        if match is None:
            raise ValueError(f'Invalid secret path: {name}.  Expected: "<mount_point>/<path>"')
        source = WholeSecretVaultSource.from_settings(
            "vault",
            {"url": url, "mount": match["mount_point"], "kv_version": 2, **settings},
            where=f"{type(self).__name__}({self.vault_credentials_secret})",
        )
        source.use_credentials(explicit_chain(values))
        chain = Chain([source], cache_ttl=0)
        try:
            value = native.ChainSecret(match["path"], chain=chain).run()
        except SecretNotFound as error:
            raise Prefect1SecretKeyError.from_error(error, f"Secret not found: {name}") from None
        finally:
            chain.close()
        return parsed(value)


def _vault_auth(credentials: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Prefect 1's ``VAULT_CREDENTIALS`` shapes → vault source settings and the values they name."""
    found = credentials if isinstance(credentials, Mapping) else {}
    if "VAULT_TOKEN" in found:
        return {"auth": "token", "token": "VAULT_TOKEN"}, {"VAULT_TOKEN": found["VAULT_TOKEN"]}
    if "VAULT_ROLE_ID" in found and "VAULT_SECRET_ID" in found:
        settings = {"auth": "approle", "role_id": "VAULT_ROLE_ID", "secret_id": "VAULT_SECRET_ID"}
        return settings, {key: found[key] for key in ("VAULT_ROLE_ID", "VAULT_SECRET_ID")}
    if "VAULT_KUBE_AUTH_ROLE" in found and "VAULT_KUBE_AUTH_PATH" in found:
        settings = {
            "auth": "kubernetes",
            "role": str(found["VAULT_KUBE_AUTH_ROLE"]),
            "auth_mount": str(found["VAULT_KUBE_AUTH_PATH"]),
            "jwt_path": str(found.get("VAULT_KUBE_TOKEN_FILE", _KUBE_TOKEN_FILE)),
        }
        return settings, {}
    raise ValueError(
        "Unable to authenticate with vault service.  Supported methods: token, appRole and kubernetesRole"
    )


class WholeSecretVaultSource(VaultSource):
    """The vault source, reading a name as the whole secret (Prefect 1 returned all its fields)."""

    def key_for(self, name: str) -> Any:
        key: VaultKey = super().key_for(name)  # type: ignore[assignment]  # a VaultKey, typed as Key
        return VaultKey(key.mount, key.path, key.kv_version, key.version, fields=(), whole_if_missing=True)
