"""One thin Secret task per backend, plus ``ChainSecret``. No backend logic lives here:
each task turns its settings into a reference (or a one-source chain) and asks
authchain, so caching, retries, masking and error messages are the chain's.

Every task returns a ``SecretValue`` (or, with ``as_dict=True``, a dict of
them for a JSON object secret), raises ``SecretNotFound`` when nothing has
it unless ``default=`` was given at init, and takes an optional ``chain``.
``source_options`` builds a dedicated source of the task's backend with
those settings (``{"url": ..., "auth": {...}}`` for Vault) instead of the
configured one; the credentials it names are looked up through the
configured chain, and one that nothing has is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from authchain import masking
from authchain._chain import Chain
from authchain._default import get_default_chain
from authchain.errors import BackendError, ConfigError, SecretNotFound
from authchain.refs import SecretRef
from authchain.values import SecretValue
from secret_tasks.base import Task, defaults_from_attrs

__all__ = [
    "AWSParameterStoreSecret",
    "AWSSecretsManagerSecret",
    "AzureKeyVaultSecret",
    "ChainSecret",
    "DotenvSecret",
    "EnvVarSecret",
    "FilesSecret",
    "GCPSecretManagerSecret",
    "KeyringSecret",
    "PrefectSecret",
    "SecretTask",
    "VaultSecret",
]

_MISSING: Any = object()

SecretResult = SecretValue[Any] | dict[str, SecretValue[str]]


class SecretTask(Task):
    """What every Secret task shares: ``default``, ``as_dict``, ``chain``, ``source_options``."""

    scheme: str = ""

    def __init__(
        self,
        *,
        default: Any = _MISSING,
        as_dict: bool = False,
        chain: Chain | None = None,
        source_options: Mapping[str, Any] | None = None,
        **task_kwargs: Any,
    ) -> None:
        self.default = default
        self.as_dict = as_dict
        self.chain = chain
        self.source_options = dict(source_options) if source_options else None
        super().__init__(**task_kwargs)

    def _resolve(self, target: str | SecretRef, as_dict: bool | None) -> SecretResult:
        chain, owned = self._chain()
        try:
            if self.default is _MISSING:
                value = chain.resolve(target)
            else:
                value = chain.resolve(target, default=self.default)
        finally:
            if owned:
                chain.close()
        if (as_dict if as_dict is not None else self.as_dict) and isinstance(value, SecretValue):
            return value.fields()
        return value

    def _chain(self) -> tuple[Chain, bool]:
        """The chain this run asks, and whether the run made it (then it closes it).

        ``source_options`` win over ``chain``: the settings the caller wrote are
        the ones used, and ``chain`` is then where their credentials are found.
        """
        if self.source_options:
            from authchain._registry import load_source_class

            source = load_source_class(self.scheme).from_settings(
                self.scheme, self.source_options, where=f"{type(self).__name__}(source_options=...)"
            )
            # Its credentials (a token name, AppRole ids, AWS keys) are looked up
            # as a configured source's are: through the configured chain, without
            # this source. A one-source chain could never find them, and the SDK
            # would then log in as whoever VAULT_TOKEN or ~/.vault-token is.
            source.use_credentials(self.chain or get_default_chain())
            return Chain([source], cache_ttl=0), True
        if self.chain is not None:
            return self.chain, False
        return get_default_chain(), False

    def run_label(self, parameters: dict[str, Any]) -> str:
        for key in ("name", "path", "secret_id", "secret", "username"):
            value = parameters.get(key) or getattr(self, key, None)
            if isinstance(value, str):
                return value
        return "secret"


def _reference(scheme: str, location: str, key: str | None = None, **params: Any) -> SecretRef:
    """Build and validate ``scheme://location?params#key`` (a bad part is a ConfigError, a ValueError)."""
    query = urlencode({name: value for name, value in params.items() if value is not None}, safe="/:")
    text = f"{scheme}://{location}" + (f"?{query}" if query else "") + (f"#{key}" if key else "")
    return SecretRef.parse(text)


