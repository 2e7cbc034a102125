"""What authchain's own backend packages say of themselves, so the core names none of them.

A built-in backend package's ``__init__`` (``authchain/backends/<name>/``)
may declare, as plain data or one small function, importing nothing at
import time:

- ``default_sources(cwd, environ)``: the source tables it adds to the
  default chain (no ``sources`` configured); see :mod:`authchain.config`.
- ``CLIENT_KIND``: its ``[clients.KIND]`` table and ``explain_client(KIND)``.
  Its ``client.py`` then defines ``OPTIONS`` (the table's keys) and
  ``explain_<KIND>``.
- ``CLIENT_FACTORIES``: the public factory names its ``client.py`` defines;
  :mod:`authchain.clients` re-exports them, importing the module on first use.
- ``SDK_LOGGERS``: its SDK's wire loggers, kept at INFO under
  ``authchain --debug`` (see :mod:`authchain._sdk_logging`).

The packages are those of authchain's own source types
(:func:`authchain._registry.builtin_types`: its own ``entry_points.txt``,
never a scan of other distributions), so reading a declaration imports
only these small ``__init__`` modules: never a source or client module, and
never an SDK. A plugin declares none of these: it joins no default chain and
adds no ``[clients.KIND]`` table by being installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from authchain._registry import builtin_types

__all__ = ["builtin_packages", "client_factories", "client_kinds", "declared", "package_of", "sdk_loggers"]


def builtin_packages() -> tuple[str, ...]:
    """authchain's own backend packages (``authchain.backends.env``, ...), each once."""
    return tuple(dict.fromkeys(package_of(target) for target in builtin_types().values()))


def package_of(target: str) -> str:
    """The backend package of a built-in type's ``module:Class``, or of a module of that package
    (``authchain.backends.aws.client``, as :func:`client_kinds` names it)."""
    return target.partition(":")[0].rpartition(".")[0]


def declared(attribute: str) -> dict[str, Any]:
    """``attribute`` of each built-in backend package that declares it, by package."""
    found: dict[str, Any] = {}
    for package in builtin_packages():
        value = getattr(importlib.import_module(package), attribute, None)
        if value is not None:
            found[package] = value
    return found


def client_kinds() -> dict[str, str]:
    """Each declared client kind (``aws``) and the module that builds it (the package's
    ``client``), sorted by kind. Two packages declaring one kind is a bug: it raises."""
    kinds: dict[str, str] = {}
    for package, kind in declared("CLIENT_KIND").items():
        if kind in kinds:
            raise RuntimeError(f"client kind {kind!r} is declared by {kinds[kind]} and {package}")
        kinds[kind] = f"{package}.client"
    return dict(sorted(kinds.items()))


def client_factories() -> dict[str, str]:
    """Each declared public client factory (``aws_client``) and the module that defines it."""
    factories: dict[str, str] = {}
    for package, names in declared("CLIENT_FACTORIES").items():
        for name in names:
            if name in factories:
                raise RuntimeError(f"client factory {name!r} is declared by {factories[name]} and {package}")
            factories[name] = f"{package}.client"
    return factories


def sdk_loggers() -> tuple[str, ...]:
    """The wire loggers the built-in backends' SDKs declare, each once."""
    return tuple(dict.fromkeys(name for names in declared("SDK_LOGGERS").values() for name in names))
