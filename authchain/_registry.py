"""Source types by name, loaded lazily from the ``authchain.sources`` entry points.

authchain registers its own built-ins through the same entry-point group a
plugin uses (keyring's habit), so nothing is special about them: the
entry points alone say which types exist and where each lives. The table
below is used only when there is no metadata at all (a source checkout that
was never installed), never in preference to it. Loading a type imports
only its module; the module imports its SDK when first used.

Testing tools (the ``memory`` source) are not production types: nothing in
``authchain.testing`` is ever taken from the entry points (a stale install's
metadata may still list one), so ``authchain run`` and configs do not know
``memory://``. Test code registers them with :func:`register_testing_type`
(``authchain.testing.register_memory_source()``; the pytest plugin does it).

Cold start: scanning every installed distribution's entry points imports
``importlib.metadata`` (and through it the ``email`` package) and reads one
file per distribution: about 20 ms with 180 distributions, growing with the
environment, on the first ``resolve`` of every short process. So a name is
looked up first in authchain's *own* ``entry_points.txt`` (the same metadata,
found with one ``open`` per ``sys.path`` entry under its exact
``authchain-<version>.dist-info`` name, parsed without ``importlib``), and
every distribution is scanned only for a name that is not there (a
plugin's, or an unknown one) or when the whole list is asked for
(``registered_types``, ``authchain check``, an error message). The rule is
unchanged (the entry points alone register types); a cache file keyed by a
fingerprint of the installed distributions was the alternative, and was not
taken: it would be a file outside the process that maps a type name to code
to import, and its first use after each install would still pay the scan.
authchain's own entry points win over a plugin that declares the same name
(before, whichever distribution came first on ``sys.path`` did), so an
installed package cannot take over ``env`` or ``vault``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

from authchain._version import __version__
from authchain.errors import ConfigError

if TYPE_CHECKING:
    from authchain.sources.base import Source

__all__ = [
    "is_registered",
    "load_source_class",
    "plugin_errors",
    "production_types",
    "register_testing_type",
    "registered_types",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "authchain.sources"

# Only for a checkout without installed metadata (see production_types): a copy
# of pyproject.toml's entry points, never consulted when those are readable.
_BUILTIN: dict[str, str] = {
    "env": "authchain.backends.env.source:EnvSource",
    "dotenv": "authchain.backends.dotenv.source:DotenvSource",
    "aws-sm": "authchain.backends.aws.source:AWSSecretsManagerSource",
    "aws-ssm": "authchain.backends.aws.source:AWSParameterStoreSource",
    "vault": "authchain.backends.vault.source:VaultSource",
    "keyring": "authchain.backends.keyring.source:KeyringSource",
    "gcp-sm": "authchain.backends.gcp.source:GCPSecretManagerSource",
    "prefect": "authchain.backends.prefect.source:PrefectSource",
    "files": "authchain.backends.files.source:FilesSource",
    "azure-kv": "authchain.backends.azure.source:AzureKeyVaultSource",
}

_TESTING_PACKAGE = "authchain.testing"

_lock = threading.Lock()
_loaded: dict[str, type[Source]] = {}
_errors: dict[str, str] = {}
_testing: dict[str, str] = {}


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, str]:
    """``authchain.sources`` entry points of every installed distribution (testing tools aside)."""
    from importlib.metadata import entry_points

    found: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if _is_testing_target(entry.value):
            continue  # a testing tool is registered by test code, never by an install
        found.setdefault(entry.name, entry.value)
    return found


@lru_cache(maxsize=1)
def _own_entry_points() -> dict[str, str] | None:
    """authchain's own ``authchain.sources`` entry points, read without scanning (None: not found).

    The first ``authchain-<version>.dist-info`` on ``sys.path`` (the one
    ``importlib.metadata`` would also take for this version); an egg-info
    install or another version is not found here and takes the full scan.
    """
    name = f"authchain-{__version__}.dist-info"
    for folder in sys.path:
        try:
            with open(os.path.join(folder or ".", name, "entry_points.txt"), encoding="utf-8") as file:
                text = file.read()
        except OSError:
            continue
        return {
            key: value
            for key, value in _parse_group(text, ENTRY_POINT_GROUP)
            if not _is_testing_target(value)
        }
    return None


def _parse_group(text: str, group: str) -> list[tuple[str, str]]:
    """``name = value`` lines of one ``[group]`` of an ``entry_points.txt`` (INI, as the spec says)."""
    found: list[tuple[str, str]] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            key, _, value = line.partition("=")
            found.append((key.strip(), value.strip()))
    return found


def _target(type_name: str) -> str | None:
    """``module:Class`` for ``type_name``: testing types, then authchain's own entry
    points, and only for a name neither knows, every distribution's."""
    testing = _testing.get(type_name)
    if testing is not None:
        return testing
    own = _own_entry_points()
    if own is not None and type_name in own:
        return own[type_name]
    return registered_types().get(type_name)


