"""The task base: configure at ``__init__``, override at ``run``, never persist a secret.

Follows the Prefect task-library conventions: settings given to ``__init__``
become attributes; ``run`` receives them through :func:`defaults_from_attrs`,
where a ``run`` argument that is not None wins; a required setting still
None at run time is a ``ValueError`` naming both places to give it.

A task is a plain object. Called (``task(...)``) outside a Prefect flow it
just runs. Inside a Prefect 3 flow the same call runs it as a Prefect task,
created lazily, with result persistence off and no cache policy *whatever
the settings say*, like Prefect 1's ``SecretBase`` which refused
``result=`` and forced checkpointing off: a secret must never reach result
storage or the API database.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from authchain import masking
from authchain._process import ProcessLocal
from authchain.errors import ConfigError
from authchain.masking import default_masker

__all__ = ["MaskingLogger", "Task", "defaults_from_attrs"]

F = TypeVar("F", bound=Callable[..., Any])


def defaults_from_attrs(*attributes: str, required: Iterable[str] = ()) -> Callable[[F], F]:
    """Fill ``run`` arguments that are None (or not given) from same-named attributes.

    Args:
        attributes: the settings ``run`` may take from the task's attributes.
        required: those that must not be None after filling; a missing one is
            a ``ValueError`` that names it and both places it can be given.

    Example:
        >>> class Greet(Task):
        ...     def __init__(self, who=None, **kwargs):
        ...         self.who = who
        ...         super().__init__(**kwargs)
        ...     @defaults_from_attrs("who", required=("who",))
        ...     def run(self, who=None):
        ...         return f"hello {who}"
        >>> Greet(who="init").run(), Greet(who="init").run(who="run")
        ('hello init', 'hello run')
        >>> Greet().run()
        Traceback (most recent call last):
        ...
        ValueError: Greet: 'who' is not set; pass it to Greet(who=...) or to .run(who=...)
    """
    needed = tuple(required)
    unknown = set(needed) - set(attributes)
    if unknown:
        raise TypeError(f"required settings {sorted(unknown)} are not among the attributes")

    def decorate(run: F) -> F:
        signature = inspect.signature(run)

        @functools.wraps(run)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind_partial(self, *args, **kwargs)
            for attribute in attributes:
                if bound.arguments.get(attribute) is None:
                    bound.arguments[attribute] = getattr(self, attribute, None)
            for attribute in needed:
                if bound.arguments.get(attribute) is None:
                    cls = type(self).__name__
                    raise ValueError(
                        f"{cls}: {attribute!r} is not set; pass it to "
                        f"{cls}({attribute}=...) or to .run({attribute}=...)"
                    )
            return run(*bound.args, **bound.kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


class MaskingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that formats each message, then masks every secret value resolved in this process.

    The message is masked here; exception text, stack text and ``extra``
    fields are masked where the record is output, by the log masking this
    logger installs (:func:`authchain.install_log_masking`), which is also
    what masks the Prefect run logs this logger writes to.
    """

    def __init__(self, logger: Any, extra: Mapping[str, object] | None = None) -> None:
        _ensure_log_masking()
        super().__init__(logger, extra or {})

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            if kwargs.get("extra"):
                kwargs["extra"] = masking._mask_object(dict(kwargs["extra"]), default_masker)
            if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
                args = args[0]  # type: ignore[assignment]  # "%(name)s" formats, as LogRecord does
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError, KeyError):
                # A format that does not fit its arguments must not fail the task.
                text = f"{msg} (log arguments did not match the format)"
            kwargs.setdefault("stacklevel", 2)  # the caller's line, not this one
            self.logger.log(level, default_masker.mask(text), **kwargs)


