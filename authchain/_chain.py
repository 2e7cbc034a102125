"""The chain: ask sources in order, stop at the first that has the name.

This module is the walk: plan which (source, key) pairs a name means, ask
them in order, stop at the first that has it. The walk itself
(``Chain.resolve``) stays as plain as botocore's ``load_credentials``; what
it leans on lives elsewhere, one job per module:

- ``authchain._cache``: the cache policy (freshness, remembered answers,
  single flight, stale-if-error, invalidation);
- ``authchain._batch``: ``resolve_many`` (batch calls, the thread pool);
- ``authchain._trail``: an outcome as a line of the attempt trail;
- ``authchain._upstream``: SDK exceptions made safe to keep (loaded on the
  error path only);
- ``authchain._retry``: backoff, jitter and the deadline.

Three outcomes, never confused: found; not found (move on); error (retry if
retryable, then raise, or record and move on when the source says
``on_error = "skip"``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from authchain import _sdk_credentials, masking
from authchain._cache import CachePolicy, FlightCycle, FlightTimeout
from authchain._limits import (
    CHAIN_RANGES,
    check_range,
)
from authchain._process import ProcessLocal
from authchain._records import record
from authchain._retry import (
    RetryPolicy,
    call_with_retry,
    current_deadline,
    deadline_scope,
    full_jitter,
    time_left,
)
from authchain._trail import EXPLICIT_NOT_PASSED, announce, failed, guarded, pick_field, recorded, register
from authchain.errors import (
    AuthChainError,
    BackendError,
    ChainClosedError,
    ConfigError,
    SecretNotFound,
    SourceUnavailableError,
)
from authchain.refs import SecretRef, is_reference
from authchain.sources.base import CheckResult, CredentialLookup, Found, Key, NotFound, Source
from authchain.values import Attempt, Explanation, SecretValue

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from authchain.config import Settings

__all__ = ["Chain"]

logger = logging.getLogger("authchain")

_MISSING: Any = object()
DEFAULT_DEADLINE = 30.0
Result = Found | NotFound
NameOrRef = str | SecretRef

# The source instances currently resolving their own credentials in this thread
# of control, outermost first, each with what it asked for: every lookup made
# inside leaves them out, and a reference only one of them could read is a
# cycle. See Chain.resolve_for.
_BUILDING: ContextVar[tuple[tuple[Source, str], ...]] = ContextVar("authchain_building", default=())

# The testing hook: while authchain.testing's override layer is active, every
# chain's plan asks it first (and only it, unless it passes through), for names
# and references alike, and never caches its answers. None in production; only
# _set_testing_override below changes it, and it takes nothing but a layer
# defined in authchain.testing.
_testing_override: Any = None


def _set_testing_override(layer: Any) -> Any:
    """Install ``layer`` (or None) as the override every chain asks first; return the previous one.

    A testing hook, not an API: ``authchain.testing.override_secrets`` and the
    ``authchain_secrets`` fixture are its only callers.
    """
    global _testing_override
    if layer is not None and not type(layer).__module__.startswith("authchain.testing."):
        raise TypeError("only authchain.testing can install a secret override")
    previous, _testing_override = _testing_override, layer
    _sdk_credentials._override_layer = layer  # where sources and factories ask before an SDK default
    return previous


@record
class _Target:
    source: Source
    key: Key
    field: str | None


_ONE_ATTEMPT = RetryPolicy(retries=0)
_DEFAULT_SEAMS: dict[str, Any] = {"_clock": time.monotonic, "_sleep": time.sleep, "_jitter": full_jitter}


class Chain(ProcessLocal):
    """An ordered list of sources plus the cache and error policy that go with them.

    Build one from TOML with :meth:`from_config`, or directly::

        >>> from authchain.backends.env.source import EnvSource
        >>> chain = Chain([EnvSource(prefix="DEMO_", environ={"DEMO_TOKEN": "t0k3n-example"})])
        >>> chain.resolve("TOKEN")
        SecretValue('**********')

    Args:
        sources: asked in this order, after the explicit argument.
        cache_ttl: seconds a found value is reused (0 disables the cache).
        negative_ttl: seconds a "not found" is remembered (default 0: never).
        stale_if_error: seconds past ``cache_ttl`` a cached value may still be
            served when its refresh fails with a ``BackendError`` (logged).
        retries, backoff, backoff_max: retry policy for retryable errors;
            a source's own ``retries``/``backoff`` win over these.
        max_workers: thread-pool size for concurrent lookups in ``resolve_many``.
        async_workers: threads that run blocking SDK calls for ``aresolve``,
            ``aresolve_many`` and ``aexplain`` (bounded; the event loop never
            makes those calls). They share the interpreter's lock with the
            loop: fewer threads keep the loop's timers more punctual, more
            fetch faster (benchmarks/RESULTS.md, "Heartbeat").
        deadline: seconds one ``resolve``, ``resolve_many`` or ``explain`` may
            spend asking sources, retries and backoff included (0: no limit;
            default: the config's ``deadline``, else 30). No attempt starts and
            no backoff sleep runs past it; the lookup then fails with a
            ``BackendError`` instead of moving on to weaker sources.
        secrets: names pinned to references (``[secrets]`` in the config).
        clock, sleep, jitter: seams for tests.
    """

    # Cached values, in-flight calls, locks and pools stay in this process:
    # a pickled chain carries settings only.
    _runtime_attrs = ("_cache", "_pool", "_async_pool", "_lock", "_closed")

    def __init__(
        self,
        sources: Sequence[Source] = (),
        *,
        cache_ttl: float = 300.0,
        negative_ttl: float = 0.0,
        stale_if_error: float = 0.0,
        retries: int = 2,
        backoff: float = 0.2,
        backoff_max: float = 5.0,
        max_workers: int = 8,
        async_workers: int = 8,
        deadline: float | None = None,
        secrets: Mapping[str, str | SecretRef] | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = full_jitter,
    ) -> None:
        names = [source.name for source in sources]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"two sources share the name {duplicates[0]!r}; names must be unique")
        if deadline is None:
            deadline = settings.value("deadline") if settings is not None else DEFAULT_DEADLINE
        if deadline is None:
            raise ConfigError("deadline must be a number of seconds >= 0 (0: no deadline)")
        # The bounds a config file gets (authchain._limits), for a Chain built in code too.
        given = {
            "cache_ttl": cache_ttl,
            "negative_ttl": negative_ttl,
            "stale_if_error": stale_if_error,
            "retries": retries,
            "backoff": backoff,
            "backoff_max": backoff_max,
            "max_workers": max_workers,
            "async_workers": async_workers,
            "deadline": deadline,
        }
        for key, (low, high) in CHAIN_RANGES.items():
            check_range(key, given[key], low, high)
        self._sources: tuple[Source, ...] = tuple(sources)
        self.cache_ttl = float(cache_ttl)
        self.negative_ttl = float(negative_ttl)
        self.stale_if_error = float(stale_if_error)
        self.policy = RetryPolicy(retries, backoff, backoff_max)
        self.max_workers = max_workers
        self.async_workers = async_workers
        self.deadline = float(deadline)
        self._pins = {name: SecretRef.parse(ref) for name, ref in (secrets or {}).items()}
        self.settings = settings
        self._clock, self._sleep, self._jitter = clock, sleep, jitter
        self._scheme_sources: dict[str, Source] = {}
        self._skipped_types: frozenset[str] = frozenset()
        self._for_source: Source | None = None  # in a view made by _building(): whose credentials
        self._root = self  # what views made by _without() bind new sources to
        self._init_runtime()
        for source in self._sources:
            # A shared source keeps its first chain while that chain is open; once
            # it is closed (close() is final) the source's credentials come from here.
            previous: CredentialLookup | None = getattr(source, "_credential_lookup", None)
            if previous is None or previous.closed:
                source.use_credentials(self)

    def _init_runtime(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._async_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # Shared with the views _without() makes, so a lookup under way in a
        # view sees the close too.
        self._closed = threading.Event()
        # What is kept and for how long: see authchain._cache.
        self._cache = CachePolicy(
            self._clock,
            ttl=self.cache_ttl,
            negative_ttl=self.negative_ttl,
            stale_if_error=self.stale_if_error,
            closed=self._closed,
        )

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        profile: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Chain:
        """Build the chain a config file describes (found upwards from the working directory).

        Args:
            path: an ``authchain.toml`` or ``pyproject.toml``; default:
                ``AUTHCHAIN_CONFIG``, else searched from the working directory up.
            profile: a ``[profiles.NAME]`` to apply; default ``AUTHCHAIN_PROFILE``.
            environ: the environment for ``${VAR}`` and ``AUTHCHAIN_*`` (default ``os.environ``).

        Raises:
            ConfigError: naming the file, the key and what was expected.
        """
        from authchain.config import load_settings

        return cls.from_settings(load_settings(path, profile=profile, environ=environ))

    @classmethod
    def from_settings(cls, settings: Settings, *, cwd: Path | None = None) -> Chain:
        """The chain ``settings`` describe: its sources (built and validated) and its policy.

        Args:
            settings: what :func:`authchain.config.load_settings` read.
            cwd: where the default chain's ``./.env`` is (default: the settings' ``cwd``).

        Raises:
            ConfigError: a source's settings are invalid, or its plugin is missing.
        """
        from authchain._build import build_sources, chain_options

        return cls(build_sources(settings, cwd), **chain_options(settings), settings=settings)

    # -- the public verbs -------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (a closed chain is not reopened)."""
        return self._closed.is_set()

    @property
    def sources(self) -> tuple[Source, ...]:
        return self._sources

    @property
    def reference_sources(self) -> tuple[Source, ...]:
        """The default instances this chain made to read references of unconfigured types."""
        return tuple(self._scheme_sources.values())

    def source_for_reference(self, ref: SecretRef) -> Source:
        """The source that reads ``ref``: the first configured one of its type, else a default instance."""
        return self._source_for_scheme(ref.scheme, ref)

    def source(self, name: str) -> Source:
        """The source instance called ``name``."""
        for source in self._sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def resolve(self, name: NameOrRef, *, explicit: Any = None, default: Any = _MISSING) -> SecretValue[Any]:
        """Return the first value any source has for ``name`` (or a reference).

        Args:
            name: a logical name (``DB_PASSWORD``) or a reference (``env://X``).
            explicit: returned (as a ``SecretValue``) when not None; sources are not asked.
            default: returned as given when nothing has the name.

        Raises:
            SecretNotFound: nothing had it and no default was given.
            BackendError: a source failed (after retries) and is not ``on_error = "skip"``.
            ConfigError: a malformed name or reference.
        """
        if explicit is None and type(name) is str and _testing_override is None:
            # The fast path: a remembered answer, still fresh, whose passed-over
            # sources still cannot answer here. No lock, no walk, no log line;
            # the value was registered with the masker when it was fetched.
            answer = self._cache.answer(name)
            if answer is not None:
                return answer
        self._check_open()  # close() forgets the answers, so the fast path above ends with it
        if explicit is not None:
            value = explicit if isinstance(explicit, SecretValue) else SecretValue(explicit)
            masking.register(value)
            return value
        try:
            with deadline_scope(self.deadline, self._clock):
                return self._first(name, remember=True)[0]
        except AuthChainError as error:
            if self._closed.is_set() and not isinstance(error, ChainClosedError):
                raise self._closed_error() from error  # closed under the lookup
            if default is _MISSING or not isinstance(error, SecretNotFound):
                raise
            return default  # type: ignore[no-any-return]

    def resolve_with_source(self, name: NameOrRef) -> tuple[SecretValue[Any], Attempt]:
        """:meth:`resolve`, and the attempt of the source that had the name (``authchain resolve --json``).

        Raises:
            SecretNotFound, BackendError, ConfigError: as :meth:`resolve` (there is no default).
        """
        with self._lookup():
            return self._first(name)

    async def aresolve(
        self, name: NameOrRef, *, explicit: Any = None, default: Any = _MISSING
    ) -> SecretValue[Any]:
        """:meth:`resolve` for async code: same answers, same cache, never blocks the event loop.

        SDK calls run on a bounded thread pool (``async_workers``); a source with
        a native async path (Vault) is asked on the loop itself. A fetch
        another caller (a thread or a coroutine) already started is joined, not
        repeated. Cancelling the awaiting task stops only this wait: the fetch
        goes on for the others and caches a whole answer or nothing.

        Raises:
            SecretNotFound, BackendError, ConfigError: as :meth:`resolve`.
        """
        from authchain._async import afirst, take_turn

        if explicit is None and type(name) is str and _testing_override is None:
            answer = self._cache.answer(name)  # the fast path, as in resolve()
            if answer is not None:
                return answer
        await take_turn()  # a burst of lookups starts a few per pass of the loop
        self._check_open()
        if explicit is not None:
            value = explicit if isinstance(explicit, SecretValue) else SecretValue(explicit)
            masking.register(value)
            return value
        try:
            with deadline_scope(self.deadline, self._clock):
                return (await afirst(self, name, remember=True))[0]
        except AuthChainError as error:
            if self._closed.is_set() and not isinstance(error, ChainClosedError):
                raise self._closed_error() from error  # closed under the lookup
            if default is _MISSING or not isinstance(error, SecretNotFound):
                raise
            return default  # type: ignore[no-any-return]

    async def aresolve_many(
        self, names: Iterable[NameOrRef], *, default: Any = _MISSING
    ) -> dict[str, SecretValue[Any]]:
        """:meth:`resolve_many` for async code: the same walk, batched and concurrent the same way.

        A source with a native async path (Vault) is asked on the loop, its
        lookups gathered; every other source's group runs on the
        ``async_workers`` pool as :meth:`resolve_many` runs it (a batch call, the
        ``max_workers`` pool, or a loop).

        Raises:
            SecretNotFound: as :meth:`resolve_many`.
        """
        from authchain._async import awalk_many

        with self._lookup():
            plans = {_given(name): self._plan(name)[1] for name in names}
            results, trails = await awalk_many(self, plans)
            return self._many_answer(plans, results, trails, default)

    @contextlib.contextmanager
    def _lookup(self) -> Iterator[None]:
        """One public lookup: refused once closed, bounded by the deadline, and a
        ``ChainClosedError`` (not whatever failed) when the chain is closed under it."""
        self._check_open()
        try:
            with deadline_scope(self.deadline, self._clock):
                yield
        except AuthChainError as error:
            if self._closed.is_set() and not isinstance(error, ChainClosedError):
                raise self._closed_error() from error
            raise

    def _first(self, name: NameOrRef, *, remember: bool = False) -> tuple[SecretValue[Any], Attempt]:
        """Walk the sources until one has ``name``; the winner's attempt comes along."""
        label, targets, _ = self._plan(name)
        since = self._cache.generation()  # an invalidate() during the walk: nothing is remembered
        attempts = [EXPLICIT_NOT_PASSED]
        for number, target in enumerate(targets):
            attempt, value = self._ask(target, raise_errors=True)
            attempts.append(attempt)
            if value is not None:
                self._won(name, label, targets[: number + 1], attempts, value, since, remember=remember)
                return value, attempt
        raise SecretNotFound(_given(name), attempts)

    def _won(
        self,
        name: NameOrRef,
        label: str,
        walked: Sequence[_Target],
        attempts: list[Attempt],
        value: SecretValue[Any],
        since: int,
        *,
        remember: bool,
    ) -> None:
        """What a walk does when its last target (``walked[-1]``) answered: sync and async alike."""
        announce(label, attempts[-1])
        if remember and isinstance(name, str):
            winner = walked[-1]
            passed = [t.source for t in walked[:-1]]
            self._cache.remember(name, passed, attempts[1:-1], (winner.source, winner.key), value, since)

    def resolve_many(
        self, names: Iterable[NameOrRef], *, default: Any = _MISSING
    ) -> dict[str, SecretValue[Any]]:
        """Resolve several names at once: one batch call per source where the
        source supports it, concurrent lookups where it does not.

        Returns a dict keyed by each name as given (references as their text).

        Raises:
            SecretNotFound: for the first name nothing had (others listed in ``missing``),
                unless ``default`` is given.
        """
        with self._lookup():
            # Imported here: only resolve_many needs it, and every module on
            # the import path costs start-up time for scripts that never call it.
            from authchain._batch import walk_many

            plans = {_given(name): self._plan(name)[1] for name in names}
            results, trails = walk_many(self, plans)
            return self._many_answer(plans, results, trails, default)

    @staticmethod
    def _many_answer(
        plans: Mapping[str, Any],
        results: Mapping[str, SecretValue[Any]],
        trails: Mapping[str, list[Attempt]],
        default: Any,
    ) -> dict[str, SecretValue[Any]]:
        """``resolve_many``'s answer from its walk: every name's value, else ``default``, else
        ``SecretNotFound`` for the first name nothing had (the others listed in ``missing``)."""
        missing = [label for label in plans if label not in results]
        if missing and default is _MISSING:
            raise SecretNotFound(missing[0], trails[missing[0]], missing=missing)
        return {label: results.get(label, default) for label in plans}

    def explain(self, name: NameOrRef) -> Explanation:
        """Ask every source (not only until the first hit) and report what each said.

        Errors are recorded, not raised, so ``explain`` works when a backend is down.
        """
        with self._lookup():
            return self._explain(name)

    def _explain(self, name: NameOrRef) -> Explanation:
        label, targets, pinned = self._plan(name)
        attempts = [EXPLICIT_NOT_PASSED]
        found: list[Attempt] = []
        for target in targets:
            attempt, value = self._ask(target, raise_errors=False)
            attempts.append(attempt)
            if value is not None:
                found.append(attempt)
        winner = found[0] if found else None
        return Explanation(label, tuple(attempts), winner, tuple(found[1:]), pinned)

    async def aexplain(self, name: NameOrRef) -> Explanation:
        """:meth:`explain` for async code: the same report, every source asked off the event loop.

        The whole :meth:`explain` runs on the ``async_workers`` pool, so its
        trail is the sync one by construction. Cancelling the awaiting task
        stops the wait only; answers already under way still fill the cache
        whole or not at all.
        """
        from authchain._async import off_loop

        self._check_open()
        return await off_loop(self, lambda: self.explain(name))

    def check(self) -> list[CheckResult]:
        """Each source's own report: reachable, authenticated, misconfigured, unavailable."""
        self._check_open()
        reports: list[CheckResult] = []
        for source in self._sources:
            try:
                reports.append(source.check())
            except SourceUnavailableError as error:
                reports.append(source.result("unavailable", str(error)))
            except BackendError as error:
                reports.append(
                    source.result("unauthenticated" if error.access_denied else "unreachable", error.message)
                )
            except ConfigError as error:
                reports.append(source.result("misconfigured", str(error)))
        return reports

    def invalidate(self, name: NameOrRef) -> None:
        """Forget cached answers for ``name`` in every source (next resolve asks again).

        Also for fetches already under way: their answers go to the callers
        already waiting for them but are not cached, and a caller arriving
        after this returns starts a new fetch instead of joining theirs. So
        the value from before a rotation cannot come back for a full TTL.
        """
        self._cache.invalidate((target.source, target.key) for target in self._plan(name)[1])

    def clear_cache(self) -> None:
        """Forget every cached answer, and the answers of fetches under way (see :meth:`invalidate`)."""
        self._cache.clear()

    def close(self) -> None:
        """Release the thread pool and every source's clients; the chain stays closed.

        Every lookup afterwards, and every lookup still under way that has
        not got its answer yet, raises :class:`~authchain.errors.ChainClosedError`
        (as a closed httpx or botocore client does) instead of reopening
        clients and threads nobody would close again. Calling it again only
        closes the sources again. Use the chain as a context manager.
        """
        with self._lock:
            self._closed.set()
            root = self._root
            pool, root._pool = root._pool, None
            async_pool, root._async_pool = root._async_pool, None
            scheme_sources = list(self._scheme_sources.values())
        self._cache.forget_answers()
        for each in (pool, async_pool):
            if each is not None:
                # Queued lookups are cancelled; their callers get ChainClosedError.
                each.shutdown(wait=False, cancel_futures=True)
        for source in (*self._sources, *scheme_sources):
            source.close()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise self._closed_error()

    def _closed_error(self) -> ChainClosedError:
        return ChainClosedError(f"{self!r} was closed; build a new chain (a closed chain is not reopened)")

    def __enter__(self) -> Chain:
        self._check_open()  # a closed chain is not reopened by a new ``with``
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        inner = ", ".join(source.label for source in self._sources)
        return f"<Chain: explicit, {inner}>" if inner else "<Chain: explicit>"

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # The default seams travel as "use the default": a pickled
        # random.uniform would carry the process's whole RNG state with it.
        for seam, default in _DEFAULT_SEAMS.items():
            if state.get(seam) is default:
                del state[seam]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for seam, default in _DEFAULT_SEAMS.items():
            state.setdefault(seam, default)
        state.setdefault("_root", self)
        state.setdefault("_skipped_types", frozenset())
        state.setdefault("_for_source", None)
        state.setdefault("async_workers", 8)
        super().__setstate__(state)

    # -- credentials for sources: the chain minus the sources being built ---

    def resolve_for(self, source: Source, name: NameOrRef, *, default: Any = _MISSING) -> SecretValue[Any]:
        """Resolve a credential that ``source`` needs (``VAULT_TOKEN``, ``AWS_CREDENTIALS``).

        A bare name walks this chain without any source of ``source``'s type
        (the store a credential opens is never asked for the key to open it)
        and without the sources fetching their own credentials further up the
        stack. A reference (or a pinned name) is read by the store it names:
        the first configured source of its type *other than* ``source``, so one
        Vault may hold the token of another and one AWS identity the keys of
        another. A reference that only ``source`` itself, or a source waiting
        for ``source``, could read is a cycle: a ``ConfigError`` naming it,
        never a quiet answer from another identity.
        """
        with self._building(source, name) as view:
            return view.resolve(name, default=default)

    @contextlib.contextmanager
    def _building(self, source: Source, name: NameOrRef) -> Iterator[Chain]:
        """A view of this chain for ``source``'s credential lookup; the sources building
        their credentials (``source`` included) stay left out of any walk made inside."""
        stack = (*_BUILDING.get(), (source, str(name)))
        token = _BUILDING.set(stack)
        try:
            view = self._without(frozenset({source.type}))
            view._for_source = source
            yield view
        finally:
            _BUILDING.reset(token)

    def without_types(self, types: Iterable[str]) -> Chain:
        """A view whose walk skips every source of ``types``: where a client factory looks up
        its conventional credential name, never in the store its own client opens.
        References and pinned names still reach the store they name. The view
        shares this chain's cache and is closed with it."""
        return self._without(frozenset(types))

    def _without(self, skipped_types: frozenset[str] = frozenset()) -> Chain:
        # Not copy.copy(): that goes through __getstate__/__setstate__, which drop
        # and re-create the runtime, so every view had an empty cache of its own.
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)  # shares the cache, flights and pool; keys carry source names
        building = {id(entry[0]) for entry in _BUILDING.get()}
        skipped = self._skipped_types | skipped_types
        view._sources = tuple(
            s for s in self._root._sources if id(s) not in building and s.type not in skipped
        )
        view._skipped_types = skipped
        view._for_source = None
        view._scheme_sources = self._scheme_sources
        view._cache = self._cache.view()  # answers without some sources are not this chain's answers
        return view

    # -- planning: which (source, key) pairs a name means ------------------

    def _plan(self, name: NameOrRef) -> tuple[str, list[_Target], str | None]:
        layer = _testing_override
        if layer is not None:  # see _set_testing_override
            key, field = layer.lookup_key(name)
            first = _Target(layer.source, key, field)
            if not layer.source.passthrough:
                return _given(name), [first], None
            label, targets, pinned = self._plan_sources(name)
            return label, [first, *targets], pinned
        return self._plan_sources(name)

    def _plan_sources(self, name: NameOrRef) -> tuple[str, list[_Target], str | None]:
        if isinstance(name, SecretRef) or is_reference(name):
            ref = name if isinstance(name, SecretRef) else SecretRef.parse(name)
            return str(ref), [self._target_for_ref(ref)], None
        _check_name(name)
        pin = self._pins.get(name)
        if pin is not None:
            return name, [self._target_for_ref(pin)], str(pin)
        return name, [_Target(s, s.key_for(name), None) for s in self._sources], None

    def _target_for_ref(self, ref: SecretRef) -> _Target:
        source = self._source_for_scheme(ref.scheme, ref)
        key, field = source.key_for_ref(ref)
        endpoint = self._foreign_endpoint(source, key)
        if endpoint is not None:
            from authchain.config import untrusted_reference

            refused = untrusted_reference(self._root.settings, endpoint)
            if refused:
                raise ConfigError(refused)
        return _Target(source, key, field)

    def _foreign_endpoint(self, source: Source, key: Key) -> str | None:
        """The host ``key`` (from a reference) sends credentials to, when no configured source of
        its type has that endpoint as its own (``azure-kv://OTHER/...``); else None."""
        endpoint = source.foreign_endpoint(key)
        if endpoint is None:
            return None
        same_type = [s for s in self._root._sources if s.type == source.type]
        return None if any(s.foreign_endpoint(key) is None for s in same_type) else endpoint

    def foreign_endpoint_of(self, ref: SecretRef) -> str | None:
        """The host a reference would send this chain's credentials to, when the reference chose
        it (no configured source has it as its endpoint); None otherwise. ``authchain run`` refuses
        such references from the environment, and an untrusted config file may not use them."""
        source = self._source_for_scheme(ref.scheme, ref)
        key, _ = source.key_for_ref(ref)
        return self._foreign_endpoint(source, key)

    def _source_for_scheme(self, scheme: str, ref: SecretRef | None = None) -> Source:
        """The first configured source of that type, else a default instance of it.

        In a credential lookup (see :meth:`resolve_for`) the source whose
        credentials are looked up is passed over: its reference is read by
        another instance of its type.

        Raises:
            ConfigError: the reference can only be read by a source that is
                itself waiting for these credentials: a cycle, named from the
                outermost lookup inwards.
        """
        configured = [s for s in self._root._sources if s.type == scheme]
        requester = self._for_source
        candidates = [s for s in configured if s is not requester]
        if candidates:
            # The source whose own endpoint the reference names (a second vault), else the first.
            owners = [s for s in candidates if ref is not None and s.owns_reference(ref)]
            chosen = (owners or candidates)[0]
        elif configured:  # only the requester itself could read it
            raise ConfigError(_cycle_message(_BUILDING.get(), scheme, ref))
        else:
            chosen = self._scheme_source(scheme)
        if any(chosen is entry[0] for entry in _BUILDING.get()):
            raise ConfigError(_cycle_message(_BUILDING.get(), scheme, ref))
        return chosen

    def _scheme_source(self, scheme: str) -> Source:
        """The default (unconfigured) instance of ``scheme`` this chain reads references with."""
        with self._lock:
            self._check_open()  # a source made now would never be closed
            cached = self._scheme_sources.get(scheme)
            if cached is None:
                from authchain._registry import load_source_class

                cls = load_source_class(scheme)
                try:
                    cached = cls(name=scheme)
                except TypeError as error:
                    raise ConfigError(
                        f"{scheme}:// references need a configured {scheme!r} source "
                        f"(add [sources.{scheme}] with type = {scheme!r}): {error}"
                    ) from None
                # Bound like a configured source: its own credentials (a Vault
                # token) come from this chain, not the default one.
                cached.use_credentials(self._root)
                self._scheme_sources[scheme] = cached
            return cached

    # -- asking one source -------------------------------------------------

    def _ask(self, target: _Target, *, raise_errors: bool) -> tuple[Attempt, SecretValue[Any] | None]:
        source = target.source
        failure: BackendError | None = None
        try:
            result, cached = self._fetch(source, target.key)
            if target.field is not None:  # describe_key only when a message may need it
                result = pick_field(result, target.field, source.describe_key(target.key))
        except SourceUnavailableError as error:
            logger.debug("%s is unavailable: %s", source.name, error)
            return Attempt(source.name, source.type, "unavailable", f"unavailable: {error}"), None
        except BackendError as error:
            failure = error
        if failure is not None:
            # Outside the handler: raised from here, the chain's error gets no
            # __context__ pointing back at the SDK's exception.
            return failed(source, failure, raise_errors), None
        return recorded(source, result, cached)

    def _fetch(self, source: Source, key: Key) -> tuple[Result, bool]:
        """Cache → single flight → retry → ``source.get``. Returns (result, from_cache)."""
        entry = self._cache.hit(source, key)
        if entry is not None:
            return entry.result, True
        try:
            if source.is_local():
                return self._load_local(source, key), False
            loader = self._loader(source, key)
            return self._cache.fetch_once(
                source, key, loader, wait=time_left(), context=_BUILDING.get()
            ), False
        except FlightCycle as cycle:
            raise cycle_across_threads(cycle) from None
        except FlightTimeout:
            error = self._flight_timeout(source, key)
        except BackendError as failure:
            error = failure
        return self._stale_or_raise(source, key, error), True

    def _loader(self, source: Source, key: Key) -> Callable[[], Result]:
        """What a flight for ``key`` runs: retry → ``source.get`` → masker → cache."""

        def load() -> Result:
            since = self._cache.generation()  # taken before the backend is asked
            again = self._cache.hit(source, key)  # a flight that just landed
            if again is not None:
                return again.result
            # SDK log records made during the call wait until its value is
            # registered with the masker (botocore logs response bodies).
            with masking.holding():
                result: Result = self._with_retry(
                    source, lambda: source.get(key), lambda: source.describe_key(key)
                )
                register([result], source.name)
            self._store(source, key, result, since)
            return result

        return load

    def _join(self, call: Any) -> Result:
        """The outcome of a flight another caller leads (a batch's key), waited for until the
        deadline; a wait that loops back to this thread is the credential cycle it is.

        Raises:
            FlightTimeout: the deadline passed first.
            ConfigError: the cycle (see :func:`cycle_across_threads`).
        """
        try:
            return self._cache.wait(call, time_left(), context=_BUILDING.get())
        except FlightCycle as cycle:
            raise cycle_across_threads(cycle) from None

    def _flight_timeout(self, source: Source, key: Key) -> BackendError:
        deadline = current_deadline()
        seconds = f"{deadline.seconds:g}s " if deadline is not None else ""
        return BackendError(
            f"{source.describe_key(key)} was still being fetched by another caller "
            f"when the {seconds}deadline of this lookup passed",
            retryable=True,
        )

    def _stale_or_raise(self, source: Source, key: Key, error: BackendError) -> Result:
        """A cached value inside the ``stale_if_error`` grace period, else ``error`` raised."""
        stale = self._cache.stale(source, key, error)
        if stale is not None:
            return stale
        raise error

    def _load_local(self, source: Source, key: Key) -> Result:
        """``_fetch`` for a source that answers without a request: one attempt, no single flight.

        There is no call for concurrent callers to share and nothing transient
        to retry, and the ``threading.Event`` of a flight plus a retry policy
        per ask were most of the cost of walking past such a source (every
        ``aws_client()`` call does, looking for ``AWS_CREDENTIALS``). Kept:
        the deadline check, held SDK log records, masking, the cache.
        """
        self._check_open()
        since = self._cache.generation()
        with masking.holding():
            result: Result = call_with_retry(
                guarded(source, lambda: source.get(key)),
                _ONE_ATTEMPT,
                sleep=self._sleep,
                label=source.name,
                what=lambda: source.describe_key(key),
            )
            register([result], source.name)
        self._store(source, key, result, since)
        return result

    def _policy_for(self, source: Source) -> RetryPolicy:
        """The chain's retry policy with the source's own ``retries`` / ``backoff`` where set."""
        return RetryPolicy(
            self.policy.retries if source.retries is None else source.retries,
            self.policy.backoff if source.backoff is None else source.backoff,
            self.policy.backoff_max,
        )

    def _with_retry(self, source: Source, operation: Callable[[], Any], what: str | Callable[[], str]) -> Any:
        return call_with_retry(
            guarded(source, self._while_open(operation)),
            self._policy_for(source),
            sleep=self._sleep,
            jitter=self._jitter,
            label=source.name,
            what=what,
        )

    def _while_open(self, operation: Callable[[], Any]) -> Callable[[], Any]:
        """``operation``, refused once the chain is closed: each attempt checks,
        so neither a queued lookup nor a retry reopens a closed source's client."""

        def attempt() -> Any:
            self._check_open()
            return operation()

        return attempt

    def _store(self, source: Source, key: Key, result: Result, since: int) -> None:
        """Hand ``result`` to the cache policy, unless it came from a test's override layer."""
        if _testing_override is not None and source is _testing_override.source:
            return  # a test's overrides change between lookups and must not outlive it
        self._cache.store(source, key, result, since)

    def _executor(self) -> ThreadPoolExecutor:
        # The root chain's pool: a view's own would never be shut down.
        root = self._root
        with self._lock:
            self._check_open()
            if root._pool is None:
                # Imported here: only resolve_many needs threads, and the import costs
                # milliseconds at start-up for every script that never calls it.
                from concurrent.futures import ThreadPoolExecutor

                root._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="authchain")
            return root._pool

    def _async_executor(self) -> ThreadPoolExecutor:
        """The pool ``aresolve`` runs blocking calls on: not ``_executor()``, whose threads
        an ``aresolve_many`` running ``resolve_many`` there would wait on (a deadlock)."""
        root = self._root
        with self._lock:
            self._check_open()
            if root._async_pool is None:
                from concurrent.futures import ThreadPoolExecutor

                root._async_pool = ThreadPoolExecutor(
                    self.async_workers, thread_name_prefix="authchain-async"
                )
            return root._async_pool


