"""Find and read the TOML config, apply a profile and ``AUTHCHAIN_*`` overrides.

Config lives in ``authchain.toml`` (top level) or ``[tool.authchain]`` in
``pyproject.toml``, found from the working directory upwards;
``AUTHCHAIN_CONFIG`` names a file and ``AUTHCHAIN_PROFILE`` picks
``[profiles.NAME]``. A file found by the search is not trusted to name
where credentials go until ``authchain trust`` records it (see
:mod:`authchain._trust`). This module turns that into :class:`Settings`, typed and
validated, recording where each setting came from; it does no backend I/O.
Every error names the file, the key and what was expected, and never echoes
a value (a misplaced secret must not be printed back).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from authchain._declarations import client_kinds, declared
from authchain._limits import CHAIN_RANGES
from authchain._process import ProcessLocal
from authchain._registry import load_source_class, registered_types
from authchain._scrub import scrubbed
from authchain.errors import ConfigError
from authchain.refs import LazyPattern, SecretRef, is_reference
from authchain.sources.base import Option, _suggest

if TYPE_CHECKING:
    from authchain._chain import Chain

__all__ = ["CONFIG_FILENAME", "Settings", "find_config_file", "load_settings"]

CONFIG_FILENAME = "authchain.toml"


TOP_LEVEL: dict[str, Option] = {
    option.name: option
    for option in (
        Option("order", list, None, "source names in the order they are asked"),
        Option(
            "cache_ttl",
            float,
            300.0,
            "seconds a found value is cached (0 disables)",
            minimum=CHAIN_RANGES["cache_ttl"][0],
            maximum=CHAIN_RANGES["cache_ttl"][1],
        ),
        Option(
            "negative_ttl",
            float,
            0.0,
            "seconds a 'not found' is cached",
            minimum=CHAIN_RANGES["negative_ttl"][0],
            maximum=CHAIN_RANGES["negative_ttl"][1],
        ),
        Option(
            "stale_if_error",
            float,
            0.0,
            "seconds an expired value may be served when its refresh fails",
            minimum=CHAIN_RANGES["stale_if_error"][0],
            maximum=CHAIN_RANGES["stale_if_error"][1],
        ),
        Option(
            "retries",
            int,
            2,
            "retries after a retryable backend error",
            minimum=CHAIN_RANGES["retries"][0],
            maximum=CHAIN_RANGES["retries"][1],
        ),
        Option(
            "backoff",
            float,
            0.2,
            "base delay in seconds of the exponential backoff",
            minimum=CHAIN_RANGES["backoff"][0],
            maximum=CHAIN_RANGES["backoff"][1],
        ),
        Option(
            "backoff_max",
            float,
            5.0,
            "largest delay in seconds between retries",
            minimum=CHAIN_RANGES["backoff_max"][0],
            maximum=CHAIN_RANGES["backoff_max"][1],
        ),
        Option(
            "max_workers",
            int,
            8,
            "threads for concurrent lookups in resolve_many",
            minimum=CHAIN_RANGES["max_workers"][0],
            maximum=CHAIN_RANGES["max_workers"][1],
        ),
        Option(
            "async_workers",
            int,
            8,
            "threads that make the SDK calls of aresolve, aresolve_many and aexplain",
            minimum=CHAIN_RANGES["async_workers"][0],
            maximum=CHAIN_RANGES["async_workers"][1],
        ),
        Option(
            "deadline",
            float,
            30.0,
            "seconds one lookup may take, retries included (0: none)",
            minimum=CHAIN_RANGES["deadline"][0],
            maximum=CHAIN_RANGES["deadline"][1],
        ),
    )
}
TABLES = ("sources", "secrets", "clients", "profiles", "run")
RUN_KEYS = ("only",)  # [run]: settings of `authchain run`

# The patterns are compiled when first used (refs.LazyPattern): a process
# without a config file uses none of them.
# Keys whose string value would be a credential if written literally.
_SECRET_KEY = LazyPattern(
    r"(?:^|_)(token|password|passwd|pwd|secret|secret_id|api_key|apikey|private_key|"
    r"access_key|secret_key|secret_access_key|client_secret|credentials?|jwt|role_id)$",
    re.IGNORECASE,
)
# Hostile-input bounds for a config file (see _read_toml): an authchain config
# is a few kB and a few tables deep; anything far beyond is a mistake or an attack.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 32
_INT64 = (-(2**63), 2**63 - 1)  # TOML integers are 64-bit; the spec says to refuse others
_CONTROL = LazyPattern(r"[\x00-\x1f\x7f]")
_SECRET_NAME = LazyPattern(r"[A-Z][A-Z0-9_]*")
_WHOLE_VARIABLE = LazyPattern(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
_VARIABLE = LazyPattern(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


class Settings(ProcessLocal):
    """The effective configuration: file, profile, values and where each came from.

    A plain class with the constructor, equality and field order of the
    dataclass it was: ``dataclasses`` costs about 8 ms to import (it pulls in
    ``inspect``), paid on the first ``resolve`` of every process, for one
    ``__init__`` and one ``__eq__``.

    Attributes:
        raw_clients: ``[clients.KIND]`` tables as written (``${VAR}`` not yet
            expanded): the client factories expand and validate them when
            they build a client.
        run: ``[run]``: settings of ``authchain run`` (``only``: the
            variables it resolves).
        environ: the environment ``${VAR}`` came from (None: ``os.environ``);
            never pickled.
        trust: ``named`` (the user named the file), ``trusted`` (found and
            trusted with ``authchain trust``), ``untrusted`` (found, and not
            trusted as it is now), or ``no file``. Sources whose endpoint an
            untrusted file names get no credentials (see ``Chain.from_settings``).
        digest: SHA-256 of the bytes that were parsed, when the file was found
            by searching: trust is checked against exactly these, never
            against a second read a swapped file could answer.
    """

    path: Path | None
    profile: str | None
    values: dict[str, Any]
    sources: dict[str, dict[str, Any]] | None
    secrets: dict[str, SecretRef]
    origins: dict[str, str]
    raw_sources: dict[str, dict[str, Any]]
    raw_clients: dict[str, dict[str, Any]]
    run: dict[str, Any]
    environ: Mapping[str, str] | None
    base_dir: Path
    cwd: Path
    key_prefix: str
    trust: str
    digest: str | None

    _FIELDS: ClassVar[tuple[str, ...]] = (
        "path",
        "profile",
        "values",
        "sources",
        "secrets",
        "origins",
        "raw_sources",
        "raw_clients",
        "run",
        "environ",
        "base_dir",
        "cwd",
        "key_prefix",
        "trust",
        "digest",
    )

    # A pickled chain carries its settings; the environment (which may hold
    # secrets) stays in this process.
    _seam_attrs: ClassVar[tuple[str, ...]] = ("environ",)

    def __init__(
        self,
        path: Path | None = None,
        profile: str | None = None,
        values: dict[str, Any] | None = None,
        sources: dict[str, dict[str, Any]] | None = None,
        secrets: dict[str, SecretRef] | None = None,
        origins: dict[str, str] | None = None,
        raw_sources: dict[str, dict[str, Any]] | None = None,
        raw_clients: dict[str, dict[str, Any]] | None = None,
        run: dict[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        cwd: Path | None = None,
        key_prefix: str = "",
        trust: str = "no file",
        digest: str | None = None,
    ) -> None:
        self.path = path
        self.profile = profile
        self.values = {} if values is None else values
        self.sources = sources
        self.secrets = {} if secrets is None else secrets
        self.origins = {} if origins is None else origins
        self.raw_sources = {} if raw_sources is None else raw_sources
        self.raw_clients = {} if raw_clients is None else raw_clients
        self.run = {} if run is None else run
        self.environ = environ
        self.base_dir = Path.cwd() if base_dir is None else base_dir
        self.cwd = Path.cwd() if cwd is None else cwd
        self.key_prefix = key_prefix
        self.trust = trust
        self.digest = digest

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def value(self, key: str) -> Any:
        return self.values.get(key, TOP_LEVEL[key].default)

    def __repr__(self) -> str:
        # Where the settings came from, not what they hold: a value (a URL with a
        # password, an expanded ${VAR}) must not reach a log line or a traceback.
        sources = None if self.sources is None else sorted(self.sources)
        return (
            f"Settings(path={self.display!r}, profile={self.profile!r}, sources={sources!r}, "
            f"secrets={sorted(self.secrets)!r}, clients={sorted(self.raw_clients)!r})"
        )

    @property
    def display(self) -> str:
        return str(self.path) if self.path else "(no config file)"


def find_config_file(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """``AUTHCHAIN_CONFIG``, else the nearest ``authchain.toml`` or
    ``pyproject.toml`` with ``[tool.authchain]`` from ``start`` upwards."""
    environ = os.environ if environ is None else environ
    named = environ.get("AUTHCHAIN_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"AUTHCHAIN_CONFIG names {path}, which is not a file")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
        if os.path.lexists(candidate):
            # A FIFO, a directory or a dangling link under the config's name:
            # passing it by would quietly answer from a parent folder's config.
            raise ConfigError(
                f"{candidate} is not a regular file; remove it or name a config with AUTHCHAIN_CONFIG"
            )
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _names_tool_authchain(pyproject):
            return pyproject
    return None


@scrubbed
def load_settings(
    path: str | Path | None = None,
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Read, merge and validate the configuration (see the module docstring).

    Raises:
        ConfigError: a missing or invalid file, unknown key, wrong type, bad
            ``order``, unknown profile or source type, or a literal secret.
    """
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    config_path = Path(path).expanduser() if path is not None else find_config_file(cwd, environ)
    searched = path is None and not environ.get("AUTHCHAIN_CONFIG")
    profile = profile or environ.get("AUTHCHAIN_PROFILE") or None
    if config_path is None:
        if profile:
            raise ConfigError(f"profile {profile!r} was requested but no {CONFIG_FILENAME} was found")
        settings = Settings(base_dir=cwd)
    else:
        settings = _settings_from_file(config_path, profile, digest=searched)
    settings.cwd = cwd
    settings.environ = None if environ is os.environ else environ
    settings.trust = _trust_status(config_path, searched, environ, settings.digest)
    _apply_environment(settings, environ)
    _validate(settings, environ, cwd)
    return settings


