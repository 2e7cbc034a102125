"""Frozen value records, without importing ``dataclasses`` at start-up.

``dataclasses`` costs about 11 ms to import (it pulls in ``inspect``, ``ast``
and ``dis``) and about 1 ms per class to create (it writes each class's
methods as source text and ``exec``s it): with the dozen records on the
import path, a third of what ``import authchain`` used to cost. Those records
need only a constructor, equality, hashing, a repr and immutability, which a
few shared methods give. Type checkers see a ``@record`` class as a frozen
dataclass (``dataclass_transform``), so constructor calls are still checked.

Supported: annotated fields, plain default values (immutable ones: there is
no ``default_factory``), positional or keyword construction, ``__match_args__``,
and a ``__repr__`` written in the class body, which is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Callable[[Any], Any]:
        return lambda decorated: decorated


C = TypeVar("C", bound=type)

_REQUIRED = object()


@dataclass_transform(frozen_default=True)
def record(cls: C) -> C:
    """Give ``cls`` the methods of a frozen dataclass over its annotated fields."""
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (inspect is the import we avoid)
    names = tuple(name for name, annotation in own.items() if not str(annotation).startswith("ClassVar"))
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    for before, after in pairwise(names):
        if before in defaults and after not in defaults:
            raise TypeError(f"{cls.__name__}: field {after!r} without a default follows one with a default")
    count = len(names)
    qualname = cls.__qualname__

    least = count - len(defaults)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if not kwargs and least <= len(args) <= count:  # the common case, kept short
            fields = self.__dict__
            fields.update(defaults)
            fields.update(zip(names, args, strict=False))
            return
        if len(args) > count:
            raise TypeError(f"{qualname}() takes {count} arguments but {len(args)} were given")
        values = dict(zip(names, args, strict=False))  # the rest: keywords, defaults
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{qualname}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{qualname}() got multiple values for argument {name!r}")
            values[name] = value
        for name in names:
            if name not in values:
                default = defaults.get(name, _REQUIRED)
                if default is _REQUIRED:
                    raise TypeError(f"{qualname}() missing required argument: {name!r}")
                values[name] = default
        self.__dict__.update(values)

    def _values(self: Any) -> tuple[Any, ...]:
        return tuple([self.__dict__[name] for name in names])

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def __hash__(self: Any) -> int:
        return hash(_values(self))

    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={self.__dict__[name]!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self: Any, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}: {qualname} is frozen")

    def __delattr__(self: Any, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}: {qualname} is frozen")

    methods: dict[str, Any] = {
        "__init__": __init__,
        "__eq__": __eq__,
        "__hash__": __hash__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
        "__match_args__": names,
    }
    if "__repr__" not in cls.__dict__:
        methods["__repr__"] = __repr__
    for attribute, method in methods.items():
        if callable(method):
            method.__qualname__ = f"{qualname}.{attribute}"
        type.__setattr__(cls, attribute, method)
    return cls