class EnvVarSecret(SecretTask):
    """An environment variable (exactly ``name``: no prefix).

    Args:
        name: the variable's name, exactly as set (``DB_PASSWORD``).
        key: a top-level field of a JSON value to return instead of the whole value.
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated source of this backend, used
            instead of the configured one (its credentials are still looked up
            through ``chain`` or the configured chain).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.

    Example:
        >>> import os
        >>> os.environ["SECRET_TASKS_DOCTEST"] = "example"
        >>> EnvVarSecret("SECRET_TASKS_DOCTEST")().get_secret_value()
        'example'
    """

    scheme = "env"

    def __init__(self, name: str | None = None, *, key: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.key = key
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "key", "as_dict", required=("name",))
    def run(
        self, name: str | None = None, key: str | None = None, as_dict: bool | None = None
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            name: overrides the ``name`` given at init.
            key: overrides the ``key`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        return self._resolve(_reference("env", str(name), key), as_dict)


class DotenvSecret(SecretTask):
    """A variable in a ``.env`` file (default: the configured or ``./.env`` file).

    Args:
        name: the variable's name in the file.
        path: the ``.env`` file to read (default: the configured one, else ``./.env``).
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated source of this backend, used
            instead of the configured one (its credentials are still looked up
            through ``chain`` or the configured chain).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "dotenv"

    def __init__(self, name: str | None = None, *, path: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.path = path
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "path", "as_dict", required=("name",))
    def run(
        self, name: str | None = None, path: str | None = None, as_dict: bool | None = None
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            name: overrides the ``name`` given at init.
            path: overrides the ``path`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        return self._resolve(_reference("dotenv", path or "", str(name)), as_dict)


class FilesSecret(SecretTask):
    """A mounted secret file (``/run/secrets``, a Kubernetes Secret volume, ``$CREDENTIALS_DIRECTORY``).

    ``name`` is the file's name exactly (no ``prefix`` or ``name_transform``),
    looked up in the directories of the configured ``files`` source, else the
    platform's; it never leaves them (no absolute path, no ``..``).

    Args:
        name: the file's name in the secrets directory (``db_password``).
        key: a top-level field of a JSON value to return instead of the whole value.
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated ``files`` source, used instead
            of the configured one (``{"path": "/etc/app-secrets"}``).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "files"

    def __init__(self, name: str | None = None, *, key: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.key = key
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "key", "as_dict", required=("name",))
    def run(
        self, name: str | None = None, key: str | None = None, as_dict: bool | None = None
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            name: overrides the ``name`` given at init.
            key: overrides the ``key`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        return self._resolve(_reference("files", str(name), key), as_dict)


class ChainSecret(SecretTask):
    """Anything the configured chain can resolve: a name or a reference.

    Args:
        name: ``DB_PASSWORD`` or ``vault://secret/app#password``.
        config, profile: build the chain from this config/profile instead of the default one.
        default, as_dict, chain, **task_kwargs: as for every Secret task
            (``source_options`` is refused: the chain has no one source).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        config: str | None = None,
        profile: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("source_options"):
            raise ConfigError(
                "ChainSecret takes config= or profile=, not source_options= (it has no one source)"
            )
        self.name = name
        self.config = config
        self.profile = profile
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "as_dict", required=("name",))
    def run(self, name: str | None = None, as_dict: bool | None = None) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            name: overrides the ``name`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        return self._resolve(str(name), as_dict)

    def _chain(self) -> tuple[Chain, bool]:
        if self.chain is None and (self.config or self.profile):
            return Chain.from_config(self.config, profile=self.profile), True
        return super()._chain()


class PrefectSecret(SecretTask):
    """A Prefect ``Secret`` block: a block name (``db-password``) or a secret name
    (``DB_PASSWORD`` → block ``db-password``; Prefect 1 ``PREFECT__CONTEXT__SECRETS__DB_PASSWORD``
    variables are honoured first).

    The whole secret, ``key=`` and ``as_dict=True`` all read the secret the same
    way (by name: the Prefect 1 variable first, then the block), so a flow
    migrated from Prefect 1 gets a field of its JSON secret exactly as it gets
    the whole of it.

    Args:
        name: the secret name (``DB_PASSWORD``) or block name (``db-password``).
        key: a top-level field of a JSON secret to return instead of the whole secret.
        default: returned when the secret is missing, or has no field ``key``.
        as_dict: return the JSON object's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask instead of a chain of Prefect's Secret blocks alone.
        source_options: settings of a dedicated Prefect source (``{"block_prefix": "prod-"}``).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "prefect"

    def __init__(self, name: str | None = None, *, key: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.key = key
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "key", "as_dict", required=("name",))
    def run(
        self, name: str | None = None, key: str | None = None, as_dict: bool | None = None
    ) -> SecretResult:
        """Read the secret.

        Args:
            name: overrides the ``name`` given at init.
            key: overrides the ``key`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        # One path for all three forms: the name goes through the source's own
        # mapping (Prefect 1 variable, then the derived block), and a field is
        # picked from what that found. A prefect://block#key reference would skip
        # the Prefect 1 variable, which only a name maps to.
        value = self._resolve(str(name), False)
        if key and isinstance(value, SecretValue):
            value = self._field(value, str(name), key)
        if (as_dict if as_dict is not None else self.as_dict) and isinstance(value, SecretValue):
            return value.fields()
        return value

    def _field(self, value: SecretValue[Any], name: str, key: str) -> Any:
        """Field ``key`` of the JSON secret ``value`` (the chain's ``#KEY`` rules, not the value quoted)."""
        try:
            parsed = value.json()
        except ValueError:
            raise BackendError(
                f"Prefect secret {name!r} is not valid JSON, so key {key!r} cannot be read"
            ) from None
        if not isinstance(parsed, dict):
            raise BackendError(
                f"Prefect secret {name!r} is JSON but not an object, so key {key!r} cannot be read"
            )
        if key not in parsed:
            if self.default is not _MISSING:
                return self.default
            raise SecretNotFound(f"{name}#{key}")
        item = parsed[key]
        field = SecretValue(item if isinstance(item, str) else json.dumps(item))
        masking.register(field)
        return field

    def _chain(self) -> tuple[Chain, bool]:
        if self.chain is None and not self.source_options:  # Secret blocks, not the default chain
            from authchain.backends.prefect.source import PrefectSource

            return Chain([PrefectSource()], cache_ttl=0), True
        return super()._chain()


