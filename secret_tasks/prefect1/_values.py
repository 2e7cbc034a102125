"""What the shims share: Prefect 1 return values, Prefect 1 errors, and explicit credentials.

Prefect 1's tasks returned plain values (a ``str``, a ``dict`` parsed from
JSON); the native tasks return ``SecretValue``. The value is still found by
the chain (and so registered with the masker, every string inside a JSON
secret included) before it is unwrapped here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from authchain import masking
from authchain._chain import Chain
from authchain.clients._explicit import ExplicitValues
from authchain.errors import SecretNotFound
from authchain.values import SecretValue

__all__ = ["Prefect1SecretKeyError", "Prefect1SecretNotFound", "explicit_chain", "parsed", "text"]


def text(value: Any) -> Any:
    """The plain value of a ``SecretValue``; anything else (a default) as it is."""
    return value.get_secret_value() if isinstance(value, SecretValue) else value


def parsed(value: Any) -> Any:
    """Prefect 1's ``json.loads`` attempt: a JSON text becomes what it encodes, other text stays."""
    plain = text(value)
    if not isinstance(plain, str):
        return plain
    try:
        return json.loads(plain)
    except ValueError:
        return plain


def explicit_chain(values: Mapping[str, Any]) -> Chain:
    """A chain answering ``values`` by name: how credentials a Prefect 1 call passes *as values*
    reach a dedicated source, whose settings take credential *names*. Each value is
    registered with the masker first."""
    secrets: dict[str, SecretValue[Any]] = {}
    for name, value in values.items():
        plain = value if isinstance(value, str) else json.dumps(value)
        secret = SecretValue(plain)
        masking.register(secret)
        secrets[name] = secret
    return Chain([ExplicitValues(secrets, name="prefect1-arguments")], cache_ttl=0)


class Prefect1SecretNotFound(SecretNotFound, ValueError):
    """A missing secret, catchable as Prefect 1's ``ValueError`` and as authchain's ``SecretNotFound``.

    The message starts with Prefect 1's sentence and goes on with authchain's
    list of the sources asked (names and keys, never a value).
    """

    def __init__(
        self, name: str, attempts: Sequence[Any] = (), *, missing: Sequence[str] = (), lead: str = ""
    ) -> None:
        self.lead = lead
        super().__init__(name, attempts, missing=missing)

    @classmethod
    def from_error(cls, error: SecretNotFound, lead: str) -> Prefect1SecretNotFound:
        return cls(error.name, error.attempts, missing=error.missing, lead=lead)

    def _format(self) -> str:
        trail = super()._format()
        return f"{self.lead}\n{trail}" if getattr(self, "lead", "") else trail

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.name, self.attempts, self.missing, self.lead))


class Prefect1SecretKeyError(Prefect1SecretNotFound, KeyError):
    """Prefect 1's ``VaultSecret`` raised ``KeyError`` for a missing path: this is that too."""

    __str__ = Exception.__str__  # KeyError would quote the whole message


def _rebuild(
    cls: type[Prefect1SecretNotFound], name: str, attempts: Any, missing: Any, lead: str
) -> Prefect1SecretNotFound:
    return cls(name, attempts, missing=missing, lead=lead)
