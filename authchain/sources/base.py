"""The Source interface every backend implements, and the outcome types it returns.

A source is a small object with one verb, like botocore's credential
providers: ``get(key)`` answers :class:`Found` or :class:`NotFound`, or raises
:class:`~authchain.errors.BackendError` for the third outcome (unreachable,
denied, throttled, bad data) or
:class:`~authchain.errors.SourceUnavailableError` when it cannot run here.
Everything else (order, retries, caching, error policy, the attempt trail)
belongs to the chain, so a new backend is a page of code.

Writing a source::

    class MySource(Source):
        type = "my-store"                     # config ``type`` and reference scheme
        options = (Option("url", str, required=True),)

        def __init__(self, *, url: str, **common: Any) -> None:
            super().__init__(**common)        # name, on_error, retries, backoff
            self.url = url                    # cheap: no network, no SDK import

        def key_for(self, name: str) -> Key:
            return name

        def get(self, key: Key) -> Found | NotFound:
            ...

and register it under the entry-point group ``authchain.sources``.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from authchain._limits import MAX_BACKOFF_SECONDS, MAX_RETRIES, check_range
from authchain._process import ProcessLocal
from authchain._records import record
from authchain.errors import BackendError, ConfigError
from authchain.refs import ReferenceGrammar, SecretRef
from authchain.values import SecretValue, source_label

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "COMMON_OPTIONS",
    "CheckResult",
    "CheckStatus",
    "CredentialLookup",
    "Found",
    "Key",
    "NotFound",
    "Option",
    "Source",
]

logger = logging.getLogger(__name__)

Key = Hashable
"""A backend key: whatever the source needs to find one secret (str or tuple)."""


class CredentialLookup(Protocol):
    """What a source may ask of whoever runs it: its own credentials, and to forget them.

    The chain that owns a source implements it (:meth:`Source.use_credentials`);
    a source never walks, plans or caches anything itself.
    """

    @property
    def closed(self) -> bool:
        """True once the owner was closed: a source shared with another chain moves on."""

    def resolve_for(
        self, source: Source, name: str | SecretRef, *, default: Any = ...
    ) -> SecretValue[Any] | None:
        """``name`` for ``source``'s own use, never from ``source`` itself (no recursion)."""

    def invalidate(self, name: str | SecretRef) -> None:
        """Forget ``name`` (a rotated credential is read again on the next lookup)."""


@record
class Found:
    """The source has the secret. ``detail`` says where, never what."""

    value: SecretValue[Any]
    detail: str = ""

    def __repr__(self) -> str:
        return f"Found(value={self.value!r}, detail={self.detail!r})"


@record
class NotFound:
    """The source answered and does not have it; ``reason`` names the key it looked at."""

    reason: str


CheckStatus = Literal["ok", "unreachable", "unauthenticated", "misconfigured", "unavailable"]


@record
class CheckResult:
    """What ``authchain check`` prints for one source."""

    source: str
    type: str
    status: CheckStatus
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@record
class Option:
    """One setting a source accepts in TOML, with its type and default.

    Declaring options (instead of reading ``**kwargs``) is what lets the config
    loader reject unknown keys and wrong types with the file and key named.
    """

    name: str
    kind: type
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    is_path: bool = False
    maximum: float | None = None
    """Largest value allowed: a typo (``retries = 1000000000``) is an error, not a hang."""

    def coerce(self, value: Any, where: str, base_dir: Path | None = None) -> Any:
        """Check ``value`` (already ``${VAR}``-expanded) against this option.

        Messages name the key and the expected type, never the value: a
        misplaced secret must not be echoed back.
        """
        key = join_key(where, self.name)
        converted = _coerce(value, self.kind, key)
        if self.choices and converted not in self.choices:
            allowed = ", ".join(repr(choice) for choice in self.choices)
            raise ConfigError(f"{key} must be one of {allowed}")
        if self.minimum is not None or self.maximum is not None:
            check_range(key, converted, self.minimum, self.maximum)
        if self.is_path:
            from pathlib import Path

            path = Path(converted).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            return path
        return converted