def is_registered(type_name: str) -> bool:
    """Whether ``type_name`` is a known source type (a built-in's name costs no scan)."""
    return _target(type_name) is not None


def _is_testing_target(target: str) -> bool:
    module = target.partition(":")[0].strip()
    return module == _TESTING_PACKAGE or module.startswith(_TESTING_PACKAGE + ".")


def production_types() -> dict[str, str]:
    """Every source type a production process knows (testing types aside): the entry points,
    or the built-in table when authchain's own metadata is not installed at all."""
    own = _own_entry_points()
    if own is not None or _metadata_installed():  # found its own metadata: installed
        return {**_entry_points(), **(own or {})}
    return {**_BUILTIN, **_entry_points()}


@lru_cache(maxsize=1)
def _metadata_installed() -> bool:
    """Whether authchain's distribution metadata (and so its entry points) is installed."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("authchain")
    except PackageNotFoundError:
        return False
    return True


def registered_types() -> dict[str, str]:
    """Every source type name → ``module:Class``: :func:`production_types`, then the
    testing types registered in this process."""
    return {**production_types(), **_testing}


def register_testing_type(type_name: str, target: str) -> None:
    """Make a testing source type (``module:Class``) known in this process.

    For test sessions only: ``authchain.testing.register_memory_source()`` and
    the pytest plugin call it, so ``type = "memory"`` and ``memory://NAME``
    work in tests while a production process never knows them.
    """
    with _lock:
        _testing[type_name] = target


def load_source_class(type_name: str) -> type[Source]:
    """Import the class registered for ``type_name``.

    Raises:
        ConfigError: unknown type, or its module cannot be imported (the
            message names the extra to install when one is known).
    """
    with _lock:
        cached = _loaded.get(type_name)
    if cached is not None:
        return cached
    target = _target(type_name)
    if target is None:
        raise ConfigError(_unknown_type_message(type_name))
    module_name, _, attribute = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except ImportError as error:
        # Built-in sources import their SDK lazily, so this is a plugin's own import failing.
        _errors[type_name] = f"cannot import {target}: {error}"
        raise ConfigError(f"source type {type_name!r} cannot be loaded: {error}") from None
    except AttributeError:
        _errors[type_name] = f"{target} does not exist"
        raise ConfigError(f"source type {type_name!r}: {target} does not exist") from None
    with _lock:
        _loaded[type_name] = cls
    return cls  # type: ignore[no-any-return]


def plugin_errors() -> dict[str, str]:
    """Types whose plugin failed to load, with why: shown by ``authchain check``."""
    for type_name in registered_types():
        if type_name not in _loaded and type_name not in _errors:
            with contextlib.suppress(ConfigError):
                load_source_class(type_name)
    return dict(_errors)


def _unknown_type_message(type_name: str) -> str:
    known = ", ".join(sorted(registered_types()))
    return f"unknown source type {type_name!r} (known: {known})"
