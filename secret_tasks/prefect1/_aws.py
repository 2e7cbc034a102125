"""Prefect 1's ``AWSSecretsManager``, ``AWSParametersManager`` and ``get_boto_client``.

The tasks delegate to the native AWS Secret tasks, the function to
:func:`authchain.clients.aws_client`. Prefect 1 took credentials as a dict
of values (``ACCESS_KEY``, ``SECRET_ACCESS_KEY``, ``SESSION_TOKEN``), else
its local secret ``AWS_CREDENTIALS``, else boto3's own chain; so do these.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from authchain.errors import ConfigError
from secret_tasks import secrets as native
from secret_tasks.prefect1._task import SecretBase, defaults_from_attrs
from secret_tasks.prefect1._values import explicit_chain, parsed, text

__all__ = ["AWSParametersManager", "AWSSecretsManager", "get_boto_client"]

_KEY_NAMES = (
    ("ACCESS_KEY", "aws_access_key_id"),
    ("SECRET_ACCESS_KEY", "aws_secret_access_key"),
    ("SESSION_TOKEN", "aws_session_token"),
)
# boto_kwargs the aws sources take, and the source setting each becomes.
_SOURCE_SETTINGS = {"region_name": "region", "endpoint_url": "endpoint_url", "profile_name": "profile"}


def get_boto_client(
    resource: str,
    credentials: Any = None,
    region_name: str | None = None,
    profile_name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Prefect 1's ``get_boto_client``: a boto3 client for ``resource``, cached per process.

    Credentials: ``credentials`` (``{"ACCESS_KEY", "SECRET_ACCESS_KEY",
    "SESSION_TOKEN"}``, each piece winning over boto3's ``aws_access_key_id``
    ... in ``kwargs``, as in Prefect 1), else ``AWS_CREDENTIALS`` through the
    chain (Prefect 1's local secret included), else boto3's own chain. Every
    key is registered with the masker.

    Args:
        resource: the boto3 service name (``"s3"``).
        credentials: the keys as a dict (or whatever ``aws_client`` takes).
        region_name: the region (default: boto3's).
        profile_name: a named profile of the AWS config files.
        **kwargs: passed to boto3's ``client()``; ``use_session`` is accepted and
            ignored with a warning, as Prefect 1 did since 0.14.9. The older
            positional form ``(resource, credentials, use_session, region_name)``
            works too (a bool third argument is ``use_session``).

    Raises:
        authchain.ConfigError: ``botocore_session=`` (authchain builds its own sessions).
    """
    third: Any = region_name
    if isinstance(third, bool):
        # Prefect <= 0.14.8: get_boto_client(resource, credentials, use_session, region_name).
        kwargs["use_session"], region_name, profile_name = third, profile_name, None
    if kwargs.pop("use_session", None) is not None:
        warnings.warn(
            "The `use_session` kwarg has been deprecated, prefect now infers "
            "whether a new boto session should be used automatically.",
            UserWarning,
            stacklevel=2,
        )
    if kwargs.pop("botocore_session", None) is not None:
        raise ConfigError("get_boto_client: botocore_session= is not supported; pass profile_name= instead")
    from authchain.clients import aws_client

    keys = _keys(credentials, kwargs)
    return aws_client(
        resource,
        credentials=keys if keys is not None else credentials or None,
        region_name=region_name,
        profile_name=profile_name,
        **kwargs,
    )


def _keys(credentials: Any, kwargs: dict[str, Any]) -> dict[str, str] | None:
    """Prefect 1's merge: a piece of ``credentials`` wins over boto3's keyword for it.

    Pops boto3's key keywords from ``kwargs``. None when no piece is given,
    or when ``credentials`` is not a dict (``aws_client`` takes it as it is).
    """
    loose = {boto: kwargs.pop(boto, None) for _, boto in _KEY_NAMES}
    if credentials is not None and not isinstance(credentials, Mapping):
        kwargs.update({boto: value for boto, value in loose.items() if value is not None})
        return None
    given = dict(credentials or {})
    keys = {}
    for prefect1, boto in _KEY_NAMES:
        value = given.get(prefect1) or loose[boto]
        if value is not None:
            keys[prefect1] = str(text(value))
    return keys or None


