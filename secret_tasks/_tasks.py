"""The Secret task base, ``ChainSecret``, and the builder of each backend's task from its declaration.

No backend logic lives here: a backend declares its task in its own package
(``authchain/backends/<name>/task.py``: its parameters and how they become a
reference, see :mod:`authchain.backends._task`), and :func:`task_class`
turns that into a class with the task-library conventions. Every task turns
its settings into a reference (or a one-source chain) and asks authchain, so
caching, retries, masking and error messages are the chain's.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import keyword
import textwrap
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from authchain import masking
from authchain._chain import Chain
from authchain._declarations import builtin_packages
from authchain._default import get_default_chain
from authchain.backends._task import SecretTaskDeclaration, target_of
from authchain.errors import BackendError, ConfigError, SecretNotFound
from authchain.refs import SecretRef
from authchain.values import SecretValue
from secret_tasks.base import Task, defaults_from_attrs

__all__ = ["ChainSecret", "SecretResult", "SecretTask", "declared_tasks", "task_class"]

_MISSING: Any = object()

SecretResult = SecretValue[Any] | dict[str, SecretValue[str]]

SHARED_DOCS = {
    "default": "returned when nothing has the secret (default: ``SecretNotFound`` is raised).",
    "as_dict": "return a JSON object secret's top-level fields as a dict of ``SecretValue``.",
    "chain": "the chain to ask (default: the configured one).",
    "source_options": (
        "settings of a dedicated source of this backend, used instead of the configured one "
        "(its credentials are still looked up through ``chain`` or the configured chain)."
    ),
    "**task_kwargs": (
        "``task_name``, ``retries``, ``retry_delay_seconds``, ``tags`` and the other "
        "task options of ``Task``."
    ),
}
"""The ``Args:`` entries every backend task shares (a declaration may replace one)."""

RUN_SUMMARY = "Read the secret; every argument left None takes the value given at init."


class SecretTask(Task):
    """What every Secret task shares: ``default``, ``as_dict``, ``chain``, ``source_options``.

    Every task returns a ``SecretValue`` (or, with ``as_dict=True``, a dict of
    them for a JSON object secret), raises ``SecretNotFound`` when nothing has
    it unless ``default=`` was given at init, and takes an optional ``chain``.
    ``source_options`` builds a dedicated source of the task's backend with
    those settings (``{"url": ..., "auth": {...}}`` for Vault) instead of the
    configured one; the credentials it names are looked up through the
    configured chain, and one that nothing has is an error.
    """

    scheme: ClassVar[str] = ""
    declaration: ClassVar[SecretTaskDeclaration | None] = None

    def __init__(
        self,
        *,
        default: Any = _MISSING,
        as_dict: bool = False,
        chain: Chain | None = None,
        source_options: Mapping[str, Any] | None = None,
        **task_kwargs: Any,
    ) -> None:
        self.default = default
        self.as_dict = as_dict
        self.chain = chain
        self.source_options = dict(source_options) if source_options else None
        super().__init__(**task_kwargs)

    def _resolve(self, target: str | SecretRef, as_dict: bool | None) -> SecretResult:
        _, value = self._asked(lambda chain: target)
        return self._shaped(value, as_dict)

    def _asked(self, target_for: Callable[[Chain], str | SecretRef]) -> tuple[str | SecretRef, Any]:
        """What this run asks and the answer of this run's chain (see :meth:`_chain`).

        ``target_for`` gets the chain first: a declaration's reference may need its
        sources. A chain the run made is closed afterwards, whatever happened.
        """
        chain, owned = self._chain()
        try:
            target = target_for(chain)
            if self.default is _MISSING:
                return target, chain.resolve(target)
            return target, chain.resolve(target, default=self.default)
        finally:
            if owned:
                chain.close()

    def _shaped(self, value: Any, as_dict: bool | None) -> SecretResult:
        """``value``, or its JSON object's fields when ``as_dict`` (``run``'s, else the init one) asks."""
        if (as_dict if as_dict is not None else self.as_dict) and isinstance(value, SecretValue):
            return value.fields()
        return value  # type: ignore[no-any-return]

    def _run_declared(self, values: dict[str, Any], as_dict: bool | None) -> SecretResult:
        """One run of a declared task: the declaration's reference, asked of this run's chain."""
        declaration = self.declaration
        assert declaration is not None, "only a class built by task_class() runs a declaration"
        target, value = self._asked(lambda chain: target_of(declaration, values, chain))
        if declaration.key_of_found_value and values.get("key") and isinstance(value, SecretValue):
            value = self._field(value, str(target), str(values["key"]))
        return self._shaped(value, as_dict)

    def _field(self, value: SecretValue[Any], name: str, key: str) -> Any:
        """Field ``key`` of the JSON secret ``value`` (the chain's ``#KEY`` rules, not the value quoted)."""
        try:
            parsed = value.json()
        except ValueError:
            raise BackendError(
                f"{self.task_name}: secret {name!r} is not valid JSON, so key {key!r} cannot be read"
            ) from None
        if not isinstance(parsed, dict):
            raise BackendError(
                f"{self.task_name}: secret {name!r} is JSON but not an object, so key {key!r} cannot be read"
            )
        if key not in parsed:
            if self.default is not _MISSING:
                return self.default
            raise SecretNotFound(f"{name}#{key}")
        item = parsed[key]
        field = SecretValue(item if isinstance(item, str) else json.dumps(item))
        masking.register(field)
        return field

    def _chain(self) -> tuple[Chain, bool]:
        """The chain this run asks, and whether the run made it (then it closes it).

        ``source_options`` win over ``chain``: the settings the caller wrote are
        the ones used, and ``chain`` is then where their credentials are found.
        """
        from authchain._registry import load_source_class

        if self.source_options:
            source = load_source_class(self.scheme).from_settings(
                self.scheme, self.source_options, where=f"{type(self).__name__}(source_options=...)"
            )
            # Its credentials (a token name, AppRole ids, AWS keys) are looked up
            # as a configured source's are: through the configured chain, without
            # this source. A one-source chain could never find them, and the SDK
            # would then log in as whoever VAULT_TOKEN or ~/.vault-token is.
            source.use_credentials(self.chain or get_default_chain())
            return Chain([source], cache_ttl=0), True
        if self.chain is not None:
            return self.chain, False
        if self.declaration is not None and self.declaration.own_source_by_default:
            return Chain([load_source_class(self.scheme)()], cache_ttl=0), True  # e.g. Secret blocks
        return get_default_chain(), False

    def run_label(self, parameters: dict[str, Any]) -> str:
        first = self.declaration.parameters[0].name if self.declaration is not None else "name"
        value = parameters.get(first) or getattr(self, first, None)
        return value if isinstance(value, str) else "secret"


class ChainSecret(SecretTask):
    """Anything the configured chain can resolve: a name or a reference.

    Args:
        name: ``DB_PASSWORD`` or ``vault://secret/app#password``.
        config, profile: build the chain from this config/profile instead of the default one.
        default, as_dict, chain, **task_kwargs: as for every Secret task
            (``source_options`` is refused: the chain has no one source).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        config: str | None = None,
        profile: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("source_options"):
            raise ConfigError(
                "ChainSecret takes config= or profile=, not source_options= (it has no one source)"
            )
        self.name = name
        self.config = config
        self.profile = profile
        super().__init__(**kwargs)

    @defaults_from_attrs("name", "as_dict", required=("name",))
    def run(self, name: str | None = None, as_dict: bool | None = None) -> SecretResult:
        """Read the secret; every argument left None takes the value given at init.

        Args:
            name: overrides the ``name`` given at init.
            as_dict: overrides the ``as_dict`` given at init.
        """
        return self._resolve(str(name), as_dict)

    def _chain(self) -> tuple[Chain, bool]:
        if self.chain is None and (self.config or self.profile):
            return Chain.from_config(self.config, profile=self.profile), True
        return super()._chain()


# -- building a backend's task from its declaration ---------------------------------------------------


def declared_tasks() -> list[SecretTaskDeclaration]:
    """Every task authchain's backends declare (``TASKS`` in ``authchain/backends/<name>/task.py``),
    by class name. Only authchain's own packages: a plugin's source gets no task from here."""
    found: list[SecretTaskDeclaration] = []
    for package in builtin_packages():  # the packages the other declarations come from
        module_name = f"{package}.task"
        if importlib.util.find_spec(module_name) is not None:
            found.extend(importlib.import_module(module_name).TASKS)
    return sorted(found, key=lambda declaration: declaration.class_name)


def _reserved_names() -> frozenset[str]:
    """Names a declared parameter may not take: ``run``'s own and the keywords of ``SecretTask``
    and ``Task``, which ``__init__`` would otherwise set and then silently overwrite."""
    import inspect

    taken = {"self", "kwargs", "as_dict"}
    for init in (SecretTask.__init__, Task.__init__):
        taken.update(inspect.signature(init).parameters)
    return frozenset(taken)


def task_class(declaration: SecretTaskDeclaration, module: str) -> type[SecretTask]:
    """The ``SecretTask`` subclass ``declaration`` describes, named as if written in ``module``.

    ``__init__`` takes the first parameter positionally and the rest as
    keywords, and stores each as an attribute; ``run`` takes them all (None:
    the attribute's value, through ``defaults_from_attrs``; the first one is
    required) and ``as_dict``. Both carry real signatures (Prefect builds a
    task's parameters from them; ``help()`` shows them), and the class
    docstring documents every parameter.
    """
    names = tuple(parameter.name for parameter in declaration.parameters)
    init, run = _methods(declaration)
    for method in (init, run):
        method.__qualname__ = f"{declaration.class_name}.{method.__name__}"
        method.__module__ = module
    namespace = {
        "__doc__": _class_doc(declaration),
        "__module__": module,
        "__qualname__": declaration.class_name,
        "scheme": declaration.scheme,
        "declaration": declaration,
        "__init__": init,
        "run": defaults_from_attrs(*names, "as_dict", required=names[:1])(run),
    }
    return type(declaration.class_name, (SecretTask,), namespace)


def _methods(declaration: SecretTaskDeclaration) -> tuple[Callable[..., None], Callable[..., SecretResult]]:
    """``__init__`` and ``run`` as real functions with the declared parameters.

    Written as source and compiled, as ``dataclasses`` writes its methods: a
    ``__signature__`` attribute instead would be copied by every
    ``functools.wraps`` around a bound ``run`` (Prefect's among them), which
    would then show ``self`` as a parameter to fill. The names are checked
    identifiers; values (the defaults) are passed in, never written as source.
    """
    parameters = declaration.parameters
    names = [parameter.name for parameter in parameters]
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name) or name in _reserved_names():
            raise ValueError(f"{declaration.class_name}: {name!r} cannot be a task parameter")
    values = ", ".join(names) + ","
    keywords = [f"{name}=_default_{number}" for number, name in enumerate(names) if number]
    init_parameters = [f"{names[0]}=_default_0", *(["*", *keywords] if keywords else []), "**kwargs"]
    source = (
        f"def __init__(self, {', '.join(init_parameters)}):\n"
        f"    _init(self, ({values}), kwargs)\n"
        f"def run(self, {', '.join(f'{name}=None' for name in names)}, as_dict=None):\n"
        f"    return self._run_declared(dict(zip(_names, ({values}))), as_dict)\n"
    )
    defaults = {f"_default_{number}": parameter.default for number, parameter in enumerate(parameters)}
    namespace: dict[str, Any] = {"_init": _init, "_names": tuple(names), **defaults}
    exec(compile(source, f"<{declaration.class_name}>", "exec"), namespace)  # noqa: S102 - see above
    init, run = namespace["__init__"], namespace["run"]
    init.__annotations__ = {
        **{p.name: p.type if p.default is not None else p.type | None for p in parameters},
        "kwargs": Any,
        "return": None,
    }
    run.__annotations__ = {
        **{p.name: p.type | None for p in parameters},
        "as_dict": bool | None,
        "return": SecretResult,
    }
    run.__doc__ = _run_doc(tuple(names))
    return init, run


def _init(task: SecretTask, values: tuple[Any, ...], task_kwargs: dict[str, Any]) -> None:
    """A declared task's ``__init__``: each setting an attribute, the rest to ``SecretTask``."""
    assert task.declaration is not None
    for parameter, value in zip(task.declaration.parameters, values, strict=True):
        setattr(task, parameter.name, value)
    SecretTask.__init__(task, **task_kwargs)


def _class_doc(declaration: SecretTaskDeclaration) -> str:
    shared = {**SHARED_DOCS, **dict(declaration.shared_docs)}
    entries = [(parameter.name, parameter.doc) for parameter in declaration.parameters]
    entries += [(name, shared[name]) for name in ("default", "as_dict", "chain", "source_options")]
    entries.append(("**task_kwargs", shared["**task_kwargs"]))
    doc = f"{declaration.doc}\n\nArgs:\n{_args(entries)}"
    if declaration.example:
        doc += "\n\nExample:\n" + textwrap.indent(declaration.example, "    ")
    return doc + "\n"


def _run_doc(names: tuple[str, ...]) -> str:
    entries = [(name, f"overrides the ``{name}`` given at init.") for name in (*names, "as_dict")]
    return f"{RUN_SUMMARY}\n\nArgs:\n{_args(entries)}\n"


def _args(entries: list[tuple[str, str]]) -> str:
    """``Args:`` entries, Google style: ``name: text``, wrapped, continuation lines indented."""
    return "\n".join(
        textwrap.fill(f"{name}: {text}", width=96, initial_indent="    ", subsequent_indent="        ")
        for name, text in entries
    )
