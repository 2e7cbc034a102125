"""Environment variables: ``DB_PASSWORD`` → ``os.environ[PREFIX + "DB_PASSWORD"]``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from authchain.errors import BackendError
from authchain.refs import VARIABLE_NAME, ReferenceGrammar, SecretRef, check_json_field, require
from authchain.sources.base import CheckResult, Found, Key, NotFound, Option, Source
from authchain.values import SecretValue

__all__ = ["EnvSource"]


# -- references: env://NAME (this backend's grammar; see authchain.refs) ------


def _reference_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    require(
        bool(VARIABLE_NAME.fullmatch(location)),
        "the location is not a variable name ([A-Za-z_][A-Za-z0-9_.-]*)",
    )
    check_json_field(fragment)
    return location


class EnvSource(Source):
    """Reads the process environment (live, so changes after start are seen).

    Args:
        prefix: prepended to every name (``APP_`` turns ``DB_PASSWORD`` into
            ``APP_DB_PASSWORD``). References (``env://NAME``) ignore it.
        case_sensitive: set False to also match ``app_db_password``; two
            variables differing only in case with different values are an error.
        ignore_empty: treat ``NAME=`` (empty) as not set, so an empty CI
            variable does not hide a real value further down the chain.
        environ: the mapping to read (a seam for tests); default ``os.environ``.
    """

    type = "env"
    reference_grammar = ReferenceGrammar("env://NAME[#KEY]", _reference_location)
    rank = 300
    concurrent = False
    options = (
        Option("prefix", str, "", "prepended to every name"),
        Option("case_sensitive", bool, True, "match variable names exactly"),
        Option("ignore_empty", bool, False, "treat empty variables as not set"),
    )

    # A test's environ mapping may hold values: a seam, not a setting, so it
    # never travels in a pickle (os.environ itself does not pickle either).
    _seam_attrs = ("_environ",)

    def __init__(
        self,
        *,
        prefix: str = "",
        case_sensitive: bool = True,
        ignore_empty: bool = False,
        environ: Mapping[str, str] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.prefix = prefix
        self.case_sensitive = case_sensitive
        self.ignore_empty = ignore_empty
        self._environ = environ

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def key_for(self, name: str) -> Key:
        return self.prefix + name

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        return ref.location, ref.field

    def is_local(self) -> bool:
        return True

    def get(self, key: Key) -> Found | NotFound:
        variable = str(key)
        value = self._lookup(variable)
        if value is None:
            return NotFound(f"{variable} is not set")
        if value == "" and self.ignore_empty:
            return NotFound(f"{variable} is set but empty (ignore_empty)")
        return Found(SecretValue(value), f"{variable} is set")

    def _lookup(self, variable: str) -> str | None:
        environ = self.environ
        if variable in environ or self.case_sensitive:
            return environ.get(variable)
        folded = variable.casefold()
        names = sorted(name for name in environ if name.casefold() == folded)
        if len({environ[name] for name in names}) > 1:
            raise BackendError(f"{', '.join(names)} differ only in case and hold different values")
        return environ[names[0]] if names else None

    def check(self) -> CheckResult:
        return self.result("ok", "reads the process environment")
