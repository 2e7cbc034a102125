"""A ``.env`` file: ``DB_PASSWORD`` → the line ``PREFIX DB_PASSWORD=...`` in the file.

The file sits after the real environment in the canonical order, so a real
variable wins over the file, as with python-dotenv's ``override=False`` and
pydantic-settings. A missing file is "not found", not an error: a laptop has
one, CI usually does not.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from authchain.errors import BackendError, SourceUnavailableError
from authchain.refs import VARIABLE_NAME, ReferenceGrammar, SecretRef, require
from authchain.sources.base import CheckResult, Found, Key, NotFound, Option, Source
from authchain.values import SecretValue

__all__ = ["DotenvSource"]


# -- references: dotenv://[PATH]#KEY (this backend's grammar; see authchain.refs) ------


def _reference_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    require(fragment is not None, "the variable to read is missing (#KEY)")
    require(
        bool(VARIABLE_NAME.fullmatch(fragment or "")),
        "the #KEY is not a variable name ([A-Za-z_][A-Za-z0-9_.-]*)",
    )
    return location


class DotenvSource(Source):
    """Reads one ``.env`` file with python-dotenv, re-reading it when it changes.

    Args:
        path: the file; relative paths are relative to the config file's
            folder (or the working directory when there is no config).
        prefix: prepended to every name, as for ``env``.
        interpolate: expand ``${VAR}`` inside values. Off by default, unlike
            python-dotenv: a generated password containing ``${`` must come
            back unchanged, and python-dotenv expands even inside single quotes.
        encoding: the file's text encoding.
    """

    type = "dotenv"
    reference_grammar = ReferenceGrammar("dotenv://[PATH]#KEY", _reference_location, json_fragment=False)
    rank = 400
    extra = "dotenv"
    concurrent = False
    options = (
        Option("path", str, ".env", "the .env file, relative to the config file", is_path=True),
        Option("prefix", str, "", "prepended to every name"),
        Option("interpolate", bool, False, "expand ${VAR} in values"),
        Option("encoding", str, "utf-8", "file encoding"),
    )

    def __init__(
        self,
        *,
        path: str | Path = ".env",
        prefix: str = "",
        interpolate: bool = False,
        encoding: str = "utf-8",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.path = Path(path)
        self.prefix = prefix
        self.interpolate = interpolate
        self.encoding = encoding
        self._init_runtime()

    _runtime_attrs = ("_lock", "_parsed")  # parsed values stay in this process

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[Path, tuple[tuple[int, int], dict[str, str | None]]] = {}

    def key_for(self, name: str) -> Key:
        return (str(self.path), self.prefix + name)

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        # dotenv://PATH#KEY: '#' names the variable, so there is no JSON field.
        path = Path(ref.location).expanduser() if ref.location else self.path
        if ref.location and not path.is_absolute():
            path = self.path.parent / path
        return (str(path), str(ref.fragment)), None

    def describe_key(self, key: Key) -> str:
        path, variable = _raw_key(key)
        return f"{variable} in {_shown(path)}"

    def is_local(self) -> bool:
        return True  # one file read, parsed once per change

    def get(self, key: Key) -> Found | NotFound:
        path, variable = _split_key(key)
        values = self._read(path)
        if values is None:
            return NotFound(f"{_shown(path)} does not exist")
        if variable not in values:
            return NotFound(f"{_shown(path)} has no {variable}")
        value = values[variable]
        if value is None:
            return NotFound(f"{_shown(path)} declares {variable} without a value")
        return Found(SecretValue(value), f"{_shown(path)} has {variable}")

    def _read(self, path: Path) -> dict[str, str | None] | None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BackendError(f"cannot read {path}: {error.strerror}") from None
        if not path.is_file():
            raise BackendError(f"{path} is not a file")
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._parsed.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        values = self._parse(path)
        with self._lock:
            self._parsed[path] = (stamp, values)
        return values

    def _parse(self, path: Path) -> dict[str, str | None]:
        try:
            from dotenv import dotenv_values
        except ImportError:  # pragma: no cover - python-dotenv is a core dependency
            raise SourceUnavailableError(
                "python-dotenv is not installed (pip install 'authchain[dotenv]')"
            ) from None
        try:
            return dict(dotenv_values(path, interpolate=self.interpolate, encoding=self.encoding))
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else f"not {self.encoding} text"
        # Raised outside the handler: a UnicodeDecodeError holds the file's bytes,
        # and python-dotenv's frames its text; neither may travel on as __context__.
        raise BackendError(f"cannot read {path}: {reason}")

    def check(self) -> CheckResult:
        if not self.path.exists():
            return self.result("ok", f"{self.path} does not exist (every name is 'not found')")
        try:
            self._read(self.path)
        except BackendError as error:
            return self.result("misconfigured", error.message)
        return self.result("ok", f"reads {self.path}")

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "path": str(self.path)}


def _shown(path: Path | str) -> str:
    """How messages name a file: ``./.env`` under the working directory, else the full path.

    Plain string work, not ``Path.relative_to``: the chain names the key of
    every source it asks, so this runs on each lookup.
    """
    text = str(path)
    here = os.path.join(os.getcwd(), "")
    return f"./{text[len(here) :]}" if text.startswith(here) and len(text) > len(here) else text


def _raw_key(key: Key) -> tuple[str, str]:
    parts: tuple[str, str] = key  # type: ignore[assignment]
    return parts


def _split_key(key: Key) -> tuple[Path, str]:
    parts: tuple[str, str] = key  # type: ignore[assignment]
    return Path(parts[0]), parts[1]
