"""The OS keyring: ``DB_PASSWORD`` → ``keyring.get_password(SERVICE, "DB_PASSWORD")``.

keyring is imported the first time the source is used. On a headless machine
with no usable backend keyring raises ``NoKeyringError``: the source is then
*unavailable* (the chain records keyring's reason and moves on, like "not
found"), never a crash and never a silent success.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from pathlib import Path
from typing import Any

from authchain import masking
from authchain.errors import BackendError, ConfigError, SourceUnavailableError
from authchain.refs import ReferenceGrammar, SecretRef, check_json_field, require
from authchain.sources.base import CheckResult, Found, Key, NotFound, Option, Source
from authchain.values import SecretValue

__all__ = ["KeyringSource"]

logger = logging.getLogger(__name__)

DEFAULT_SERVICE = "authchain"
INSTALL_HINT = "pip install 'authchain[keyring]'"


# -- references: keyring://SERVICE/USERNAME (this backend's grammar; see authchain.refs) ------


def _reference_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    service, slash, username = location.partition("/")
    require(bool(service) and bool(slash) and bool(username), "needs SERVICE/USERNAME")
    check_json_field(fragment)
    return location


class KeyringSource(Source):
    """Secrets in the OS keyring (macOS Keychain, Windows Credential Locker,
    Secret Service, or any keyring backend), one entry per name.

    Args:
        service: the keyring "service" every name is stored under; from a
            config file the default is the ``[project] name`` of the
            ``pyproject.toml`` beside it, else ``authchain``.
        backend: a keyring backend class as a dotted path
            (``keyrings.alt.file.PlaintextKeyring``), or a backend instance
            (a seam for tests); default: keyring's own choice
            (``PYTHON_KEYRING_BACKEND``, ``keyringrc.cfg``, then the best viable one).

    Example:
        >>> source = KeyringSource(service="my-app")
        >>> source.key_for("DB_PASSWORD")
        ('my-app', 'DB_PASSWORD')
    """

    type = "keyring"
    reference_grammar = ReferenceGrammar("keyring://SERVICE/USERNAME[#KEY]", _reference_location)
    # A dotted backend path is imported: only a trusted config file may choose it.
    endpoint_options = ("backend",)
    rank = 150  # the last of the secret stores, as in the canonical order
    extra = "keyring"
    concurrent = False  # desktop keyrings (D-Bus, Keychain) are not made for parallel callers
    options = (
        Option("service", str, None, "keyring service (default: the project name, else 'authchain')"),
        Option("backend", str, None, "dotted path of a keyring backend class (default: keyring's choice)"),
    )

    def __init__(self, *, service: str | None = None, backend: Any = None, **common: Any) -> None:
        super().__init__(**common)
        if service is not None and (not service or service != service.strip()):
            raise ConfigError(
                f"source {self.name!r}: service must be a non-empty name without surrounding spaces"
            )
        if backend is not None and isinstance(backend, str) and not _DOTTED.fullmatch(backend):
            raise ConfigError(
                f"source {self.name!r}: backend must be a dotted path "
                "such as keyrings.alt.file.PlaintextKeyring"
            )
        self.service = service or DEFAULT_SERVICE
        self.backend = backend if isinstance(backend, str) else None
        self._given = backend  # a path or an instance
        self._init_runtime()

    _runtime_attrs = ("_lock", "_keyring")

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._keyring: Any = None

    @classmethod
    def from_settings(cls, name: str, settings: Any, *, where: str, base_dir: Path | None = None) -> Source:
        kwargs = cls.validate_settings(settings, where=where, base_dir=base_dir)
        if kwargs.get("service") is None and base_dir is not None:
            kwargs["service"] = _project_name(base_dir)
        return cls(name=name, **kwargs)

    # -- names and references → keys --------------------------------------------

    def key_for(self, name: str) -> Key:
        return (self.service, name)

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        service, _, username = ref.location.partition("/")
        if not service or not username:
            raise ConfigError(f"keyring://{ref.location} needs SERVICE/USERNAME")
        return (service, username), ref.field

    def describe_key(self, key: Key) -> str:
        service, username = _split(key)
        return f"{service}/{username}"

    # -- reading and writing ---------------------------------------------------------

    def get(self, key: Key) -> Found | NotFound:
        service, username = _split(key)
        backend = self.keyring_backend()
        value = self._call(backend, "get_password", service, username)
        where = self.describe_key(key)
        if value is None:
            return NotFound(f"no entry {where} in {_label(backend)}")
        return Found(SecretValue(value), f"{where} is in {_label(backend)}")

    def set_password(self, service: str, username: str, value: str) -> None:
        """Store ``value`` under ``service``/``username`` (``authchain keyring set``)."""
        self._call(self.keyring_backend(), "set_password", service, username, value)

    def delete_password(self, service: str, username: str) -> bool:
        """Delete an entry; False when there was none (``authchain keyring delete``)."""
        backend = self.keyring_backend()
        if self._call(backend, "get_password", service, username) is None:
            return False
        self._call(backend, "delete_password", service, username)
        return True

    def keyring_backend(self) -> Any:
        """The keyring backend in use (imported and chosen on first use)."""
        with self._lock:
            if self._keyring is None:
                self._keyring = self._load_backend()
            return self._keyring

    def check(self) -> CheckResult:
        """Which backend answers, and whether it can hold anything: the fail backend
        (no keyring here) and the null backend (keyring turned off) make every lookup
        miss, and a plaintext file keyring is named with its file."""
        backend = self.keyring_backend()
        from keyring.backends import fail, null

        if isinstance(backend, fail.Keyring):
            try:  # keyring's fail backend explains itself only when used
                self._call(backend, "get_password", self.service, "authchain-check")
            except SourceUnavailableError as error:
                return self.result("unavailable", f"{_label(backend)}: {error}; every lookup misses")
        members = list(getattr(backend, "backends", None) or [])  # keyring's ChainerBackend
        if isinstance(backend, null.Keyring) or (
            members and all(isinstance(m, null.Keyring) for m in members)
        ):
            return self.result(
                "unavailable", f"{_label(backend)}: keyring is turned off (null backend); every lookup misses"
            )
        detail = f"{_label(backend)}, service {self.service!r}"
        if members:
            detail += f" (tries {', '.join(_label(member) for member in members)})"
        for plain in (candidate for candidate in (backend, *members) if _is_plaintext(candidate)):
            where = getattr(plain, "file_path", None)
            detail += f"; {_label(plain)} stores secrets unencrypted" + (f" in {where}" if where else "")
        return self.result("ok", detail)

    def close(self) -> None:
        with self._lock:
            if not isinstance(self._given, str) and self._given is not None:
                return  # an instance we were handed stays as it is
            self._keyring = None

    def settings(self) -> dict[str, Any]:
        shown = super().settings()
        if self.backend is None and self._given is not None:
            shown["backend"] = _label(self._given)
        return shown

    def _load_backend(self) -> Any:
        try:
            import keyring
            import keyring.errors
        except ImportError:
            raise ConfigError(
                f"the keyring source needs keyring, which is not installed ({INSTALL_HINT})"
            ) from None
        if self._given is None:
            return keyring.get_keyring()
        if not isinstance(self._given, str):
            return self._given
        # Importing a dotted path runs code: an untrusted config file found upwards
        # (a cloned repository) must not choose it (its own module would be on sys.path).
        self.ensure_credentials_allowed()
        module_name, _, class_name = self._given.replace(":", ".").rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ConfigError(
                f"source {self.name!r}: keyring backend {self._given!r} cannot be loaded: {error}"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, keyring.backend.KeyringBackend)):
            raise ConfigError(f"source {self.name!r}: {self._given!r} is not a keyring backend class")
        try:
            cls.priority  # noqa: B018 - keyring's viability check raises with the reason
        except Exception as error:
            raise SourceUnavailableError(f"keyring backend {self._given} cannot run here: {error}") from None
        return cls()

    def _call(self, backend: Any, method: str, *args: str) -> Any:
        import keyring.errors

        try:
            return getattr(backend, method)(*args)
        except keyring.errors.NoKeyringError as error:
            raise SourceUnavailableError(f"no keyring backend: {error}") from None
        except keyring.errors.KeyringLocked as error:
            raise BackendError(f"{_label(backend)} is locked: {_text(error)}", access_denied=True) from error
        except keyring.errors.InitError as error:
            raise SourceUnavailableError(f"{_label(backend)} cannot start: {_text(error)}") from None
        except keyring.errors.KeyringError as error:
            where = "/".join(args[:2])
            raise BackendError(
                f"{_label(backend)} failed on {where}: {type(error).__name__}: {_text(error)}"
            ) from error


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*([.:][A-Za-z_][A-Za-z0-9_]*)+")


def _split(key: Key) -> tuple[str, str]:
    if not (isinstance(key, tuple) and len(key) == 2):
        raise TypeError(f"not a keyring key: {key!r}")
    return str(key[0]), str(key[1])


def _label(backend: Any) -> str:
    cls = backend if isinstance(backend, type) else type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_plaintext(backend: Any) -> bool:
    """keyrings.alt's file keyring that keeps values in clear (base64 at most)."""
    cls = type(backend)
    return cls.__name__ == "PlaintextKeyring" and cls.__module__.startswith("keyrings.alt")


def _text(error: Exception) -> str:
    return masking.default_masker.mask(" ".join(str(error).split()))


def _project_name(base_dir: Path) -> str:
    """``[project] name`` from ``base_dir/pyproject.toml``, else ``authchain``."""
    path = base_dir / "pyproject.toml"
    if not path.is_file():
        return DEFAULT_SERVICE
    try:
        from authchain.config import _read_toml

        name = _read_toml(path).get("project", {}).get("name")
    except (ConfigError, OSError, AttributeError):
        return DEFAULT_SERVICE
    return name if isinstance(name, str) and name.strip() else DEFAULT_SERVICE