def _cycle_message(building: tuple[tuple[Source, str], ...], scheme: str, ref: SecretRef | None) -> str:
    """Name a credential cycle from the outermost lookup inwards (names and references only:
    neither is a value)."""

    steps = [f"{source.label} needs {asked!r}" for source, asked in building]
    wanted = repr(str(ref)) if ref is not None else f"a {scheme}:// reference"
    return (
        f"credential cycle: {', which '.join(steps)}; {wanted} can only be read by a {scheme} source "
        f"that is itself waiting for its credentials (configure another {scheme} source to read it, "
        f"or take these credentials from another store)"
    )


def cycle_across_threads(cycle: FlightCycle) -> ConfigError:
    """The credential cycle that threads waiting for each other's fetches close (see
    :class:`~authchain._cache.FlightCycle`): each thread's credential lookups, this one's first.

    Each thread's context is its ``_BUILDING`` stack, so this names the same
    sources and references a cycle found in one thread would.
    """
    stacks = cast("list[tuple[tuple[Source, str], ...]]", list(cycle.contexts))
    threads = [
        ", which ".join(f"{source.label} needs {asked!r}" for source, asked in building)
        for building in stacks
        if building
    ]
    shown = "; in another thread, ".join(threads) or "a lookup waits for a fetch it leads itself"
    return ConfigError(
        f"credential cycle across {len(cycle.contexts)} thread(s): {shown}; each waits for a fetch "
        "the next one leads, so none could finish (take one of these credentials from another store)"
    )


def _given(name: NameOrRef) -> str:
    """The key a caller will look a result up by: the text it passed."""
    return name if isinstance(name, str) else str(name)


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise ConfigError(f"a secret name must be a string, not {type(name).__name__}")
    if not name or name != name.strip() or any(ord(char) < 32 for char in name):
        raise ConfigError("a secret name must be non-empty, without surrounding spaces or control characters")