class Task(ProcessLocal):
    """Base class for tasks: settings at ``__init__``, overrides at ``run``.

    Args:
        task_name: the Prefect task name (Prefect's ``name=``; default: the
            class name). It is not ``name``: on Secret tasks ``name`` is the
            secret's name.
        retries: Prefect retries when run inside a flow.
        retry_delay_seconds: delay between those retries (a number, a list, or
            a callable, as Prefect takes it).
        tags: Prefect tags.
        **prefect_options: any other Prefect 3 task option that neither
            persists nor caches the result: ``description``, ``version``,
            ``timeout_seconds``, ``log_prints``, ``task_run_name``,
            ``retry_jitter_factor``, ``retry_condition_fn``, the hooks
            ``on_completion``, ``on_failure``, ``on_running``, ``on_commit``,
            ``on_rollback``, ``viz_return_value``, ``asset_deps``. They reach
            the Prefect task :meth:`as_prefect_task` builds. The persistence
            and caching options (``persist_result``, ``result_storage``,
            ``result_serializer``, ``result_storage_key``, ``cache_policy``,
            ``cache_key_fn``, ``cache_expiration``, ``refresh_cache``,
            ``cache_result_in_memory``) are a ``ConfigError``: a task's result
            may be a secret, and a secret must never be written to result
            storage. An unknown option is a ``TypeError``, as for any call.

    Subclasses implement ``run``. Call the object (or ``.run``) outside a flow
    and it just runs; call it inside a Prefect 3 flow and it runs as a Prefect
    task; ``.submit()`` and ``.map()`` work inside flows as for any Prefect task.
    """

    # The Prefect wrapper is rebuilt where the task runs; it never travels.
    _runtime_attrs = ("_prefect_task", "_prefect_async_task")

    def __init__(
        self,
        *,
        task_name: str | None = None,
        retries: int = 0,
        retry_delay_seconds: float | list[float] | Callable[[int], list[float]] = 0.0,
        tags: Iterable[str] = (),
        **prefect_options: Any,
    ) -> None:
        self.task_name = task_name or type(self).__name__
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.tags = tuple(tags)
        self.prefect_options: dict[str, Any] = _checked_prefect_options(type(self).__name__, prefect_options)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _in_flow():
            return self.as_prefect_task()(*args, **kwargs)
        return self.run(*args, **kwargs)

    async def arun(self, *args: Any, **kwargs: Any) -> Any:
        """``task(...)`` for async code: the same result, and the event loop goes on meanwhile.

        Inside a Prefect 3 flow it runs as a Prefect task (an async one, so
        ``await`` it in an async flow), with the same options and refusals as
        a plain call; outside a flow it just runs. Either way ``run`` itself
        (SDK calls that block) runs in a worker thread, with this context's
        variables (the Prefect run context included).

        Example:
            >>> import asyncio, os
            >>> from secret_tasks import EnvVarSecret
            >>> os.environ["ST_DOCTEST_TOKEN"] = "example-token-value"
            >>> asyncio.run(EnvVarSecret("ST_DOCTEST_TOKEN").arun())
            SecretValue('**********')
        """
        if _in_flow():
            return await self.as_prefect_task(asynchronous=True)(*args, **kwargs)
        import asyncio

        return await asyncio.to_thread(self.run, *args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        """Submit to the flow's task runner (Prefect's ``Task.submit``); inside a flow only."""
        return self.as_prefect_task().submit(*args, **kwargs)

    def map(self, *args: Any, **kwargs: Any) -> Any:
        """Map over iterables (Prefect's ``Task.map``); inside a flow only."""
        return self.as_prefect_task().map(*args, **kwargs)

    def as_prefect_task(self, *, asynchronous: bool = False) -> Any:
        """The ``prefect.Task`` that runs this object's ``run``, built on first use.

        Calling the object inside a flow, ``.submit()`` and ``.map()`` all go
        through it; call it yourself to use any other ``prefect.Task`` API
        (``with_options``, ``.delay``, ``.fn``). It carries ``task_name``,
        ``retries``, ``retry_delay_seconds``, ``tags`` and the Prefect options
        given to ``__init__``. Persistence off and ``NO_CACHE`` are forced: a
        Secret task's result is the secret. The run name comes from
        :meth:`run_label` (it names the secret, never a value) unless
        ``task_run_name`` was given; either way it is masked.

        With ``asynchronous=True``, an async Prefect task (what :meth:`arun`
        awaits inside a flow): the same task, whose ``run`` goes to a worker
        thread so the flow's event loop is not blocked.

        Raises:
            ConfigError: Prefect is not installed (the ``prefect`` extra).
        """
        attribute = "_prefect_async_task" if asynchronous else "_prefect_task"
        wrapped = self.__dict__.get(attribute)
        if wrapped is None:
            try:
                from prefect import Task as PrefectTask
                from prefect.cache_policies import NO_CACHE
            except ImportError as error:
                raise ConfigError(
                    f"{type(self).__name__}: running it as a Prefect task (inside a flow, "
                    ".submit(), .map(), as_prefect_task()) needs Prefect, which is not "
                    "installed; install the prefect extra: pip install 'authchain[prefect]'"
                ) from error

            options = dict(self.prefect_options)
            options.setdefault("log_prints", False)
            options.pop("task_run_name", None)  # used, masked, by _task_run_name
            # prefect.Task, not the task() decorator: only the class takes on_commit/on_rollback.
            make_task: Any = _secret_prefect_task_class(PrefectTask)  # overloads miss bound methods
            fn = self._prefect_fn()
            wrapped = make_task(
                _with_log_masking(_in_thread(fn) if asynchronous else fn),
                **options,
                name=self.task_name,
                persist_result=False,
                cache_policy=NO_CACHE,
                cache_result_in_memory=True,
                retries=self.retries,
                retry_delay_seconds=self.retry_delay_seconds,
                tags=set(self.tags) or None,
                task_run_name=self._task_run_name,
            )
            self.__dict__[attribute] = wrapped
        return wrapped

    def _prefect_fn(self) -> Callable[..., Any]:
        """The callable the Prefect task runs: ``run``, unless a subclass must see which
        arguments the caller gave (the Prefect 1 shims: Prefect 3 passes every default)."""
        return self.run

    def _task_run_name(self, parameters: dict[str, Any]) -> str:
        custom = self.prefect_options.get("task_run_name")
        # A run argument left None takes the same-named setting, as run() does.
        parameters = {
            key: getattr(self, key, None) if value is None else value for key, value in parameters.items()
        }
        if custom is None:
            text = f"{self.task_name}[{self.run_label(parameters)}]"
        elif callable(custom):
            accepts = "parameters" in inspect.signature(custom).parameters
            text = custom(parameters=parameters) if accepts else custom()
            if not isinstance(text, str):
                raise TypeError(f"task_run_name {custom!r} returned {type(text).__name__}, not a str")
        else:
            text = str(custom).format(**parameters)
        # The name is stored in the API database: a value formatted into it is masked.
        return default_masker.mask(text)

    def run_label(self, parameters: dict[str, Any]) -> str:
        """What the Prefect task run is called after: override to name the secret."""
        return "run"

    @property
    def logger(self) -> MaskingLogger:
        """The Prefect run logger inside a run, else ``secret_tasks.<Class>``; masked either way."""
        base: Any = None
        if _in_run():
            from prefect import get_run_logger

            base = get_run_logger()
        if base is None:
            base = logging.getLogger(f"secret_tasks.{type(self).__name__}")
        return MaskingLogger(base, {})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_name!r}>"


