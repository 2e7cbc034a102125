"""One place that turns what a caller hands a client factory into a credential.

A factory's ``credentials=`` (and Vault's ``token=``, ``role_id=``, ...) takes
whatever a Secret task returns, so a flow can pass a task's result straight
on: a ``SecretValue``, the ``dict`` of ``SecretValue`` objects that ``as_dict=True``
gives, a ``SecretRef`` or ``"scheme://..."`` reference (a place to look, left
to :func:`~authchain.clients._base.lookup_credential`), JSON text, or a
mapping of plain strings. Objects with ``get_secret_value()`` (pydantic's
``SecretStr``, as in Prefect blocks) are unwrapped like ``SecretValue``.

Errors name the argument and the type of what was given, never a value; the
values themselves are registered with the masker where the factory uses them,
as before.

It also holds the conflict rule: one call may say where a credential is in
only one way. Two arguments that name different credentials are a
``ConfigError`` naming both arguments, because quietly picking one makes the
client act as an identity the caller did not mean; two that are identical
(the same reference, or the same key values) are accepted.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from authchain._scrub import scrubbed
from authchain.errors import ConfigError
from authchain.refs import SecretRef, is_reference
from authchain.values import SecretValue

__all__ = ["check_one_place", "coerce_credential", "coerce_single", "is_place", "same_secret"]

_ACCEPTED = "a SecretValue, str or bytes (JSON), a mapping of SecretValues or strings, or a reference"


def is_place(value: Any) -> bool:
    """A ``SecretRef`` or ``scheme://`` text: where to look, not a value."""
    return isinstance(value, SecretRef) or is_reference(value)


@scrubbed
def coerce_credential(value: Any, argument: str = "credentials") -> SecretValue[Any] | None:
    """A credential value (not a reference) as one ``SecretValue``; a mapping becomes its JSON.

    Raises:
        ConfigError: a type no credential has (naming ``argument`` and the type only).
    """
    if value is None:
        return None
    if isinstance(value, SecretValue):
        return value
    if isinstance(value, (str, bytes)):
        return SecretValue(value)
    if isinstance(value, Mapping):
        return SecretValue(json.dumps(_plain_mapping(value, argument)))
    unwrapped = _unwrap(value)
    if unwrapped is not None:
        return SecretValue(unwrapped)
    kind = type(value).__name__
    del value  # the error's frames keep no value
    raise ConfigError(f"{argument}= takes {_ACCEPTED}; got a {kind}")


@scrubbed
def coerce_single(value: Any, argument: str) -> SecretValue[Any] | None:
    """One secret (a token, a role id): like :func:`coerce_credential`, but a mapping is refused.

    ``VaultSecret(..., as_dict=True)`` gives a dict; a token is one of its fields.
    """
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(str(key) for key in value)[:8])
        del value
        raise ConfigError(
            f"{argument}= takes one secret (a SecretValue or str), not a mapping; "
            f"pass one of its fields ({keys}) or a reference with '#field'"
        )
    return coerce_credential(value, argument)


def _unwrap(value: Any) -> str | bytes | None:
    """The text of a pydantic/Prefect ``SecretStr``-like object; None for anything else."""
    getter = getattr(value, "get_secret_value", None)
    if not callable(getter):
        return None
    raw = getter()
    return raw if isinstance(raw, (str, bytes)) else None


def _plain_mapping(value: Mapping[Any, Any], argument: str) -> dict[str, Any]:
    return {str(key): _plain(item, f"{argument}[{str(key)!r}]") for key, item in value.items()}


def _plain(item: Any, where: str) -> Any:
    """A mapping's item as JSON can write it: secrets unwrapped, nested mappings and lists walked."""
    if isinstance(item, str) and is_reference(item):
        # {"ACCESS_KEY": "env://X"} would otherwise sign with the text "env://X":
        # a reference is a place to look, never a key.
        raise ConfigError(
            f"{where} is a reference: pass the reference itself as the credential, or resolve it first"
        )
    if isinstance(item, (SecretValue, str, bytes)) or _unwrap(item) is not None:
        raw = item.get_secret_value() if not isinstance(item, (str, bytes)) else item
        if isinstance(raw, bytes):
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                pass  # the error holds the bytes: raised below, without them
            raise ConfigError(f"{where} is bytes that are not UTF-8 text")
        return raw
    if item is None or isinstance(item, (bool, int, float)):
        return item
    if isinstance(item, Mapping):
        return _plain_mapping(item, where)
    if isinstance(item, (list, tuple)):
        return [_plain(part, f"{where}[{index}]") for index, part in enumerate(item)]
    if is_place(item):
        raise ConfigError(
            f"{where} is a reference: pass the reference itself as the credential, or resolve it first"
        )
    raise ConfigError(f"{where} is a {type(item).__name__}, which a credential cannot hold")


def same_secret(left: Any, right: Any) -> bool:
    """Whether two secrets are the same text, compared in constant time."""
    a = left.get_secret_value() if isinstance(left, SecretValue) else left
    b = right.get_secret_value() if isinstance(right, SecretValue) else right
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    if not isinstance(a, bytes) or not isinstance(b, bytes):
        return False
    return hmac.compare_digest(a, b)


def check_one_place(factory: str, given: tuple[str, Any], named: tuple[str, Any]) -> None:
    """Refuse a call that says where one credential is in two different ways.

    ``given`` is the explicit argument (a value or a reference), ``named`` the
    argument that names what to look up (``credential_name=``); both set is a
    ``ConfigError`` unless both are the same reference. The message names the
    two arguments only.
    """
    (given_arg, given_value), (named_arg, named_value) = given, named
    if given_value is None or named_value is None:
        return
    if is_place(given_value) and str(given_value) == str(named_value):
        return
    del given, named, given_value, named_value
    raise ConfigError(
        f"{factory}: {given_arg}= and {named_arg}= both say which credentials to use and they differ; "
        f"pass only one (values not shown)"
    )
