"""One thin Secret task per backend, plus ``ChainSecret``.

Each backend declares its task in its own package
(``authchain/backends/<name>/task.py``); this module builds the classes
from those declarations (:func:`secret_tasks._tasks.task_class`), so they
are importable here and from ``secret_tasks`` under their names, and pickle
by reference as ``secret_tasks.secrets.<Name>``. ``secrets.pyi`` (written by
``tools/task_stubs.py`` from the same declarations) gives type checkers their
signatures.
"""

from __future__ import annotations

from secret_tasks._tasks import (
    ChainSecret,
    SecretResult,  # noqa: F401 (importable here, as it always was)
    SecretTask,
    declared_tasks,
    task_class,
)

# Pickles and reprs name them where users import them from.
SecretTask.__module__ = ChainSecret.__module__ = __name__

_DECLARED = {declaration.class_name: task_class(declaration, __name__) for declaration in declared_tasks()}
globals().update(_DECLARED)

__all__ = sorted(["ChainSecret", "SecretTask", *_DECLARED])