def check_credential_setting(text: str, where: str, *, name: str, reference: str) -> None:
    """A ``credentials`` setting names a secret or is a reference, never the credential itself.

    A ``${VAR}`` that holds the key lands here as text; the message never
    echoes it. ``name`` and ``reference`` are the examples the message shows.
    """
    from authchain.refs import VARIABLE_NAME, is_reference

    if is_reference(text):
        SecretRef.parse(text)  # a malformed reference fails here, not at first use
        return
    if not VARIABLE_NAME.fullmatch(text):
        raise ConfigError(
            f"{where}: credentials must be a secret name ({name}) or a reference ({reference}), "
            "not the key itself"
        )


def join_key(where: str, key: str) -> str:
    """``"file: sources.env"`` + ``"prefix"`` → ``"file: sources.env.prefix"``."""
    if not where or where.endswith((": ", ".")):
        return f"{where}{key}"
    return f"{where}.{key}"


_KIND_NAMES = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
    list: "a list of strings",
}


def _coerce(value: Any, kind: type, key: str) -> Any:
    expected = _KIND_NAMES.get(kind, kind.__name__)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0"}:
            return value.lower() in {"true", "1"}
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif kind is float:
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is not None:
            if number - number != 0:  # nan or inf: no setting means either
                raise ConfigError(f"{key} must be a finite number")
            return number
    elif kind is list:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
    elif isinstance(value, kind):
        return value
    raise ConfigError(f"{key} must be {expected}, got {_type_word(value)}")