# Prefect 3 task options a task passes on to its Prefect task: none of them
# writes or reuses the result (checked against prefect.Task.__init__ in the tests).
PREFECT_OPTIONS = frozenset(
    {
        "description",
        "version",
        "timeout_seconds",
        "log_prints",
        "task_run_name",
        "retry_jitter_factor",
        "retry_condition_fn",
        "on_completion",
        "on_failure",
        "on_running",
        "on_commit",
        "on_rollback",
        "viz_return_value",
        "asset_deps",
    }
)

# The options that persist or cache a result, refused: a task's result may be a secret.
REFUSED_PREFECT_OPTIONS = frozenset(
    {
        "persist_result",
        "result_storage",
        "result_serializer",
        "result_storage_key",
        "cache_policy",
        "cache_key_fn",
        "cache_expiration",
        "refresh_cache",
        "cache_result_in_memory",
    }
)


_SECRET_TASK_CLASS: Any = None


def _secret_prefect_task_class(base: Any) -> Any:
    """``prefect.Task`` whose ``with_options`` cannot turn persistence or caching back on.

    ``as_prefect_task().with_options(persist_result=True)`` would otherwise
    write the secret to result storage. Prefect's ``with_options`` builds a
    plain ``Task``; the copy is given this class back, so every copy keeps the
    refusal.
    """
    global _SECRET_TASK_CLASS
    if _SECRET_TASK_CLASS is None:

        class SecretPrefectTask(base):  # type: ignore[misc]
            def with_options(self, *args: Any, **options: Any) -> Any:
                harmless = {"persist_result": False}
                asked = sorted(
                    key
                    for key in REFUSED_PREFECT_OPTIONS & options.keys()
                    if key not in harmless or options[key] != harmless[key]
                )
                if asked:
                    raise ConfigError(
                        f"{self.name}.with_options: {', '.join(asked)} cannot be set: a Secret "
                        "task's result is the secret, so persistence and caching stay off"
                    )
                copy = super().with_options(*args, **options)
                copy.__class__ = type(self)  # Prefect builds a plain Task: keep the refusal
                return copy

        _SECRET_TASK_CLASS = SecretPrefectTask
    return _SECRET_TASK_CLASS


