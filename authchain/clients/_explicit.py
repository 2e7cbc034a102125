"""The source that answers a client factory's explicit credential values first.

``vault_client(token=...)`` hands its values to a Vault source through a chain
whose first source is this one, under names of their own. It lives here, not
in :mod:`authchain.testing`: production code must not depend on a testing
tool, and the ``memory`` type is not registered outside tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authchain.refs import SecretRef
from authchain.sources.base import CheckResult, Found, Key, NotFound, Source
from authchain.values import SecretValue

__all__ = ["ExplicitValues"]


class ExplicitValues(Source):
    """Values the caller passed, by name; never pickled, never a config type."""

    type = "explicit-values"
    rank = 0
    concurrent = False

    def __init__(self, values: Mapping[str, SecretValue[Any]], **common: Any) -> None:
        super().__init__(**common)
        self._init_runtime()
        self._values.update(values)

    _runtime_attrs = ("_values",)  # values never travel in a pickle

    def _init_runtime(self) -> None:
        self._values: dict[str, SecretValue[Any]] = {}

    def key_for(self, name: str) -> Key:
        return name

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        return ref.location, ref.field

    def get(self, key: Key) -> Found | NotFound:
        value = self._values.get(str(key))
        if value is None:
            return NotFound(f"{key} was not passed explicitly")
        return Found(value, f"{key} was passed explicitly")

    def check(self) -> CheckResult:
        return self.result("ok", f"{len(self._values)} explicit values")