def _type_word(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


COMMON_OPTIONS: tuple[Option, ...] = (
    Option(
        "on_error",
        str,
        "raise",
        "what an error does: 'raise' stops the chain, 'skip' records it and moves on",
        choices=("raise", "skip"),
    ),
    Option(
        "retries",
        int,
        None,
        "retries after a retryable error (default: the chain's)",
        minimum=0,
        maximum=MAX_RETRIES,
    ),
    Option(
        "backoff",
        float,
        None,
        "base delay in seconds for exponential backoff (default: the chain's)",
        minimum=0,
        maximum=MAX_BACKOFF_SECONDS,
    ),
)


class Source(ProcessLocal, ABC):
    """One place secrets can come from: a backend plus its settings.

    Class attributes describe the *type* (``type``, ``rank``, ``options``);
    the instance ``name`` tells two instances of one type apart in messages
    (``vault-prod`` and ``vault-dev``).
    """

    type: ClassVar[str]
    """Config ``type`` and reference scheme, kebab-case (``"aws-sm"``)."""
    rank: ClassVar[int] = 150
    """Position in the canonical order: stores 100, prefect 200, env 300, dotenv 400."""
    extra: ClassVar[str | None] = None
    """The pip extra that installs this source's SDK, named in errors."""
    concurrent: ClassVar[bool] = True
    """I/O-bound lookups: ``resolve_many`` runs them on the chain's thread pool."""
    batches: ClassVar[bool] = False
    """``get_many`` is a real batch call (one request for many keys)."""
    options: ClassVar[tuple[Option, ...]] = ()
    reference_grammar: ClassVar[ReferenceGrammar | None] = None
    """How this type's references (``TYPE://...``) look; None: the generic form."""
    endpoint_options: ClassVar[tuple[str, ...]] = ()
    """Settings that decide where, or to whom, this source sends its credentials
    (a server URL, a TLS trust setting). When an untrusted config file sets one,
    the source gets no credentials at all: see :meth:`restrict_credentials`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A source's read path holds what the backend answered (a parsed secret,
        # a response body) in its locals: when it raises, no frame keeps them
        # (authchain._scrub), for every source, plugins included.
        super().__init_subclass__(**kwargs)
        from authchain._scrub import scrubbed

        for method in ("get", "get_many"):
            own = cls.__dict__.get(method)
            if callable(own) and not getattr(own, "__authchain_scrubbed__", False):
                setattr(cls, method, scrubbed(own))

    def __init__(
        self,
        *,
        name: str | None = None,
        on_error: str = "raise",
        retries: int | None = None,
        backoff: float | None = None,
    ) -> None:
        where = f"source {name or self.type!r}"
        self.name: str = name or self.type
        self.on_error: str = COMMON_OPTIONS[0].coerce(on_error, where)
        self.retries: int | None = None if retries is None else COMMON_OPTIONS[1].coerce(retries, where)
        self.backoff: float | None = None if backoff is None else COMMON_OPTIONS[2].coerce(backoff, where)

    @property
    def label(self) -> str:
        """This source as messages name it: ``vault-prod (vault)``, or ``env``."""
        return source_label(self.name, self.type)

    @classmethod
    def all_options(cls) -> tuple[Option, ...]:
        return COMMON_OPTIONS + cls.options

    @classmethod
    def from_settings(
        cls, name: str, settings: Mapping[str, Any], *, where: str, base_dir: Path | None = None
    ) -> Source:
        """Build an instance from an (expanded) TOML table, validating every key."""
        kwargs = cls.validate_settings(settings, where=where, base_dir=base_dir)
        return cls(name=name, **kwargs)

    @classmethod
    def validate_settings(
        cls, settings: Mapping[str, Any], *, where: str, base_dir: Path | None = None
    ) -> dict[str, Any]:
        known = {option.name: option for option in cls.all_options()}
        unknown = sorted(set(settings) - set(known) - {"type"})
        if unknown:
            raise ConfigError(
                f"{where} has unknown setting {unknown[0]!r} for type {cls.type!r}"
                f"{_suggest(unknown[0], known)}; known settings: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        for option in cls.all_options():
            if option.name in settings:
                kwargs[option.name] = option.coerce(settings[option.name], where, base_dir)
            elif option.is_path and option.default is not None and base_dir is not None:
                # A default path (dotenv's ".env") is relative to the config file
                # too, not to whatever directory the process happens to run in.
                kwargs[option.name] = option.coerce(option.default, where, base_dir)
            elif option.required:
                expected = option.help or _KIND_NAMES.get(option.kind, option.kind.__name__)
                raise ConfigError(f"{where} needs {option.name!r} ({expected})")
        return kwargs

    @abstractmethod
    def key_for(self, name: str) -> Key:
        """Map a logical name (``DB_PASSWORD``) to this backend's key. Pure: no I/O."""

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        """Map a reference of this source's scheme to ``(key, json_field)``."""
        return ref.location, ref.field

    @abstractmethod
    def get(self, key: Key) -> Found | NotFound:
        """Look one key up. Raise ``BackendError`` for anything but found / not found."""

    def is_local(self) -> bool:
        """True while ``get`` answers from this process or a local file, with no request.

        The chain then asks it without single flight and retries (there is no
        call to share, nothing transient to retry), which makes a walk past
        it several times cheaper; the deadline, log holding, masking and the
        cache apply as to any source. Sources that reach a server keep the
        default, False.
        """
        return False

    def has_native_async(self) -> bool:
        """True when :meth:`aget` asks the backend on the running event loop itself.

        ``aresolve`` then awaits ``aget`` on the caller's loop (bounded by the
        source's own connections) instead of running ``get`` on the chain's
        ``async_workers`` pool. Threads running SDK code share the GIL with the
        loop, and each request costs them milliseconds of it: a 1 ms heartbeat
        on the loop is then late by several (benchmarks/RESULTS.md,
        "Heartbeat"). Sources without such a path keep the default, False.
        """
        return False

    async def aget(self, key: Key) -> Found | NotFound:
        """:meth:`get` on the running event loop, with the same outcomes (see :meth:`has_native_async`)."""
        raise NotImplementedError(f"the {self.type} source has no native async path")

    def warm_for_async(self) -> None:
        """What deciding :meth:`has_native_async` and a first :meth:`aget` would otherwise do on
        the event loop, done beforehand: importing the SDK (hvac with requests: ~300 ms), which
        would stall the loop once. The chain runs it in a thread, once per source, before
        asking the source from a coroutine for the first time. Errors are left for the lookup
        itself to raise, as in sync code."""

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Found | NotFound | BackendError]:
        """Look many keys up; batching sources override this with one request."""
        results: dict[Key, Found | NotFound | BackendError] = {}
        for key in keys:
            try:
                results[key] = self.get(key)
            except BackendError as error:
                results[key] = error
        return results

    def describe_key(self, key: Key) -> str:
        """How messages name a key (``kv/app/DB_PASSWORD``)."""
        return str(key)

    def context_key(self) -> Hashable:
        """What this source's answers depend on besides the key; None: nothing.

        A source that is unavailable or answers differently depending on where
        it is called from returns something that changes with that place (the
        Prefect source: inside a flow or task run, or not), so the chain knows
        when an answer it remembers has stopped applying. Must be cheap: it is
        asked on the chain's cached-answer path.
        """
        return None

    def absence_scope(self) -> Hashable:
        """Where a "not found" from this source stays true; None: only for ``negative_ttl``.

        A source whose "not found" holds for a bounded stretch of work returns
        something that names it (the Prefect source: the flow run): the chain
        then remembers the absence for that stretch only, as long as it would
        remember a found value, and asks again once it is over. Must be cheap:
        it is asked on every cache hit of such an entry.
        """
        return None

    def check(self) -> CheckResult:
        """Report whether this source can answer here (reachable, authenticated)."""
        return self.result("ok", "no check needed")

    def result(self, status: CheckStatus, detail: str) -> CheckResult:
        from authchain._redact import redact_url_passwords

        return CheckResult(self.name, self.type, status, redact_url_passwords(detail))

    def settings(self) -> dict[str, Any]:
        """The effective settings, for ``authchain config`` (never a secret)."""
        return {option.name: getattr(self, option.name, option.default) for option in self.all_options()}

    def owns_reference(self, ref: SecretRef) -> bool:
        """Whether ``ref`` names this source's own endpoint (``azure-kv://ITS-VAULT/...``), so the
        chain has this source read it rather than the first of its type. False by default."""
        return False

    def foreign_endpoint(self, key: Key) -> str | None:
        """The endpoint a reference's ``key`` would send this source's credentials to, when the
        reference chose it (not this source's configured endpoint); None for most types, whose
        references name a path, never a host. While the config file is untrusted the chain
        refuses such a key before any credential is looked up."""
        return None

    def derived_settings(self) -> dict[str, str]:
        """``{setting: the setting it was worked out from}`` for settings this source derived
        rather than took as given or defaulted, so ``authchain config`` says where they came from
        (an ``azure-kv`` source's ``vault_url`` from its ``vault_name``). None by default."""
        return {}

    def use_credentials(self, lookup: CredentialLookup) -> None:
        """Where this source's own credentials are looked up (the chain that owns it).

        A source is handed this small interface, never a chain to walk: it
        may ask for its credentials and forget them, nothing else. See
        :meth:`resolve_credential`.
        """
        self._credential_lookup: CredentialLookup | None = lookup

    def restrict_credentials(self, reason: str) -> None:
        """Give this source no credentials at all: every lookup of one raises ``ConfigError(reason)``.

        Set by :func:`authchain.config.build_chain` on a source whose endpoint
        an untrusted config file names (found by searching upwards and not
        trusted with ``authchain trust``): the user's tokens and keys, found
        through the chain or by the SDK itself, must not go to an address only
        that file chose. Travels with the source when it is pickled.
        """
        self._credentials_refused: str | None = reason

    def ensure_credentials_allowed(self) -> None:
        """Raise the ``ConfigError`` of :meth:`restrict_credentials`, if set.

        Sources call it before *any* credential acquisition, the SDK's own
        defaults included (hvac's ``~/.vault-token``, boto3's provider chain,
        ``google.auth.default()``); :meth:`resolve_credential` calls it itself.
        """
        reason = getattr(self, "_credentials_refused", None)
        if reason:
            raise ConfigError(reason)

    def resolve_credential(self, name: str | SecretRef, *, default: Any = None) -> SecretValue[Any] | None:
        """Resolve a credential this source needs (a token, keys) through its chain.

        The owning chain is asked *without this source* (and without any source
        already resolving its own credentials), so there is no recursion. A
        source used on its own asks the default chain the same way. Returns
        ``default`` when nothing has it, so the SDK's own default can apply.

        Raises:
            ConfigError: the source's credentials are restricted (see
                :meth:`restrict_credentials`).
        """
        self.ensure_credentials_allowed()
        return self.credential_lookup().resolve_for(self, name, default=default)

    def credential_lookup(self) -> CredentialLookup:
        """The lookup :meth:`use_credentials` gave this source, else the default chain's."""
        lookup: CredentialLookup | None = getattr(self, "_credential_lookup", None)
        if lookup is None:
            from authchain._process import default_chain

            lookup = default_chain()
        return lookup

    def close(self) -> None:
        """Release clients and connections. The chain calls it on ``close()``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _suggest(word: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