def _trust_status(
    path: Path | None, searched: bool, environ: Mapping[str, str], parsed: str | None = None
) -> str:
    if path is None:
        return "no file"
    if not searched:
        return "named"
    from authchain._trust import is_trusted  # hashlib, json, tempfile: only with a file to check

    return "trusted" if is_trusted(path, environ, digest=parsed) else "untrusted"


def untrusted_endpoint(settings: Settings | None, prefix: str, names: Iterable[str]) -> str | None:
    """Why credentials must not go where ``names`` point, or None when they may.

    ``prefix`` is ``sources.NAME`` or ``clients.KIND``; ``names`` are the
    settings that decide where credentials are sent. The answer is a reason
    (for a ``ConfigError``) when the settings come from a file found by
    searching upwards that the user has not trusted as it is now.
    """
    if settings is None or settings.trust != "untrusted":
        return None
    written = [name for name in names if f"{prefix}.{name}" in settings.origins]
    if not written:
        return None
    return (
        f"{settings.path}: {settings.key_prefix}{prefix}.{written[0]} decides where credentials are sent, "
        f"and this file was {_FOUND_UNTRUSTED}, so no credentials (from the environment, "
        "~/.vault-token, an SDK's own chain or any other source) are sent there. "
        f"{_trust_hint(settings)}"
    )


