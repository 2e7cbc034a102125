"""Prefect 3 Secret blocks: ``DB_PASSWORD`` → the Secret block ``db-password``.

Prefect is imported only when a lookup needs it, and a block is only asked
for inside a Prefect flow or task run (``only_in_run``): outside one, Prefect
would start a temporary local server just to say "not found", which costs
seconds in a plain script. Flows migrated from Prefect 1 keep working: the
Prefect 1 local secrets (``PREFECT__CONTEXT__SECRETS__<NAME>`` variables, then
the ``[context.secrets]`` table of the Prefect 1 user config) are honoured
first, and ``explain`` says which form matched.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any

from authchain.errors import BackendError, ConfigError, SourceUnavailableError
from authchain.refs import LazyPattern, ReferenceGrammar, SecretRef, check_json_field, require
from authchain.sources.base import CheckResult, Found, Key, NotFound, Option, Source
from authchain.values import SecretValue

__all__ = ["PrefectSource", "block_name_for", "in_prefect_run"]

LEGACY_PREFIX = "PREFECT__CONTEXT__SECRETS__"
_BLOCK_NAME = LazyPattern(r"[a-z0-9-]+")


def block_name_for(name: str) -> str:
    """The Secret block a name maps to: lower-case, ``_`` → ``-`` (``DB_PASSWORD`` → ``db-password``)."""
    return name.lower().replace("_", "-")


def in_prefect_run() -> bool:
    """True inside a Prefect flow or task run, without importing Prefect otherwise."""
    if "prefect" not in sys.modules:
        return False
    flow_run, task_run = _run_contexts()
    return flow_run.get() is not None or task_run.get() is not None


@functools.cache
def _run_contexts() -> tuple[Any, Any]:
    # Imported once: the `from prefect.context import ...` statement alone costs
    # ~10 µs a call (Prefect's lazy module attributes), and every lookup of a
    # Prefect-importing process asks this question.
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext, TaskRunContext


# -- references: prefect://BLOCK_NAME (this backend's grammar; see authchain.refs) ------

_REF_BLOCK = LazyPattern(r"[a-z0-9-]+")


def _reference_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    require(bool(_REF_BLOCK.fullmatch(location)), "the location is not a block name ([a-z0-9-])")
    check_json_field(fragment)
    return location


class PrefectSource(Source):
    """Reads Prefect ``Secret`` blocks (and Prefect 1 local-secret variables).

    Args:
        block_prefix: prepended to the derived block name (``prod-`` → ``prod-db-password``).
        only_in_run: ask the Prefect API only inside a flow or task run
            (default true); elsewhere the source reports itself unavailable.
        legacy_env: honour Prefect 1 local secrets: ``PREFECT__CONTEXT__SECRETS__<NAME>``
            variables, then the ``[context.secrets]`` table of the Prefect 1 user config
            (``PREFECT__USER_CONFIG_PATH``, else ``~/.prefect/config.toml``), read-only.
        environ: the mapping legacy variables are read from (a test seam).
    """

    type = "prefect"
    reference_grammar = ReferenceGrammar("prefect://BLOCK_NAME[#KEY]", _reference_location)
    rank = 200
    extra = "prefect"
    concurrent = False  # the run context lives in this thread's context variables
    options = (
        Option("block_prefix", str, "", "prepended to every derived block name"),
        Option("only_in_run", bool, True, "ask the Prefect API only inside a flow or task run"),
        Option(
            "legacy_env",
            bool,
            True,
            "honour Prefect 1 local secrets: PREFECT__CONTEXT__SECRETS__<NAME> variables, "
            "then [context.secrets] of the Prefect 1 user config",
        ),
    )

    # A test's environ mapping may hold values: a seam, not a setting, so it
    # never travels in a pickle (os.environ itself does not pickle either).
    _seam_attrs = ("_environ",)

    def __init__(
        self,
        *,
        block_prefix: str = "",
        only_in_run: bool = True,
        legacy_env: bool = True,
        environ: Mapping[str, str] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.block_prefix = block_prefix
        self.only_in_run = only_in_run
        self.legacy_env = legacy_env
        self._environ = environ

    def key_for(self, name: str) -> Key:
        return (name, self.block_prefix + block_name_for(name))

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        return (None, ref.location), ref.field

    def describe_key(self, key: Key) -> str:
        _, block = _split(key)
        return f"Secret block named {block!r}"

    def context_key(self) -> bool | None:
        """Inside a flow or task run or not: with ``only_in_run`` that decides whether
        this source is asked at all, so an answer remembered outside a run does
        not hold inside one."""
        return in_prefect_run() if self.only_in_run else None

    def absence_scope(self) -> tuple[str, str] | None:
        """The flow run (or, outside any flow, the task run) a missing block stays missing for.

        Without it every ``aws_client()`` inside a run asked the API for an
        ``aws-credentials`` block that is not there (one request, ~28 ms, per
        call). Keyed by the run, not by a short TTL: a run sees one answer
        throughout (no switch of identity half-way), and the next run, which
        is where a newly created block is expected, asks again. A block
        created mid-run is found after ``invalidate(name)`` or ``clear_cache()``.
        """
        if "prefect" not in sys.modules:
            return None
        flow_context, task_context = _run_contexts()
        flow_run = flow_context.get()
        if flow_run is not None and flow_run.flow_run is not None:
            return ("flow-run", str(flow_run.flow_run.id))
        task_run = task_context.get()
        if task_run is not None:
            return ("task-run", str(task_run.task_run.id))
        return None

    def is_local(self) -> bool:
        """Outside a run (with ``only_in_run``) only the legacy variables are read."""
        return self.only_in_run and not in_prefect_run()

    def get(self, key: Key) -> Found | NotFound:
        name, block = _split(key)
        if name is not None and self.legacy_env:
            legacy = self._legacy(name)
            if legacy is not None:
                return legacy
        if self.only_in_run and not in_prefect_run():
            raise SourceUnavailableError("not inside a Prefect flow or task run (Secret blocks not asked)")
        if not _BLOCK_NAME.fullmatch(block):
            return NotFound(f"{block!r} is not a valid block name ([a-z0-9-])")
        return self._load_block(block)

    def _legacy(self, name: str) -> Found | None:
        environ = os.environ if self._environ is None else self._environ
        variable = LEGACY_PREFIX + name
        raw = environ.get(variable)
        where = f"{variable} is set (Prefect 1 local secret)"
        if raw is None:
            from authchain.backends.prefect._prefect1_config import context_secret

            in_file = context_secret(name, environ)
            if in_file is None:
                return None
            raw, path = in_file
            where = f"[context.secrets] {name} in {path} (Prefect 1 user config)"
        import json  # here, not at import: the source is in every default chain

        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = raw
        # A JSON string literal is unwrapped; objects and arrays stay JSON text
        # so `#KEY` and SecretValue.fields() can read them.
        value = decoded if isinstance(decoded, str) else raw
        return Found(SecretValue(value), where)

    def _load_block(self, block: str) -> Found | NotFound:
        secret_class, not_found, http_error = _prefect()
        try:
            secret = secret_class.load(block, _sync=True)
        except ValueError as error:
            if isinstance(error.__cause__, not_found):
                return NotFound(f"no Secret block named {block!r}")
            raise BackendError(f"Secret block {block!r} could not be loaded: {_first_line(error)}") from None
        except http_error as error:
            status = getattr(error, "response", None).status_code  # type: ignore[union-attr]
            raise BackendError(
                f"Prefect API answered HTTP {status} for block {block!r}",
                access_denied=status in (401, 403),
                retryable=status == 429 or status >= 500,
            ) from None
        except OSError as error:
            raise BackendError(f"Prefect API unreachable: {type(error).__name__}", retryable=True) from None
        except Exception as error:
            if type(error).__module__.startswith("httpx"):
                raise BackendError(
                    f"Prefect API unreachable: {type(error).__name__}", retryable=True
                ) from None
            raise
        value = secret.get()
        import json

        text = value if isinstance(value, str) else json.dumps(value)
        return Found(SecretValue(text), f"Secret block {block!r}")

    def check(self) -> CheckResult:
        if self.only_in_run and not in_prefect_run():
            return self.result("unavailable", "not inside a Prefect flow or task run")
        try:
            _prefect()
        except ConfigError as error:
            return self.result("misconfigured", str(error))
        return self.result("ok", "reads Secret blocks from the Prefect API")


def _prefect() -> tuple[Any, type[BaseException], type[BaseException]]:
    try:
        from prefect.blocks.system import Secret
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
    except ImportError:
        raise ConfigError("the prefect source needs Prefect 3: pip install 'authchain[prefect]'") from None
    from authchain._sdk_credentials import register_prefect_api_credentials

    register_prefect_api_credentials()  # the API key Prefect's client sends: masked like a value
    return Secret, ObjectNotFound, PrefectHTTPStatusError


def _split(key: Key) -> tuple[str | None, str]:
    parts: tuple[str | None, str] = key  # type: ignore[assignment]
    return parts


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