class VaultSecret(SecretTask):
    """A Vault / OpenBao KV secret: ``vault://MOUNT/PATH[#KEY]``.

    ``mount`` and ``path`` are written as users write them: ``/secret/`` and
    ``/app/db`` mean ``secret`` and ``app/db`` (edge slashes are dropped, as
    hvac does); an empty inner segment (``a//b``), ``.`` or ``..`` is a ``ConfigError``.

    Args:
        path: the secret's path inside the mount (``app/db``).
        key: the field of the secret to return (default: the field named like
            the path's last segment, else ``value``, else the whole secret as JSON).
        mount: the KV mount (default ``secret``).
        version: a KV v2 version number (default: the latest).
        kv_version: 1 or 2 (default: the configured source's for its mount, else 2).
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated source of this backend, used
            instead of the configured one (its credentials are still looked up
            through ``chain`` or the configured chain).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "vault"

    def __init__(
        self,
        path: str | None = None,
        *,
        key: str | None = None,
        mount: str = "secret",
        version: int | None = None,
        kv_version: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.path = path
        self.key = key
        self.mount = mount
        self.version = version
        self.kv_version = kv_version
        super().__init__(**kwargs)

    @defaults_from_attrs("path", "key", "mount", "version", "kv_version", "as_dict", required=("path",))
    def run(
        self,
        path: str | None = None,
        key: str | None = None,
        mount: str | None = None,
        version: int | None = None,
        kv_version: int | None = None,
        as_dict: bool | None = None,
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            path: overrides the ``path`` given at init.
            key: overrides the ``key`` given at init.
            mount: overrides the ``mount`` given at init.
            version: overrides the ``version`` given at init.
            kv_version: overrides the ``kv_version`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        location = f"{str(mount).strip('/')}/{str(path).strip('/')}"
        ref = _reference("vault", location, key, kv=kv_version, version=version)
        return self._resolve(ref, as_dict)


class AWSSecretsManagerSecret(SecretTask):
    """An AWS Secrets Manager secret: ``aws-sm://SECRET_ID_OR_ARN[#KEY]``.

    Args:
        secret_id: the secret's name (``prod/db``) or ARN.
        key: a top-level field of a JSON secret to return instead of the whole secret.
        stage: a version stage (``AWSPREVIOUS``; default ``AWSCURRENT``).
        version_id: a version id (instead of ``stage``).
        region: the region to ask (default: the source's, else the SDK's).
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated source of this backend, used
            instead of the configured one (its credentials are still looked up
            through ``chain`` or the configured chain).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "aws-sm"

    def __init__(
        self,
        secret_id: str | None = None,
        *,
        key: str | None = None,
        stage: str | None = None,
        version_id: str | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.secret_id = secret_id
        self.key = key
        self.stage = stage
        self.version_id = version_id
        self.region = region
        super().__init__(**kwargs)

    @defaults_from_attrs(
        "secret_id", "key", "stage", "version_id", "region", "as_dict", required=("secret_id",)
    )
    def run(
        self,
        secret_id: str | None = None,
        key: str | None = None,
        stage: str | None = None,
        version_id: str | None = None,
        region: str | None = None,
        as_dict: bool | None = None,
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            secret_id: overrides the ``secret_id`` given at init.
            key: overrides the ``key`` given at init.
            stage: overrides the ``stage`` given at init.
            version_id: overrides the ``version_id`` given at init.
            region: overrides the ``region`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        ref = _reference("aws-sm", str(secret_id), key, stage=stage, version_id=version_id, region=region)
        return self._resolve(ref, as_dict)


class AWSParameterStoreSecret(SecretTask):
    """An AWS SSM parameter (SecureString decrypted): ``aws-ssm:///PATH/NAME``.

    Args:
        name: the parameter's name (``/app/db/password``; the leading ``/`` is part of it).
        key: a top-level field of a JSON value to return instead of the whole value.
        version: a parameter version (default: the latest).
        region: the region to ask (default: the source's, else the SDK's).
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated source of this backend, used
            instead of the configured one (its credentials are still looked up
            through ``chain`` or the configured chain).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "aws-ssm"

    def __init__(
        self,
        name: str | None = None,
        *,
        key: str | None = None,
        version: int | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.key = key
        self.version = version
        self.region = region
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "key", "version", "region", "as_dict", required=("name",))
    def run(
        self,
        name: str | None = None,
        key: str | None = None,
        version: int | None = None,
        region: str | None = None,
        as_dict: bool | None = None,
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            name: overrides the ``name`` given at init.
            key: overrides the ``key`` given at init.
            version: overrides the ``version`` given at init.
            region: overrides the ``region`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        return self._resolve(_reference("aws-ssm", str(name), key, version=version, region=region), as_dict)


class GCPSecretManagerSecret(SecretTask):
    """A GCP Secret Manager secret version: ``gcp-sm://projects/P[/locations/L]/secrets/S/versions/V``.

    Args:
        secret: the secret's id (``db-password``).
        project: the project (default: the source's, else the SDK's).
        location: the region of a regional secret (``europe-west4``; needs
            ``project``). Default: the source's ``location``, else a global secret.
        version: a version number or ``latest`` (the default).
        key: a top-level field of a JSON secret to return instead of the whole secret.
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated source of this backend, used
            instead of the configured one (its credentials are still looked up
            through ``chain`` or the configured chain).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "gcp-sm"

    def __init__(
        self,
        secret: str | None = None,
        *,
        project: str | None = None,
        location: str | None = None,
        version: str = "latest",
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.secret = secret
        self.project = project
        self.location = location
        self.version = version
        self.key = key
        super().__init__(**kwargs)

    @defaults_from_attrs("secret", "project", "location", "version", "key", "as_dict", required=("secret",))
    def run(
        self,
        secret: str | None = None,
        project: str | None = None,
        location: str | None = None,
        version: str | None = None,
        key: str | None = None,
        as_dict: bool | None = None,
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            secret: overrides the ``secret`` given at init.
            project: overrides the ``project`` given at init.
            location: overrides the ``location`` given at init.
            version: overrides the ``version`` given at init.
            key: overrides the ``key`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        path = f"{secret}/versions/{version}"
        if location and not project:
            raise ConfigError(
                f"{self.task_name}: location={location!r} needs project= too "
                "(a regional reference names both: projects/P/locations/L/secrets/S)"
            )
        if project:
            region = f"/locations/{location}" if location else ""
            path = f"projects/{project}{region}/secrets/{path}"
        return self._resolve(_reference("gcp-sm", path, key), as_dict)


class AzureKeyVaultSecret(SecretTask):
    """An Azure Key Vault secret: ``azure-kv://VAULT/SECRET[/VERSION]``.

    ``secret`` is the secret's name exactly as Key Vault holds it (no
    ``prefix`` or ``name_transform``). The vault is ``vault``, else the
    ``vault_name`` of the source that reads it (``source_options``, else the
    first configured ``azure-kv`` source).

    Args:
        secret: the secret's name (``db-password``; ``[0-9a-zA-Z-]``).
        vault: the vault's name (``my-vault``). Default: the source's vault.
        version: a version id. Default: the latest version.
        key: a top-level field of a JSON secret to return instead of the whole secret.
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated ``azure-kv`` source, used instead
            of the configured one (``{"vault_name": "my-vault"}``); its credentials
            are still looked up through ``chain`` or the configured chain.
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "azure-kv"

    def __init__(
        self,
        secret: str | None = None,
        *,
        vault: str | None = None,
        version: str | None = None,
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.secret = secret
        self.vault = vault
        self.version = version
        self.key = key
        super().__init__(**kwargs)

    @defaults_from_attrs("secret", "vault", "version", "key", "as_dict", required=("secret",))
    def run(
        self,
        secret: str | None = None,
        vault: str | None = None,
        version: str | None = None,
        key: str | None = None,
        as_dict: bool | None = None,
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            secret: overrides the ``secret`` given at init.
            vault: overrides the ``vault`` given at init.
            version: overrides the ``version`` given at init.
            key: overrides the ``key`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        location = f"{vault or self._source_vault()}/{secret}" + (f"/{version}" if version else "")
        return self._resolve(_reference("azure-kv", location, key), as_dict)

    def _source_vault(self) -> str:
        """The ``vault_name`` of the source that will read the reference (see ``_chain``)."""
        if self.source_options:
            from authchain._registry import load_source_class

            where = f"{type(self).__name__}(source_options=...)"
            sources = [
                load_source_class(self.scheme).from_settings(self.scheme, self.source_options, where=where)
            ]
        else:
            chain = self.chain or get_default_chain()
            sources = [source for source in chain.sources if source.type == self.scheme]
        for source in sources:
            name = getattr(source, "vault_name", None)
            if isinstance(name, str) and name:
                return name
        raise ConfigError(
            f"{self.task_name}: pass vault= (no azure-kv source here names its vault: set vault_name "
            "or a vault_url of the form https://NAME.vault.azure.net)"
        )


class KeyringSecret(SecretTask):
    """An OS keyring entry: ``keyring://SERVICE/USERNAME``.

    Args:
        username: the entry's user name (authchain stores a secret under its name: ``DB_PASSWORD``).
        service: the keyring service (default: the ``service`` of the chain's keyring
            source, which from a config file defaults to the project name, else
            ``authchain``; with no keyring source in the chain, ``authchain``).
        key: a top-level field of a JSON value to return instead of the whole value.
        default: returned when nothing has the secret (default: ``SecretNotFound`` is raised).
        as_dict: return a JSON object secret's top-level fields as a dict of ``SecretValue``.
        chain: the chain to ask (default: the configured one).
        source_options: settings of a dedicated source of this backend, used
            instead of the configured one (its credentials are still looked up
            through ``chain`` or the configured chain).
        **task_kwargs: ``task_name``, ``retries``, ``retry_delay_seconds``, ``tags``
            and the other task options of ``Task``.
    """

    scheme = "keyring"

    def __init__(
        self,
        username: str | None = None,
        *,
        service: str | None = None,
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.username = username
        self.service = service
        self.key = key
        super().__init__(**kwargs)

    @defaults_from_attrs("username", "service", "key", "as_dict", required=("username",))
    def run(
        self,
        username: str | None = None,
        service: str | None = None,
        key: str | None = None,
        as_dict: bool | None = None,
    ) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            username: overrides the ``username`` given at init.
            service: overrides the ``service`` given at init (default: the keyring source's).
            key: overrides the ``key`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        service = service or self._default_service()
        return self._resolve(_reference("keyring", f"{service}/{username}", key), as_dict)

    def _default_service(self) -> str:
        """The service of the keyring source this run would ask, as the source itself
        picks it for a bare name: so the entry the chain finds as ``DB_PASSWORD`` is
        the one ``KeyringSecret("DB_PASSWORD")`` reads, without naming the service twice."""
        from authchain.backends.keyring.source import DEFAULT_SERVICE, KeyringSource

        chain, owned = self._chain()
        try:
            for source in chain.sources:
                if isinstance(source, KeyringSource):
                    return source.service
        finally:
            if owned:
                chain.close()
        return DEFAULT_SERVICE