def _aws_source(credentials: Any, boto_kwargs: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """The native task's ``source_options``/``chain`` for Prefect 1's ``credentials`` and ``boto_kwargs``.

    Empty when neither says anything: the configured aws source is used then.
    """
    boto = dict(boto_kwargs or {})
    keys = _keys(credentials, boto)
    unsupported = sorted(set(boto) - set(_SOURCE_SETTINGS))
    if unsupported:
        raise ConfigError(
            f"{owner}: boto_kwargs {', '.join(unsupported)} cannot be passed on; the AWS sources take "
            f"{', '.join(sorted(_SOURCE_SETTINGS))} and the credential keys"
        )
    if keys is None and credentials is not None:
        keys = parsed(credentials) if not isinstance(credentials, Mapping) else None
    if keys is None:
        keys = _prefect1_aws_credentials()
    settings = {_SOURCE_SETTINGS[key]: value for key, value in boto.items() if value is not None}
    if not keys:
        return {"source_options": settings} if settings else {}
    settings["credentials"] = "AWS_CREDENTIALS"  # a name, answered by the explicit chain
    return {"source_options": settings, "chain": explicit_chain({"AWS_CREDENTIALS": keys})}


def _prefect1_aws_credentials() -> Any:
    """Prefect 1's local secret ``AWS_CREDENTIALS`` (variable, config.toml, or a block inside a run)."""
    found = native.PrefectSecret("AWS_CREDENTIALS", default=None).run()
    return parsed(found) if found is not None else None


class AWSSecretsManager(SecretBase):
    """Prefect 1's ``AWSSecretsManager``: a Secrets Manager secret, a dict when it is JSON, else a str.

    Args:
        secret: the secret's name or ARN.
        boto_kwargs: ``region_name``, ``endpoint_url``, ``profile_name`` and the key
            keywords (others are refused: the read goes through authchain's source).
        **kwargs: Prefect 1 task arguments (``name``, ``tags``, ...; see :class:`SecretBase`).
    """

    def __init__(self, secret: str | None = None, boto_kwargs: dict[str, Any] | None = None, **kwargs: Any):
        self.secret = secret
        self.boto_kwargs = {} if boto_kwargs is None else boto_kwargs
        super().__init__(**kwargs)

    @defaults_from_attrs("secret")
    def run(self, secret: str | None = None, credentials: Any = None) -> Any:
        """The secret's contents: a dict (JSON decoded) or the string.

        Args:
            secret: the secret to read instead of the one given at init.
            credentials: ``{"ACCESS_KEY": ..., "SECRET_ACCESS_KEY": ...}`` from an upstream task.
        """
        if secret is None:
            raise ValueError("A secret name must be provided.")
        options = _aws_source(credentials, self.boto_kwargs, type(self).__name__)
        return parsed(native.AWSSecretsManagerSecret(secret, **options).run())


class AWSParametersManager(SecretBase):
    """Prefect 1's ``AWSParametersManager``: an SSM parameter's value as a str.

    Args:
        parameter_name: the parameter's name (``/app/db/password``).
        boto_kwargs: as for :class:`AWSSecretsManager`.
        **kwargs: Prefect 1 task arguments (see :class:`SecretBase`).
    """

    def __init__(
        self, parameter_name: str | None = None, boto_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ):
        self.parameter_name = parameter_name
        self.boto_kwargs = {} if boto_kwargs is None else boto_kwargs
        super().__init__(**kwargs)

    @defaults_from_attrs("parameter_name", "boto_kwargs")
    def run(
        self,
        parameter_name: str | None = None,
        credentials: Any = None,
        boto_kwargs: dict[str, Any] | None = None,
    ) -> str:
        """The parameter's value (a SecureString decrypted).

        Args:
            parameter_name: the parameter to read instead of the one given at init.
            credentials: ``{"ACCESS_KEY": ..., "SECRET_ACCESS_KEY": ...}`` from an upstream task.
            boto_kwargs: instead of the ones given at init.
        """
        if parameter_name is None:
            raise ValueError("A parameter name must be provided.")
        options = _aws_source(credentials, boto_kwargs, type(self).__name__)
        return str(text(native.AWSParameterStoreSecret(parameter_name, **options).run()))
