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
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

from authchain.errors import ConfigError

if TYPE_CHECKING:
    from authchain.sources.base import Source

__all__ = [
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


def _is_testing_target(target: str) -> bool:
    module = target.partition(":")[0].strip()
    return module == _TESTING_PACKAGE or module.startswith(_TESTING_PACKAGE + ".")


def production_types() -> dict[str, str]:
    """Every source type a production process knows (testing types aside): the entry points,
    or the built-in table when authchain's own metadata is not installed at all."""
    return _entry_points() if _metadata_installed() else {**_BUILTIN, **_entry_points()}


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
    target = registered_types().get(type_name)
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
