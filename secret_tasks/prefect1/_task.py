"""Prefect 1's task base and ``defaults_from_attrs``, mapped onto :class:`secret_tasks.Task`.

Prefect 1 task code passes ``name=``, ``max_retries=``, ``retry_delay=`` (a
``timedelta``), ``tags=``, ``timeout=``, ``checkpoint=`` ... to a task's
constructor and reads them back as attributes. This base takes exactly
those, maps what Prefect 3 can honour onto the native task options, and
refuses, with a message saying what to use instead, what it cannot (a
result handler, a cache, Prefect 1's triggers and state handlers): a
setting silently dropped would change what the flow does.
"""

from __future__ import annotations

import enum
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

from authchain.errors import ConfigError
from secret_tasks.base import Task

__all__ = ["NOT_GIVEN", "Prefect1Task", "SecretBase", "defaults_from_attrs"]

F = TypeVar("F", bound=Callable[..., Any])


class _Given(enum.Enum):
    """A ``run`` argument the caller did not give (an enum member: it pickles as itself)."""

    NOT_GIVEN = "not given"

    def __repr__(self) -> str:
        return "<not given>"


NOT_GIVEN = _Given.NOT_GIVEN


def defaults_from_attrs(*attr_args: str) -> Callable[[F], F]:
    """Prefect 1's decorator: a ``run`` argument *not given* falls back to ``self.<attr>``.

    Unlike :func:`secret_tasks.defaults_from_attrs`, an argument given as
    ``None`` stays ``None`` (Prefect 1: "keywords provided at runtime always
    take precedence"), and an attribute the task never set is an
    ``AttributeError``. Arguments given by position count as given.

    Example:
        >>> class MyTask(SecretBase):
        ...     def __init__(self, a=None, b=None, **kwargs):
        ...         self.a, self.b = a, b
        ...         super().__init__(**kwargs)
        ...     @defaults_from_attrs("a", "b")
        ...     def run(self, a=None, b=None):
        ...         return a, b
        >>> MyTask(a=1, b=2).run(), MyTask(a=1, b=2).run(a=99), MyTask(a=1, b=2).run(a=None, b=None)
        ((1, 2), (99, 2), (None, None))
    """

    def wrapper(run_method: F) -> F:
        signature = inspect.signature(run_method)

        @functools.wraps(run_method)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind_partial(self, *args, **kwargs)
            for attr in attr_args:
                if bound.arguments.get(attr, NOT_GIVEN) is NOT_GIVEN:
                    bound.arguments[attr] = getattr(self, attr)
            return run_method(*bound.args, **bound.kwargs)

        return method  # type: ignore[return-value]

    return wrapper


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)

# Prefect 1 Task arguments Prefect 3 cannot honour on these tasks, and what to use instead.
_REFUSED = {
    "result": "Result types for Secrets are not configurable: a secret is never persisted",
    "target": "a target persists the result, and a secret is never persisted",
    "cache_for": "Prefect 1 output caching keeps the result, and a secret is never cached",
    "cache_validator": "Prefect 1 output caching keeps the result, and a secret is never cached",
    "cache_key": "Prefect 1 output caching keeps the result, and a secret is never cached",
    "trigger": "Prefect 3 has no triggers: run the task only when it should run (plain Python control flow)",
    "state_handlers": "Prefect 3 has no state handlers: use on_completion=/on_failure= hooks",
    "on_failure": "Prefect 1's on_failure(task, state) has another signature than Prefect 3's "
    "hooks: pass Prefect 3 hooks as on_failure_hooks=[fn(task, task_run, state)]",
    "retry_on": "use Prefect 3's retry_condition_fn=fn(task, task_run, state) instead",
    "nout": "a secret task returns one value",
}


