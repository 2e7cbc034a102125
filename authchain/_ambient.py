"""The default chain as the lower layers reach it, without importing the chain.

``SecretRef.resolve()`` and a source nobody bound (one used on its own)
need "the process's default chain", which lives layers above them
(``authchain._default``). Importing it from below would close an import
cycle (refs → default → chain → refs); instead ``authchain._default``
registers its getter here when it is imported (``import authchain`` always
imports it), and the lower layers call :func:`default_chain`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from authchain._chain import Chain

__all__ = ["default_chain", "register_default_chain"]

_getter: Callable[[], Chain] | None = None


def register_default_chain(getter: Callable[[], Chain]) -> None:
    """Called once by ``authchain._default``: where :func:`default_chain` comes from."""
    global _getter
    _getter = getter


def default_chain() -> Chain:
    """The process's default chain (built from config on first use)."""
    if _getter is None:  # only if authchain's package __init__ never ran
        raise RuntimeError("authchain._default is not loaded; import authchain first")
    return _getter()