def untrusted_reference(settings: Settings | None, endpoint: str) -> str | None:
    """Why a reference whose text picks the host credentials go to (``azure-kv://VAULT/...``
    is ``https://VAULT.vault.azure.net``) must not be read, or None when it may.

    While a config file found by searching upwards is untrusted, such a
    reference may name only a configured source's own endpoint: the file (a
    ``[secrets]`` pin, a ``credentials`` setting) could otherwise send the
    user's token to a host of its choosing.
    """
    if settings is None or settings.trust != "untrusted":
        return None
    return (
        f"a reference that sends credentials to {endpoint} (not the endpoint of a configured source) "
        f"is not read while {settings.path} is in use: it was {_FOUND_UNTRUSTED}, and could have "
        f"chosen that host. {_trust_hint(settings)}"
    )


_FOUND_UNTRUSTED = "found by searching upwards from the working directory without being trusted"


def _trust_hint(settings: Settings) -> str:
    """The way out both refusals above give: trust the file (its path quoted for a shell), or name it."""
    import shlex  # only for these messages

    return (
        f"If you trust this file as it is, run `authchain trust {shlex.quote(str(settings.path))}` "
        "(again after each change), or name it with AUTHCHAIN_CONFIG or --config"
    )


def _names_tool_authchain(pyproject: Path) -> bool:
    """Whether a ``pyproject.toml`` met while searching has a ``[tool.authchain]`` table.

    Most projects have a ``pyproject.toml`` without one, so the text is parsed
    only if it can spell ``authchain``: literally, or through a ``\\u``/``\\U``
    escape in a quoted key (the only other way TOML can). Otherwise the first
    ``resolve`` of every process started in a project would import and run
    the TOML parser for nothing.
    """
    raw = _read_config_bytes(pyproject)
    if b"authchain" not in raw and b"\\u" not in raw and b"\\U" not in raw:
        return False
    return "authchain" in _parse_toml(raw, pyproject).get("tool", {})


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse a config file; anything hostile is a :class:`ConfigError`, never a crash or a hang.

    Only a regular file of at most ``MAX_CONFIG_BYTES`` is read (a FIFO, a
    device such as ``/dev/zero`` behind a symlink, or a directory is refused
    before a byte is read), it must be UTF-8, and nesting too deep for the
    parser is reported as such instead of a ``RecursionError``.
    """
    return _parse_toml(_read_config_bytes(path), path)


def _parse_toml(raw: bytes, path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        # The offset only: the bytes themselves could be anything, a secret included.
        raise ConfigError(f"{path}: not UTF-8 text (invalid byte at offset {error.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deep to read") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ConfigError(
            f"{path}: invalid TOML: a value that cannot be read (a number thousands of digits long?)"
        ) from None


def _read_config_bytes(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``MAX_CONFIG_BYTES``.

    Opened non-blocking and checked with ``fstat`` on the open descriptor, so
    a FIFO cannot block the open and nothing can be swapped in between the
    check and the read; the read itself stops one byte past the limit.
    """
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"config file {path} is not a regular file (a directory, FIFO or device)")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(descriptor, MAX_CONFIG_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_CONFIG_BYTES:  # it grew after fstat
            raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
        return b"".join(chunks)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    finally:
        os.close(descriptor)


def _check_shape(data: Mapping[str, Any], where: str) -> None:
    """Refuse what every later walk over the config would trip on, before any walk runs.

    Nesting deeper than ``MAX_CONFIG_DEPTH`` (dotted keys nest without limit
    in the parser, and ``expand``, ``describe`` and the literal-secret check
    recurse), integers beyond 64 bits (TOML's own limit; Python would
    otherwise fail converting them to a float) and keys with control
    characters (they would reach messages and terminals). Iterative, so the
    check itself cannot overflow the stack; messages name the key, never a value.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, keys = stack.pop()
        if len(keys) > MAX_CONFIG_DEPTH:
            raise ConfigError(
                f"{where}: {_key_path(keys)} is nested more than {MAX_CONFIG_DEPTH} levels deep"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or _CONTROL.search(key):
                    raise ConfigError(f"{where}: a key under {_key_path(keys)} has a control character")
                stack.append((item, (*keys, key)))
        elif isinstance(value, list):
            stack.extend((item, (*keys, f"[{number}]")) for number, item in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            raise ConfigError(f"{where}: {_key_path(keys)} is an integer beyond 64 bits")


def _check_names(data: Mapping[str, Any], where: str, prefix: str) -> None:
    """Names of secrets, sources and profiles (also inside profiles) are non-empty words.

    An empty or space-padded name could never be asked for by that name, and
    would show up blank or misaligned in every message that names it.
    """
    layers: list[tuple[Mapping[str, Any], str]] = [(data, prefix)]
    profiles = data.get("profiles")
    if isinstance(profiles, dict):
        layers.extend(
            (table, f"{prefix}profiles.{name}.")
            for name, table in profiles.items()
            if isinstance(table, dict)
        )
    for layer, at in layers:
        for table in ("secrets", "sources", "profiles"):
            names = layer.get(table)
            if not isinstance(names, dict):
                continue
            for name in names:
                if not name or name != name.strip():
                    raise ConfigError(
                        f"{where}: {at}{table} has an empty name or one with surrounding spaces"
                    )


def _key_path(keys: tuple[str, ...]) -> str:
    """``a.b.c`` for a message, shortened when deep (the key names were written by the user)."""
    if not keys:
        return "the top level"
    shown = [key if key.startswith("[") else ascii(key)[1:-1] for key in keys]
    if len(shown) > 6:
        shown = [*shown[:3], "(...)", *shown[-2:]]
    return ".".join(shown).replace(".[", "[")


def _settings_from_file(path: Path, profile: str | None, *, digest: bool = False) -> Settings:
    """``digest``: keep the SHA-256 of the bytes parsed (a file found by searching,
    whose trust is judged on exactly those bytes)."""
    raw = _read_config_bytes(path)
    data = _parse_toml(raw, path)
    sha256 = None
    if digest:
        import hashlib  # OpenSSL: only for a file whose trust is checked

        sha256 = hashlib.sha256(raw).hexdigest()
    prefix = ""
    if path.name == "pyproject.toml":
        if "authchain" not in data.get("tool", {}):
            raise ConfigError(f"{path} has no [tool.authchain] table")
        data, prefix = data["tool"]["authchain"], "tool.authchain."
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {prefix or 'the top level'} must be a table")
    # Only the authchain part: a pyproject's other tools may nest as they like.
    _check_shape(data, f"{path}: {prefix}" if prefix else str(path))
    _check_names(data, str(path), prefix)
    settings = Settings(
        path=path, profile=profile, base_dir=path.resolve().parent, key_prefix=prefix, digest=sha256
    )
    _check_layout(data, settings, where=str(path), in_profile=False)
    _merge(settings, {k: v for k, v in data.items() if k != "profiles"}, str(path))
    if profile:
        profiles = data.get("profiles", {})
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError(f"{path}: unknown profile {profile!r} (profiles: {known})")
        layer = f"{path} [profiles.{profile}]"
        _check_layout(profiles[profile], settings, where=layer, in_profile=True)
        _merge(settings, profiles[profile], layer)
    return settings


def _check_layout(data: Mapping[str, Any], settings: Settings, *, where: str, in_profile: bool) -> None:
    allowed = set(TOP_LEVEL) | set(TABLES)
    if in_profile:
        allowed.discard("profiles")
    for key, value in data.items():
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {settings.key_prefix}{key!s}{_suggest(key, allowed)}; "
                f"known keys: {', '.join(sorted(allowed))}"
            )
        if key in TABLES and not isinstance(value, dict):
            raise ConfigError(f"{where}: {settings.key_prefix}{key} must be a table")
    for name, table in data.get("sources", {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {settings.key_prefix}sources.{name} must be a table")
    for name, table in data.get("profiles", {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {settings.key_prefix}profiles.{name} must be a table")
    kinds = tuple(client_kinds()) if data.get("clients") else ()  # what the backends declare
    for kind, table in data.get("clients", {}).items():
        if kind not in kinds:
            raise ConfigError(
                f"{where}: unknown client {settings.key_prefix}clients.{kind}{_suggest(kind, kinds)}; "
                f"known: {', '.join(kinds)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {settings.key_prefix}clients.{kind} must be a table")
        _reject_literal_secrets(table, f"{where}: {settings.key_prefix}clients.{kind}")
    _check_run_table(data.get("run", {}), f"{where}: {settings.key_prefix}run")


def _check_run_table(table: Mapping[str, Any], where: str) -> None:
    for key, value in table.items():
        if key not in RUN_KEYS:
            raise ConfigError(f"{where}: unknown key {key!s}; known keys: {', '.join(RUN_KEYS)}")
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise ConfigError(f'{where}.{key} must be a list of variable names or patterns, e.g. ["DB_*"]')


def _merge(settings: Settings, layer: Mapping[str, Any], origin: str) -> None:
    """Apply one layer (the file, then a profile): scalars and ``order`` replace,
    ``sources.NAME`` tables merge key by key, ``secrets`` merge name by name."""
    for key, value in layer.items():
        if key == "sources":
            for name, table in value.items():
                merged = settings.raw_sources.setdefault(name, {})
                merged.update(table)
                for option in table:
                    settings.origins[f"sources.{name}.{option}"] = origin
            settings.sources = {name: dict(table) for name, table in settings.raw_sources.items()}
        elif key == "secrets":
            for name, ref in value.items():
                settings.values.setdefault("_secrets", {})[name] = ref
                settings.origins[f"secrets.{name}"] = origin
        elif key == "run":
            for option, item in value.items():
                settings.run[option] = list(item)
                settings.origins[f"run.{option}"] = origin
        elif key == "clients":
            for kind, table in value.items():
                settings.raw_clients.setdefault(kind, {}).update(table)
                for option in table:
                    settings.origins[f"clients.{kind}.{option}"] = origin
        else:
            settings.values[key] = value
            settings.origins[key] = origin


def _apply_environment(settings: Settings, environ: Mapping[str, str]) -> None:
    for key in TOP_LEVEL:
        variable = f"AUTHCHAIN_{key.upper()}"
        if variable in environ:
            text = environ[variable]
            value: Any = (
                [part.strip() for part in text.split(",") if part.strip()] if key == "order" else text
            )
            settings.values[key] = value
            settings.origins[key] = variable


def _validate(settings: Settings, environ: Mapping[str, str], cwd: Path) -> None:
    where = settings.display
    for key, option in TOP_LEVEL.items():
        if key in settings.values:
            label = _label(settings, settings.origins.get(key, where))
            raw = expand(settings.values[key], environ, label + key)
            settings.values[key] = option.coerce(raw, label)
    pins = settings.values.pop("_secrets", {})
    for name, text in pins.items():
        location = f"{_label(settings, settings.origins[f'secrets.{name}'])}secrets.{name}"
        if not isinstance(text, str):
            raise ConfigError(f"{location} must be a reference string such as env://NAME")
        expanded = expand(text, environ, location)
        if "://" not in expanded:
            # Not even shaped like a reference: most likely a literal secret (or
            # a ${VAR} holding one), so the message must not quote it.
            raise ConfigError(
                f"{location} is not a reference (value not shown): a config holds references, "
                f"not values; expected SCHEME://..., for example env://{name}"
            )
        try:
            settings.secrets[name] = SecretRef.parse(expanded)
        except ConfigError as error:
            if expanded != text:  # the message could quote what ${...} expanded to
                raise ConfigError(
                    f"{location}: the reference is malformed after ${{...}} expansion "
                    "(the expanded text is not shown)"
                ) from None
            raise ConfigError(f"{location}: {error}") from None
    if settings.sources is None:
        _check_order(settings, default_source_definitions(cwd, environ))
        return
    if not settings.sources:
        raise ConfigError(f"{where}: {settings.key_prefix}sources is empty; define at least one source")
    for name, table in settings.sources.items():
        _validate_source(settings, name, table)
    _check_order(settings, settings.sources)
    for name in active_source_names(settings, settings.sources):
        location = (
            f"{settings.origins.get(f'sources.{name}.type', where)}: {settings.key_prefix}sources.{name}"
        )
        table = {
            key: expand(value, environ, f"{location}.{key}") for key, value in settings.sources[name].items()
        }
        for key, value in table.items():
            check_expanded_secret_setting(key, settings.sources[name][key], value, f"{location}.{key}")
        options = {key: value for key, value in table.items() if key != "type"}
        load_source_class(table["type"]).validate_settings(
            options, where=location, base_dir=settings.base_dir
        )
        settings.sources[name] = table


def _label(settings: Settings, origin: str) -> str:
    """The prefix for a top-level key in messages: ``file: tool.authchain.`` or ``AUTHCHAIN_X: ``."""
    if origin.startswith("AUTHCHAIN_"):
        return f"{origin}: "
    return f"{origin}: {settings.key_prefix}"


def _validate_source(settings: Settings, name: str, table: Mapping[str, Any]) -> None:
    origin = settings.origins.get(f"sources.{name}.type") or next(
        (v for k, v in settings.origins.items() if k.startswith(f"sources.{name}.")), settings.display
    )
    where = f"{settings.key_prefix}sources.{name}"
    type_name = table.get("type")
    if not isinstance(type_name, str):
        raise ConfigError(
            f'{origin}: {where} needs type = "..." (one of {", ".join(sorted(registered_types()))})'
        )
    try:
        cls = load_source_class(type_name)
    except ConfigError as error:
        raise ConfigError(f"{origin}: {where}: {error}") from None
    _reject_literal_secrets(table, f"{origin}: {where}")
    known = {option.name for option in cls.all_options()} | {"type"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{origin}: {where} has unknown setting {unknown[0]!r} for type {type_name!r}"
            f"{_suggest(unknown[0], known)}; known settings: {', '.join(sorted(known))}"
        )


def _reject_literal_secrets(table: Mapping[str, Any], where: str) -> None:
    for key, value in table.items():
        if isinstance(value, dict):
            _reject_literal_secrets(value, f"{where}.{key}")
            continue
        if not _SECRET_KEY.search(key):
            continue
        if isinstance(value, list):  # credentials = ["AKIA...", "..."]: every item must be indirect
            literal = any(not isinstance(item, str) or not _is_indirect(item) for item in value)
        else:
            literal = isinstance(value, str) and not _is_indirect(value)
        if literal:
            raise ConfigError(
                f"{where}.{key} looks like a literal secret. A config holds references, "
                f"not values: use a reference such as env://{key.upper()} or "
                f"vault://secret/app#{key}, a secret name such as {key.upper()}, or ${{{key.upper()}}}"
            )


def check_expanded_secret_setting(key: str, written: Any, expanded: Any, where: str) -> None:
    """A credential setting written as ``${VAR}`` must still name or reference a secret once expanded.

    ``token = "${VAULT_TOKEN}"`` with the token itself in ``VAULT_TOKEN`` would
    make the token a *name* to look up, and names are quoted in "not found"
    messages. The message never shows what the variable held.

    Raises:
        ConfigError: a secret-looking key whose expansion is neither a secret
            name (UPPER_SNAKE) nor a valid reference.
    """
    if written == expanded or not _SECRET_KEY.search(key):
        return
    items = expanded if isinstance(expanded, list) else [expanded]
    if all(not isinstance(item, str) or _is_indirect(item) for item in items):
        return
    raise ConfigError(
        f"{where}: ${{...}} expands to text that is neither a secret name nor a reference "
        "(not shown): a credential setting names where the credential is (DB_PASSWORD, "
        "env://DB_PASSWORD, vault://secret/app#password), it does not hold it"
    )


def _is_indirect(value: str) -> bool:
    """A reference, a whole ``${VAR}``, or an UPPER_SNAKE secret name to resolve."""
    if _WHOLE_VARIABLE.fullmatch(value) or _SECRET_NAME.fullmatch(value):
        return True
    if is_reference(value):
        try:
            SecretRef.parse(value)
        except ConfigError:
            return False
        return True
    return False


def _check_order(settings: Settings, sources: Mapping[str, Any]) -> None:
    order = settings.values.get("order")
    if order is None:
        return
    origin = settings.origins.get("order", settings.display)
    if order and order[0] == "explicit":  # always first; tolerated where users write it
        order = order[1:]
    seen: set[str] = set()
    for name in order:
        if name == "explicit":
            raise ConfigError(
                f"{origin}: order: 'explicit' is always asked first; list it first or not at all"
            )
        if name not in sources:
            raise ConfigError(
                f"{origin}: order names {name!r}, which is not a defined source"
                f"{_suggest(name, sources)}; defined sources: {', '.join(sources)}"
            )
        if name in seen:
            raise ConfigError(f"{origin}: order lists {name!r} twice")
        seen.add(name)
    settings.values["order"] = order


def expand(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in strings (``$$`` is a literal ``$``).

    Raises:
        ConfigError: an unset variable without a default, or a malformed ``${``.
    """
    if isinstance(value, dict):
        return {key: expand(item, environ, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, environ, where) for item in value]
    if not isinstance(value, str) or "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group(0) == "${":
            raise ConfigError(f"{where} has a malformed ${{...}} (expected ${{NAME}} or ${{NAME:-default}})")
        name, default = match.group(1), match.group(2)
        current = environ.get(name)
        if current:
            return current
        if default is not None:
            return default
        if current is not None:
            return current
        raise ConfigError(f"{where} uses ${{{name}}} but {name} is not set (a default: ${{{name}:-...}})")

    return _VARIABLE.sub(substitute, value)


def default_source_definitions(
    cwd: Path, environ: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The chain with no ``sources`` configured: what authchain's own backends say of
    themselves (``default_sources`` in a backend's package), in chain order (by rank).

    Today: Prefect (its source only answers inside a flow or task run), the
    secret files the platform mounted (only where ``$CREDENTIALS_DIRECTORY``
    is set or ``/run/secrets`` exists), the environment, then ``./.env``. Only
    authchain's own types are asked (read without scanning other
    distributions): a plugin never joins the default chain by being installed.
    The default sources' own modules are imported (for their rank), never an SDK.
    """
    environ = os.environ if environ is None else environ
    definitions: dict[str, dict[str, Any]] = {}
    for declare in declared("default_sources").values():
        definitions.update(declare(cwd, environ))
    ranked = sorted(definitions.items(), key=lambda item: load_source_class(item[1]["type"]).rank)
    return dict(ranked)


def active_source_names(settings: Settings, definitions: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``order`` if given, else every definition in canonical order (rank, then file order)."""
    order = settings.values.get("order")
    if order is not None:
        return list(order)
    ranked = sorted(
        enumerate(definitions.items()),
        key=lambda item: (load_source_class(item[1][1]["type"]).rank, item[0]),
    )
    return [name for _, (name, _) in ranked]


def describe(chain: Chain, settings: Settings) -> dict[str, Any]:
    """The effective configuration with the origin of each setting (``authchain config``).

    Settings whose key looks secret show the text written in the config (a
    reference or ``${VAR}``), never an expanded value.
    """
    top = {
        key: {"value": settings.value(key), "origin": settings.origins.get(key, "default")}
        for key in TOP_LEVEL
    }
    sources = []
    for source in chain.sources:
        raw = settings.raw_sources.get(source.name, {})
        shown: dict[str, dict[str, Any]] = {}
        derived = source.derived_settings()
        for key, value in source.settings().items():
            if _SECRET_KEY.search(key) and value is not None:
                value = raw.get(key, "**********")
            origin = settings.origins.get(f"sources.{source.name}.{key}")
            if origin is None and key in derived:
                base = settings.origins.get(f"sources.{source.name}.{derived[key]}", "default")
                origin = f"derived from {derived[key]} ({base})"
            origin = origin or "default"
            shown[key] = {"value": _jsonable(value), "origin": origin}
        entry: dict[str, Any] = {"name": source.name, "type": source.type, "settings": shown}
        if getattr(source, "_credentials_refused", None):
            entry["credentials"] = "refused: its endpoint comes from an untrusted config file"
        sources.append(entry)
    secrets = {
        name: {"reference": _jsonable(str(ref)), "origin": settings.origins.get(f"secrets.{name}", "default")}
        for name, ref in settings.secrets.items()
    }
    clients = {
        kind: {
            key: {
                "value": _jsonable(value),
                "origin": settings.origins.get(f"clients.{kind}.{key}", "default"),
            }
            for key, value in table.items()
        }
        for kind, table in settings.raw_clients.items()
    }
    return {
        "file": str(settings.path) if settings.path else None,
        "trust": settings.trust,
        "profile": settings.profile,
        "settings": top,
        "sources": sources,
        "secrets": secrets,
        "clients": clients,
        "run": {
            key: {"value": value, "origin": settings.origins.get(f"run.{key}", "default")}
            for key, value in settings.run.items()
        },
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        from authchain._redact import redact_url_passwords

        return redact_url_passwords(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return _jsonable(str(value))