class Prefect1Task(Task):
    """The Prefect 1 ``Task`` constructor arguments, mapped onto :class:`secret_tasks.Task`.

    Args:
        name: the task's name (Prefect 3's task name); ``self.name``.
        slug: kept as ``self.slug``; Prefect 3 has no slugs.
        tags: a set of tags (a ``str`` is a ``TypeError``, as in Prefect 1); ``self.tags`` is a set.
        max_retries: Prefect 3 ``retries``; needs ``retry_delay``, as in Prefect 1.
        retry_delay: a ``timedelta`` (or seconds), Prefect 3 ``retry_delay_seconds``.
        timeout: seconds (``int``) or a ``timedelta``, Prefect 3 ``timeout_seconds``.
        checkpoint: kept as ``self.checkpoint``; ``True`` is refused (persistence is off).
        log_stdout: Prefect 3 ``log_prints``.
        task_run_name: a template (``"{name}"``) or ``callable(**kwargs)``, as in Prefect 1.
        skip_on_upstream_skip: only ``True`` (Prefect 1's default) is accepted.
        **prefect3_options: Prefect 3 options, as :class:`secret_tasks.Task` takes them
            (``on_failure_hooks=`` is Prefect 3's ``on_failure``).

    Raises:
        ConfigError: for ``result``, ``target``, ``cache_*``, ``trigger``,
            ``state_handlers``, ``on_failure``, ``retry_on``, ``nout`` (the message says
            what to use instead), and ``checkpoint=True``.
    """

    def __init__(
        self,
        name: str | None = None,
        slug: str | None = None,
        tags: Iterable[str] | None = None,
        max_retries: int | None = None,
        retry_delay: timedelta | float | None = None,
        timeout: int | timedelta | None = None,
        checkpoint: bool | None = None,
        log_stdout: bool = False,
        task_run_name: str | Callable[..., str] | None = None,
        skip_on_upstream_skip: bool = True,
        **options: Any,
    ) -> None:
        owner = type(self).__name__
        refused = sorted(key for key in _REFUSED if options.get(key) is not None)
        if refused:
            reasons = "; ".join(f"{key}: {_REFUSED[key]}" for key in refused)
            raise ConfigError(f"{owner}: cannot honour {', '.join(refused)} under Prefect 3 ({reasons})")
        for key in _REFUSED:
            options.pop(key, None)
        if not skip_on_upstream_skip:
            raise ConfigError(f"{owner}: skip_on_upstream_skip=False has no Prefect 3 equivalent")
        if checkpoint:
            raise ConfigError(
                f"{owner}: checkpoint=True cannot be honoured: a secret task's result is never "
                "persisted (return a SecretRef from a task of your own to keep a handle on it)"
            )
        if isinstance(tags, str):
            raise TypeError("Tags should be a set of tags, not a string.")
        max_retries = max_retries or 0
        if max_retries > 0 and retry_delay is None:
            raise ValueError("A datetime.timedelta `retry_delay` must be provided if max_retries > 0")
        if retry_delay is not None and not max_retries:
            raise ValueError(
                "A `max_retries` argument greater than 0 must be provided if specifying a retry delay."
            )
        if isinstance(timeout, timedelta):
            timeout = int(timeout.total_seconds())
        if timeout is not None and not isinstance(timeout, int):
            raise TypeError("Only integer timeouts (representing seconds) are supported.")
        if "on_failure_hooks" in options:
            options["on_failure"] = options.pop("on_failure_hooks")
        if timeout is not None:
            options["timeout_seconds"] = timeout
        if log_stdout:
            options["log_prints"] = True
        if task_run_name is not None:
            options["task_run_name"] = _prefect3_run_name(task_run_name)
        delay = retry_delay.total_seconds() if isinstance(retry_delay, timedelta) else retry_delay
        super().__init__(
            task_name=name or owner,
            retries=max_retries,
            retry_delay_seconds=delay or 0.0,
            tags=tags or (),
            **options,
        )
        self.name = name or owner
        self.slug = slug
        self.tags = set(tags or ())  # type: ignore[assignment]  # Prefect 1 exposes a set
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.checkpoint = checkpoint
        self.skip_on_upstream_skip = skip_on_upstream_skip

    def _prefect_fn(self) -> Callable[..., Any]:
        """``run`` as Prefect 3 should call it: with only the arguments the caller gave.

        Prefect 3 fills every default before it calls the function, so a
        ``run(secret=None)`` default would look given and, under Prefect 1's
        ``defaults_from_attrs``, hide the value set at ``__init__`` (Prefect 1
        bound only the arguments given). The Prefect task sees defaults of
        ``NOT_GIVEN``, dropped here.
        """
        run = self.run
        signature = inspect.signature(run)
        parameters = [
            parameter
            if parameter.default is inspect.Parameter.empty or parameter.kind in _VARIADIC
            else parameter.replace(default=NOT_GIVEN)
            for parameter in signature.parameters.values()
        ]
        shown = signature.replace(parameters=parameters)

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = shown.bind(*args, **kwargs)
            given = {key: value for key, value in bound.arguments.items() if value is not NOT_GIVEN}
            return run(**given)

        call.__signature__ = shown  # type: ignore[attr-defined]
        call.__name__ = getattr(run, "__name__", "run")
        call.__qualname__ = f"{type(self).__name__}.run"
        call.__doc__ = run.__doc__
        call.__module__ = type(self).__module__
        return call

    def _task_run_name(self, parameters: dict[str, Any]) -> str:
        given = {key: None if value is NOT_GIVEN else value for key, value in parameters.items()}
        return super()._task_run_name(given)

    def __repr__(self) -> str:
        return f"<Task: {self.name}>"


def _prefect3_run_name(template: str | Callable[..., str]) -> str | Callable[..., str]:
    """Prefect 1 calls a run-name callable with the arguments as keywords; Prefect 3 with ``parameters``."""
    if not callable(template):
        return template

    def named(parameters: dict[str, Any]) -> str:
        return template(**parameters)

    return named


class SecretBase(Prefect1Task):
    """Prefect 1's ``SecretBase``: a task whose result is never persisted; ``run`` does nothing.

    Subclass it and override ``run`` for another store, as in Prefect 1.

    Raises:
        ValueError: a ``result=`` is given ("Result types for Secrets are not configurable").
    """

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("result"):
            raise ConfigError(
                f"{type(self).__name__}: Result types for Secrets are not configurable "
                "(a secret is never persisted, under Prefect 1 or 3)"
            )
        if kwargs.get("checkpoint"):
            # Prefect 1's SecretBase quietly forced checkpointing off; say so instead.
            warnings.warn(
                f"{type(self).__name__}: checkpoint=True is ignored: a secret is never checkpointed",
                UserWarning,
                stacklevel=2,
            )
        kwargs["checkpoint"] = False
        super().__init__(**kwargs)

    def run(self) -> Any:
        return None

    def run_label(self, parameters: dict[str, Any]) -> str:
        for key in ("name", "secret", "parameter_name", "secret_id"):
            value = parameters.get(key)
            if isinstance(value, str):
                return value
        for key in ("secret_name", "secret", "parameter_name", "secret_id"):
            value = getattr(self, key, None)
            if isinstance(value, str):
                return value
        return "secret"