def _checked_prefect_options(owner: str, options: dict[str, Any]) -> dict[str, Any]:
    """The Prefect options a task may pass on; refused and unknown ones are errors here, at ``__init__``."""
    refused = sorted(REFUSED_PREFECT_OPTIONS & options.keys())
    if refused:
        raise ConfigError(
            f"{owner}: {', '.join(refused)} cannot be set: a task's result may be a secret, "
            "and a secret must never be written to Prefect's result storage or cache, so "
            "persistence and caching are always off for these tasks; to keep a result, "
            "return a SecretRef from your own task instead of the value"
        )
    if "name" in options:
        raise TypeError(f"{owner}: the Prefect task name is task_name=, not name=")
    unknown = sorted(options.keys() - PREFECT_OPTIONS)
    if unknown:
        raise TypeError(f"{owner}() got unexpected keyword arguments: {', '.join(unknown)}")
    for hook in ("on_completion", "on_failure", "on_running", "on_commit", "on_rollback"):
        if options.get(hook) is not None:
            options[hook] = list(options[hook])
    return dict(options)


def _in_thread(run: Callable[..., Any]) -> Callable[..., Any]:
    """An async ``run`` that runs the sync one in a worker thread (Prefect reads the
    signature through ``__wrapped__``)."""

    @functools.wraps(run)
    async def run_in_thread(*args: Any, **kwargs: Any) -> Any:
        import asyncio

        return await asyncio.to_thread(run, *args, **kwargs)

    return run_in_thread


def _with_log_masking(run: F) -> F:
    """``run``, installing log masking first wherever Prefect runs it.

    A Secret task registers its value with the masker of the process it runs
    in; masking that process's log output (Prefect's run loggers and the API
    log handler included) must not depend on the user calling
    :func:`authchain.install_log_masking`. Prefect reads the signature
    through ``__wrapped__``.
    """

    if inspect.iscoroutinefunction(run):

        @functools.wraps(run)
        async def run_async_with_log_masking(*args: Any, **kwargs: Any) -> Any:
            _ensure_log_masking()
            return await run(*args, **kwargs)

        return run_async_with_log_masking  # type: ignore[return-value]

    @functools.wraps(run)
    def run_with_log_masking(*args: Any, **kwargs: Any) -> Any:
        _ensure_log_masking()
        return run(*args, **kwargs)

    return run_with_log_masking  # type: ignore[return-value]


_log_masking_installed = False


def _ensure_log_masking() -> None:
    """Install log masking once per process (it masks handlers created later too).

    Only the process-wide part of :func:`authchain.install_log_masking`:
    every handler masks at output, so no filter needs adding to any handler.
    """
    global _log_masking_installed
    if not _log_masking_installed:
        masking._install_process_wide()
        _log_masking_installed = True


def _in_flow() -> bool:
    import sys

    if "prefect" not in sys.modules:
        return False
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


def _in_run() -> bool:
    from authchain.backends.prefect.source import in_prefect_run

    return in_prefect_run()
