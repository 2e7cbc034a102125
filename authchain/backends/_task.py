"""What a backend declares of its Secret task: plain data, from which ``secret_tasks`` builds the class.

A backend's ``task.py`` holds ``TASKS``, a tuple of :class:`SecretTaskDeclaration`:
the class name, the reference scheme, the task's own parameters (type,
``__init__`` default, what each one is) and how their values become a
reference. ``secret_tasks`` (an outer layer) turns each declaration into a
task class with the task-library conventions (settings at ``__init__``,
overrides at ``run`` through ``defaults_from_attrs``, the first parameter
required), real signatures and a docstring documenting every parameter; so
this layer knows nothing of tasks or Prefect, and adding a backend's task
is one declaration in its own package (then ``python tools/task_stubs.py``
for type checkers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from authchain._records import record
from authchain.refs import SecretRef

if TYPE_CHECKING:
    from authchain._chain import Chain

__all__ = ["KEY", "SecretTaskDeclaration", "TaskParameter", "reference", "target_of"]


@record
class TaskParameter:
    """One setting of a task: given to ``__init__``, overridable at ``run``.

    ``type`` is the value's builtin type (``str``, ``int``); a parameter whose
    ``default`` is None is typed ``type | None``. ``doc`` is its ``Args:``
    entry, one sentence or two (it is wrapped where it is shown).
    """

    name: str
    type: type
    doc: str
    default: Any = None


KEY = TaskParameter("key", str, "a top-level field of a JSON value to return instead of the whole value.")
"""The ``key`` most tasks take: the field of a JSON secret (the reference's ``#KEY``)."""


@record
class SecretTaskDeclaration:
    """A backend's Secret task, declared.

    Attributes:
        class_name: the public class name (``VaultSecret``), importable from
            ``secret_tasks`` and ``secret_tasks.secrets``.
        scheme: the reference scheme it reads (also the source type that
            ``source_options`` builds).
        doc: the class docstring before its ``Args:`` (summary, then prose).
        parameters: the task's own settings. The first is the one that names
            the secret: positional at ``__init__`` and required by ``run``;
            the others are keyword-only at ``__init__``. ``run`` takes them all,
            in this order, then ``as_dict``.
        reference: ``(values, chain) -> reference`` (a ``SecretRef``, or a name
            the chain maps): the parameters' values after ``run``'s overrides,
            and the chain this run asks (for a default that a configured source
            holds, as the keyring service). None: ``scheme://FIRST#KEY``, the
            first parameter's value as the location and ``key``'s as the field.
        shared_docs: ``Args:`` text replacing the shared one for ``default``,
            ``as_dict``, ``chain`` or ``source_options`` (``(name, text)`` pairs).
        example: a doctest, shown under ``Example:``.
        own_source_by_default: with neither ``chain`` nor ``source_options``,
            ask a chain of this backend's source alone (built with its default
            settings) instead of the configured chain.
        key_of_found_value: ``key`` picks a field of the JSON value found for
            ``reference`` (a name) instead of being part of the reference.
    """

    class_name: str
    scheme: str
    doc: str
    parameters: tuple[TaskParameter, ...]
    reference: Callable[[Mapping[str, Any], Chain], SecretRef | str] | None = None
    shared_docs: tuple[tuple[str, str], ...] = ()
    example: str = ""
    own_source_by_default: bool = False
    key_of_found_value: bool = False


def target_of(declaration: SecretTaskDeclaration, values: Mapping[str, Any], chain: Chain) -> SecretRef | str:
    """What one run of ``declaration``'s task asks the chain for, given the parameters' values."""
    if declaration.reference is not None:
        return declaration.reference(values, chain)
    first = declaration.parameters[0].name
    return reference(declaration.scheme, str(values[first]), values.get("key"))


def reference(scheme: str, location: str, key: str | None = None, **query: Any) -> SecretRef:
    """Build and validate ``scheme://location?query#key`` (query items that are None are left out).

    A part the backend's grammar refuses is a ``ConfigError`` (also a ``ValueError``).

    Example:
        >>> str(reference("vault", "secret/app/db", "password", version=3, kv=None))
        'vault://secret/app/db?version=3#password'
    """
    items = urlencode({name: value for name, value in query.items() if value is not None}, safe="/:")
    text = f"{scheme}://{location}" + (f"?{items}" if items else "") + (f"#{key}" if key else "")
    return SecretRef.parse(text)
