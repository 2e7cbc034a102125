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

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from authchain._chain import Chain
from authchain._default import get_default_chain
from authchain.errors import ConfigError
from authchain.refs import SecretRef
from authchain.values import SecretValue
from secret_tasks.base import Task, defaults_from_attrs

__all__ = [
    "AWSParameterStoreSecret",
    "AWSSecretsManagerSecret",
    "ChainSecret",
    "DotenvSecret",
    "EnvVarSecret",
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
            source.bind(self.chain or get_default_chain())
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
        return self._resolve(_reference("env", str(name), key), as_dict)


class DotenvSecret(SecretTask):
    """A variable in a ``.env`` file (default: the configured or ``./.env`` file)."""

    scheme = "dotenv"

    def __init__(self, name: str | None = None, *, path: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.path = path
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "path", "as_dict", required=("name",))
    def run(
        self, name: str | None = None, path: str | None = None, as_dict: bool | None = None
    ) -> SecretResult:
        return self._resolve(_reference("dotenv", path or "", str(name)), as_dict)


class ChainSecret(SecretTask):
    """Anything the configured chain can resolve: a name or a reference.

    Args:
        name: ``DB_PASSWORD`` or ``vault://secret/app#password``.
        config, profile: build the chain from this config/profile instead of the default one.
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
        return self._resolve(str(name), as_dict)

    def _chain(self) -> tuple[Chain, bool]:
        if self.chain is None and (self.config or self.profile):
            return Chain.from_config(self.config, profile=self.profile), True
        return super()._chain()


class PrefectSecret(SecretTask):
    """A Prefect ``Secret`` block: a block name (``db-password``) or a secret name
    (``DB_PASSWORD`` → block ``db-password``; Prefect 1 ``PREFECT__CONTEXT__SECRETS__DB_PASSWORD``
    variables are honoured first)."""

    scheme = "prefect"

    def __init__(self, name: str | None = None, *, key: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.key = key
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "key", "as_dict", required=("name",))
    def run(
        self, name: str | None = None, key: str | None = None, as_dict: bool | None = None
    ) -> SecretResult:
        from authchain.sources.prefect import block_name_for

        # A name goes through the source's own mapping (Prefect 1 variable, then
        # the derived block); a JSON field needs a reference to the block itself.
        target: str | SecretRef = str(name)
        if key:
            target = _reference("prefect", block_name_for(str(name)), key)
        return self._resolve(target, as_dict)

    def _chain(self) -> tuple[Chain, bool]:
        if self.chain is None and not self.source_options:  # Secret blocks, not the default chain
            from authchain.sources.prefect import PrefectSource

            return Chain([PrefectSource()], cache_ttl=0), True
        return super()._chain()


class VaultSecret(SecretTask):
    """A Vault / OpenBao KV secret: ``vault://MOUNT/PATH[#KEY]``."""

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
        location = f"{mount}/{str(path).strip('/')}"
        ref = _reference("vault", location, key, kv=kv_version, version=version)
        return self._resolve(ref, as_dict)


class AWSSecretsManagerSecret(SecretTask):
    """An AWS Secrets Manager secret: ``aws-sm://SECRET_ID_OR_ARN[#KEY]``."""

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
        ref = _reference("aws-sm", str(secret_id), key, stage=stage, version_id=version_id, region=region)
        return self._resolve(ref, as_dict)


class AWSParameterStoreSecret(SecretTask):
    """An AWS SSM parameter (SecureString decrypted): ``aws-ssm:///PATH/NAME``."""

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
        return self._resolve(_reference("aws-ssm", str(name), key, version=version, region=region), as_dict)


class GCPSecretManagerSecret(SecretTask):
    """A GCP Secret Manager secret version: ``gcp-sm://projects/P/secrets/S/versions/V``."""

    scheme = "gcp-sm"

    def __init__(
        self,
        secret: str | None = None,
        *,
        project: str | None = None,
        version: str = "latest",
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.secret = secret
        self.project = project
        self.version = version
        self.key = key
        super().__init__(**kwargs)

    @defaults_from_attrs("secret", "project", "version", "key", "as_dict", required=("secret",))
    def run(
        self,
        secret: str | None = None,
        project: str | None = None,
        version: str | None = None,
        key: str | None = None,
        as_dict: bool | None = None,
    ) -> SecretResult:
        location = f"{secret}/versions/{version}"
        if project:
            location = f"projects/{project}/secrets/{location}"
        return self._resolve(_reference("gcp-sm", location, key), as_dict)


class KeyringSecret(SecretTask):
    """An OS keyring entry: ``keyring://SERVICE/USERNAME``."""

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

    @defaults_from_attrs("username", "service", "key", "as_dict", required=("username", "service"))
    def run(
        self,
        username: str | None = None,
        service: str | None = None,
        key: str | None = None,
        as_dict: bool | None = None,
    ) -> SecretResult:
        return self._resolve(_reference("keyring", f"{service}/{username}", key), as_dict)
