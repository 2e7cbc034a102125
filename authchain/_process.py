"""What belongs to this process: state that never travels in a pickle, and the default chain.

**Pickling.** A chain, a source, a lazy client or a Dask plugin is pickled to
reach another process (multiprocessing, Dask, Ray). What travels is its
settings; what belongs to this process stays here: locks, SDK clients and
sessions, caches, parsed files, and test seams (an ``environ`` mapping) that
may hold values. A class declares those attributes once and
:class:`ProcessLocal` does the rest:

- ``_runtime_attrs``: dropped when pickled and rebuilt by ``_init_runtime()``
  (which ``__init__`` calls too), so a copy on a worker builds its own.
- ``_seam_attrs``: travel as None (the seam's "use the real thing"), never
  with what a test passed in.

Declarations add up along the class hierarchy: a subclass names only what
it adds.

**The default chain, as the lower layers reach it.** ``SecretRef.resolve()``
and a source nobody bound (one used on its own) need the process's default
chain, which lives layers above them (``authchain._default``). Importing it
from below would close an import cycle (refs → default → chain → refs);
instead ``authchain._default`` registers its getter here when it is imported
(``import authchain`` always imports it), and the lower layers call
:func:`default_chain`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from authchain._chain import Chain

__all__ = ["ProcessLocal", "default_chain", "register_default_chain"]


class ProcessLocal:
    """Mixin: pickle settings only; rebuild runtime state where unpickled (see the module doc)."""

    _runtime_attrs: ClassVar[tuple[str, ...]] = ()
    _seam_attrs: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        runtime: dict[str, None] = {}
        seams: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            runtime.update(dict.fromkeys(klass.__dict__.get("_runtime_attrs", ())))
            seams.update(dict.fromkeys(klass.__dict__.get("_seam_attrs", ())))
        cls._runtime_attrs, cls._seam_attrs = tuple(runtime), tuple(seams)

    def _init_runtime(self) -> None:
        """Build the ``_runtime_attrs`` (nothing by default)."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._runtime_attrs:
            state.pop(name, None)
        for name in self._seam_attrs:
            if state.get(name) is not None:
                state[name] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()


# -- the default chain -----------------------------------------------------------------

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
