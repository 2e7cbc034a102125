"""The chain: ask sources in order, stop at the first that has the name.

The walk itself (``Chain.resolve``) stays as plain as botocore's
``load_credentials``; caching, retries, single flight and trail formatting
live in helpers. Three outcomes, never confused: found; not found (move on);
error (retry if retryable, then raise, or record and move on when the
source says ``on_error = "skip"``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from authchain import _sdk_credentials, masking
from authchain._cache import Entry, FlightTimeout, SingleFlight, TTLCache
from authchain._records import record
from authchain._retry import (
    RetryPolicy,
    call_with_retry,
    current_deadline,
    deadline_scope,
    full_jitter,
    time_left,
)
from authchain._scrub import clear_frames, scrubbed
from authchain.errors import (
    AuthChainError,
    BackendError,
    ChainClosedError,
    ConfigError,
    SecretNotFound,
    SourceUnavailableError,
    UpstreamError,
)
from authchain.refs import SecretRef, is_reference
from authchain.sources.base import CheckResult, Found, Key, NotFound, Source
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
# name -> (expires at, value, (source, context_key) of each source passed over)
Answer = tuple[float, SecretValue[Any], tuple[tuple[Source, Hashable], ...]]

# The source instances currently resolving their own credentials in this thread
# of control, outermost first, each with what it asked for: every lookup made
# inside leaves them out, and a reference only one of them could read is a
# cycle. See Chain.resolve_for.
_BUILDING: ContextVar[tuple[tuple[Source, str], ...]] = ContextVar("authchain_building", default=())

EXPLICIT_NOT_PASSED = Attempt("explicit", "explicit", "not_asked", "no value passed")

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


class Chain:
    """An ordered list of sources plus the cache and error policy that go with them.

    Build one from TOML with :meth:`from_config`, or directly::

        >>> from authchain.sources.env import EnvSource
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
        deadline: seconds one ``resolve``, ``resolve_many`` or ``explain`` may
            spend asking sources, retries and backoff included (0: no limit;
            default: the config's ``deadline``, else 30). No attempt starts and
            no backoff sleep runs past it; the lookup then fails with a
            ``BackendError`` instead of moving on to weaker sources.
        secrets: names pinned to references (``[secrets]`` in the config).
        clock, sleep, jitter: seams for tests.
    """

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
        if max_workers < 1:
            raise ConfigError("max_workers must be at least 1")
        if deadline is None:
            deadline = settings.value("deadline") if settings is not None else DEFAULT_DEADLINE
        if deadline is None or deadline < 0:
            raise ConfigError("deadline must be a number of seconds >= 0 (0: no deadline)")
        self._sources: tuple[Source, ...] = tuple(sources)
        self.cache_ttl = float(cache_ttl)
        self.negative_ttl = float(negative_ttl)
        self.stale_if_error = float(stale_if_error)
        self.policy = RetryPolicy(retries, backoff, backoff_max)
        self.max_workers = max_workers
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
            previous: Chain | None = getattr(source, "_chain", None)
            if previous is None or previous._closed.is_set():
                source.bind(self)

    def _init_runtime(self) -> None:
        self._cache: TTLCache[Result] = TTLCache(self._clock, grace=self.stale_if_error)
        self._flights: SingleFlight[Result] = SingleFlight()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # The chain's last answer per name, served by resolve() without a walk
        # until the winner's cache entry expires: see _remember().
        self._answers: dict[str, Answer] = {}
        # Held while answers are remembered or forgotten, so an answer found
        # before an invalidate() cannot be remembered after it.
        self._answers_lock = threading.Lock()
        # Shared with the views _without() makes, so a lookup under way in a
        # view sees the close too.
        self._closed = threading.Event()

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
        from authchain.config import build_chain, load_settings

        return build_chain(load_settings(path, profile=profile, environ=environ))

    # -- the public verbs -------------------------------------------------

    @property
    def sources(self) -> tuple[Source, ...]:
        return self._sources

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
            answer = self._answers.get(name)
            if answer is not None and self._clock() < answer[0]:
                for source, context in answer[2]:
                    if source.context_key() != context:
                        break
                else:
                    return answer[1]
        self._check_open()  # close() empties _answers, so the fast path above ends with it
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

    def _first(self, name: NameOrRef, *, remember: bool = False) -> tuple[SecretValue[Any], Attempt]:
        """Walk the sources until one has ``name``; the winner's attempt comes along."""
        label, targets, _ = self._plan(name)
        since = self._cache.generation()  # an invalidate() during the walk: nothing is remembered
        attempts = [EXPLICIT_NOT_PASSED]
        for number, target in enumerate(targets):
            attempt, value = self._ask(target, raise_errors=True)
            attempts.append(attempt)
            if value is not None:
                self._announce(label, attempt)
                if remember and isinstance(name, str):
                    self._remember(name, targets[:number], attempts[1:-1], target, value, since)
                return value, attempt
        raise SecretNotFound(_given(name), attempts)

    def _remember(
        self,
        name: str,
        passed: Sequence[_Target],
        attempts: Sequence[Attempt],
        winner: _Target,
        value: SecretValue[Any],
        since: int,
    ) -> None:
        """Keep the answer for ``name`` while the winner's cache entry is fresh.

        Only when every source passed over was *unavailable* here (Prefect
        outside a run, keyring without a backend), never "not found": a source
        that said "not found" is asked again on the next resolve, as before.
        A passed-over source's ``context_key()`` is kept with the answer and
        checked on each use, so entering a Prefect run drops it. Nothing is
        kept if anything was invalidated since the walk began (``since``): the
        value may be the one the invalidation was meant to drop.
        """
        if any(attempt.outcome != "unavailable" for attempt in attempts):
            return
        entry = self._cache.get((winner.source.name, winner.key))
        if entry is None or not entry.fresh(self._clock()):
            return
        guards = tuple(
            (target.source, context)
            for target in passed
            if (context := target.source.context_key()) is not None
        )
        with self._answers_lock:
            if self._closed.is_set() or not self._cache.unchanged_since(since):
                return
            self._answers[name] = (entry.stored_at + entry.ttl, value, guards)

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
        self._check_open()
        try:
            with deadline_scope(self.deadline, self._clock):
                return self._resolve_many(names, default)
        except AuthChainError as error:
            if self._closed.is_set() and not isinstance(error, ChainClosedError):
                raise self._closed_error() from error
            raise

    def _resolve_many(self, names: Iterable[NameOrRef], default: Any) -> dict[str, SecretValue[Any]]:
        plans: dict[str, list[_Target]] = {_given(name): self._plan(name)[1] for name in names}
        results: dict[str, SecretValue[Any]] = {}
        trails: dict[str, list[Attempt]] = {label: [EXPLICIT_NOT_PASSED] for label in plans}
        depth = 0
        while True:
            # Step `depth` of every pending name's target list, grouped by source,
            # so each source sees all the names it is asked about in one go.
            pending = [
                label for label, targets in plans.items() if label not in results and depth < len(targets)
            ]
            if not pending:
                break
            by_source: dict[str, list[tuple[str, _Target]]] = {}
            for label in pending:
                target = plans[label][depth]
                by_source.setdefault(target.source.name, []).append((label, target))
            for group in by_source.values():
                for label, (attempt, value) in self._ask_group(group).items():
                    trails[label].append(attempt)
                    if value is not None:
                        results[label] = value
                        self._announce(label, attempt)
            depth += 1
        missing = [label for label in plans if label not in results]
        if missing and default is _MISSING:
            raise SecretNotFound(missing[0], trails[missing[0]], missing=missing)
        return {label: results.get(label, default) for label in plans}

    def explain(self, name: NameOrRef) -> Explanation:
        """Ask every source (not only until the first hit) and report what each said.

        Errors are recorded, not raised, so ``explain`` works when a backend is down.
        """
        self._check_open()
        try:
            with deadline_scope(self.deadline, self._clock):
                return self._explain(name)
        except AuthChainError as error:
            if self._closed.is_set() and not isinstance(error, ChainClosedError):
                raise self._closed_error() from error
            raise

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
        targets = self._plan(name)[1]
        with self._answers_lock:
            for target in targets:
                key = (target.source.name, target.key)
                self._cache.invalidate(key)
                self._flights.forget(key)
            # Every remembered answer goes: another name or a reference may have
            # been answered from the same (source, key).
            self._answers.clear()

    def clear_cache(self) -> None:
        """Forget every cached answer, and the answers of fetches under way (see :meth:`invalidate`)."""
        with self._answers_lock:
            self._cache.clear()
            self._flights.forget_all()
            self._answers.clear()

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
            scheme_sources = list(self._scheme_sources.values())
        with self._answers_lock:
            self._answers.clear()
        if pool is not None:
            # Queued lookups are cancelled; their callers get ChainClosedError.
            pool.shutdown(wait=False, cancel_futures=True)
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
        inner = ", ".join(f"{s.name} ({s.type})" if s.name != s.type else s.name for s in self._sources)
        return f"<Chain: explicit, {inner}>" if inner else "<Chain: explicit>"

    def __getstate__(self) -> dict[str, Any]:
        # Cached values, in-flight calls, locks and pools stay in this process:
        # a pickled chain carries settings only.
        state = self.__dict__.copy()
        for runtime in ("_cache", "_flights", "_pool", "_lock", "_answers", "_answers_lock", "_closed"):
            state.pop(runtime, None)
        # The default seams travel as "use the default": a pickled
        # random.uniform would carry the process's whole RNG state with it.
        for seam, default in _DEFAULT_SEAMS.items():
            if state.get(seam) is default:
                del state[seam]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for seam, default in _DEFAULT_SEAMS.items():
            state.setdefault(seam, default)
        self.__dict__.update(state)
        self.__dict__.setdefault("_root", self)
        self.__dict__.setdefault("_skipped_types", frozenset())
        self.__dict__.setdefault("_for_source", None)
        self._init_runtime()

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

    def _without_types(self, types: Iterable[str]) -> Chain:
        """A view whose walk skips every source of ``types``: where a client factory looks up
        its conventional credential name, never in the store its own client opens.
        References and pinned names still reach the store they name."""
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
        view._answers = {}  # answers without some sources are not this chain's answers
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
        return _Target(source, key, field)

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
            chosen = candidates[0]
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
                cached.bind(self._root)
                self._scheme_sources[scheme] = cached
            return cached

    # -- asking one source -------------------------------------------------

    def _ask(self, target: _Target, *, raise_errors: bool) -> tuple[Attempt, SecretValue[Any] | None]:
        source = target.source
        failure: BackendError | None = None
        try:
            result, cached = self._fetch(source, target.key)
            if target.field is not None:  # describe_key only when a message may need it
                result = _pick_field(result, target.field, source.describe_key(target.key))
        except SourceUnavailableError as error:
            logger.debug("%s is unavailable: %s", source.name, error)
            return Attempt(source.name, source.type, "unavailable", f"unavailable: {error}"), None
        except BackendError as error:
            failure = error
        if failure is not None:
            # Outside the handler: raised from here, the chain's error gets no
            # __context__ pointing back at the SDK's exception.
            return self._failed(source, failure, raise_errors), None
        return self._record(source, result, cached)

    def _ask_group(
        self, group: list[tuple[str, _Target]]
    ) -> dict[str, tuple[Attempt, SecretValue[Any] | None]]:
        """Ask one source about several names: a batch call, a pool, or a loop."""
        source = group[0][1].source
        if source.batches and len(group) > 1:
            return self._ask_batch(source, group)
        if source.concurrent and len(group) > 1 and self.max_workers > 1:
            from concurrent.futures import CancelledError

            pool = self._executor()
            # Each task runs in a copy of this context: the deadline and the
            # credential-lookup exclusions travel to the pool's threads.
            try:
                futures = {
                    label: pool.submit(contextvars.copy_context().run, self._ask, target, raise_errors=True)
                    for label, target in group
                }
            except RuntimeError:  # "cannot schedule new futures after shutdown"
                if self._closed.is_set():
                    raise self._closed_error() from None
                raise
            try:
                return {label: future.result() for label, future in futures.items()}
            except CancelledError:  # queued when close() shut the pool down
                raise self._closed_error() from None
        return {label: self._ask(target, raise_errors=True) for label, target in group}

    def _ask_batch(
        self, source: Source, group: list[tuple[str, _Target]]
    ) -> dict[str, tuple[Attempt, SecretValue[Any] | None]]:
        """One batch request for the keys nobody is fetching; wait for the ones others are."""
        answers: dict[str, tuple[Attempt, SecretValue[Any] | None]] = {}
        misses: dict[Key, list[tuple[str, _Target]]] = {}
        for label, target in group:
            entry = self._hit(source, target.key)
            if entry is not None:
                answers[label] = self._settle(source, target, entry.result, cached=True)
            else:
                misses.setdefault(target.key, []).append((label, target))
        if not misses:
            return answers
        led: dict[Key, Any] = {}
        joined: dict[Key, Any] = {}
        for key in misses:
            call, leader = self._flights.claim((source.name, key))
            (led if leader else joined)[key] = call
        outcomes, unavailable = self._fetch_batch(source, led)
        for key, call in joined.items():
            try:
                outcomes[key] = self._flights.wait(call, time_left())
            except FlightTimeout:
                outcomes[key] = BackendError(
                    f"{source.describe_key(key)} was still being fetched by another caller "
                    "when the deadline of this lookup passed",
                    retryable=True,
                )
            except SourceUnavailableError as error:
                unavailable = unavailable or error
                outcomes.pop(key, None)
            except BackendError as error:
                outcomes[key] = error
        for key, items in misses.items():
            if key not in outcomes and unavailable is not None:
                attempt = Attempt(source.name, source.type, "unavailable", f"unavailable: {unavailable}")
                answers.update({label: (attempt, None) for label, _ in items})
                continue
            outcome = outcomes.get(key, NotFound(f"{source.describe_key(key)} was not returned"))
            if isinstance(outcome, BackendError):
                stale = self._stale(source, key, outcome)
                if stale is not None:
                    answers.update({label: self._settle(source, t, stale, cached=True) for label, t in items})
                    continue
                failed = self._failed(source, outcome, raise_errors=True)
                answers.update({label: (failed, None) for label, _ in items})
                continue
            for label, target in items:
                answers[label] = self._settle(source, target, outcome, cached=False)
        return answers

    def _fetch_batch(
        self, source: Source, led: dict[Key, Any]
    ) -> tuple[dict[Key, Result | BackendError], SourceUnavailableError | None]:
        """``get_many`` for the keys this caller leads; every led flight is settled, whatever happens."""
        outcomes: dict[Key, Result | BackendError] = {}
        unavailable: SourceUnavailableError | None = None
        try:
            keys = []
            for key in led:
                again = self._hit(source, key)  # a flight that just landed
                if again is not None:
                    outcomes[key] = again.result
                else:
                    keys.append(key)
            if keys:
                since = self._cache.generation()
                with masking.holding():
                    fetched = self._with_retry(
                        source, lambda: source.get_many(keys), f"{len(keys)} keys in one batch"
                    )
                    _register(fetched.values(), source.name)
                outcomes.update(fetched)
                for key in keys:
                    outcome = outcomes.get(key)
                    if isinstance(outcome, (Found, NotFound)):
                        self._store(source, key, outcome, since)
        except SourceUnavailableError as error:
            unavailable = error
        except BackendError as error:
            outcomes.update(dict.fromkeys([k for k in led if k not in outcomes], error))
        except BaseException as error:
            for key, call in led.items():
                self._flights.settle((source.name, key), call, None, error)
            raise
        for key, call in led.items():
            outcome = outcomes.get(key)
            if unavailable is not None and outcome is None:
                self._flights.settle((source.name, key), call, None, unavailable)
            elif isinstance(outcome, BackendError):
                self._flights.settle((source.name, key), call, None, outcome)
            else:
                missing = NotFound(f"{source.describe_key(key)} was not returned")
                self._flights.settle((source.name, key), call, outcome or missing, None)
        return outcomes, unavailable

    def _settle(
        self, source: Source, target: _Target, result: Result, *, cached: bool
    ) -> tuple[Attempt, SecretValue[Any] | None]:
        try:
            result = _pick_field(result, target.field, source.describe_key(target.key))
        except BackendError as error:
            return self._failed(source, error, raise_errors=True), None
        return self._record(source, result, cached)

    def _fetch(self, source: Source, key: Key) -> tuple[Result, bool]:
        """Cache → single flight → retry → ``source.get``. Returns (result, from_cache)."""
        cache_key = (source.name, key)
        entry = self._hit(source, key)
        if entry is not None:
            return entry.result, True

        def load() -> Result:
            since = self._cache.generation()  # taken before the backend is asked
            again = self._hit(source, key)  # a flight that just landed
            if again is not None:
                return again.result
            # SDK log records made during the call wait until its value is
            # registered with the masker (botocore logs response bodies).
            with masking.holding():
                result: Result = self._with_retry(
                    source, lambda: source.get(key), lambda: source.describe_key(key)
                )
                _register([result], source.name)
            self._store(source, key, result, since)
            return result

        try:
            if source.is_local():
                return self._load_local(source, key), False
            return self._flights.do(cache_key, load, wait=time_left()), False
        except FlightTimeout:
            deadline = current_deadline()
            seconds = f"{deadline.seconds:g}s " if deadline is not None else ""
            error = BackendError(
                f"{source.describe_key(key)} was still being fetched by another caller "
                f"when the {seconds}deadline of this lookup passed",
                retryable=True,
            )
        except BackendError as failure:
            error = failure
        stale = self._stale(source, key, error)
        if stale is not None:
            return stale, True
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
                _guarded(source, lambda: source.get(key)),
                _ONE_ATTEMPT,
                sleep=self._sleep,
                label=source.name,
                what=lambda: source.describe_key(key),
            )
            _register([result], source.name)
        self._store(source, key, result, since)
        return result

    def _stale(self, source: Source, key: Key, error: BackendError) -> Found | None:
        """An expired value still inside the ``stale_if_error`` grace period, if any (logged)."""
        entry = self._cache.get((source.name, key))
        if entry is None or not isinstance(entry.result, Found):
            return None
        logger.warning(
            "%s: refresh of %s failed (%s); serving the cached value for up to %gs more",
            source.name,
            source.describe_key(key),
            error.message,
            self.stale_if_error,
        )
        return entry.result

    def _with_retry(self, source: Source, operation: Callable[[], Any], what: str | Callable[[], str]) -> Any:
        policy = RetryPolicy(
            self.policy.retries if source.retries is None else source.retries,
            self.policy.backoff if source.backoff is None else source.backoff,
            self.policy.backoff_max,
        )
        return call_with_retry(
            _guarded(source, self._while_open(operation)),
            policy,
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

    def _hit(self, source: Source, key: Key) -> Entry[Result] | None:
        """The cached answer for ``key`` if it is fresh and holds here (its scope is this one's)."""
        entry = self._cache.get((source.name, key))
        if entry is None or not entry.fresh(self._clock()):
            return None
        if entry.scope is not None and entry.scope != source.absence_scope():
            return None
        return entry

    def _store(self, source: Source, key: Key, result: Result, since: int) -> None:
        """Cache ``result`` unless its key was invalidated after ``since`` (the fetch's start).

        A "not found" from a source with an :meth:`~Source.absence_scope` (the
        Prefect source inside a run: a block missing now stays missing for the
        run) is kept as long as a found value would be (``cache_ttl``, or
        ``negative_ttl`` if longer), but only for that scope: the next flow run
        asks again, and ``invalidate()``/``clear_cache()`` drop it as any entry.
        """
        if _testing_override is not None and source is _testing_override.source:
            return  # a test's overrides change between lookups and must not outlive it
        if isinstance(result, Found):
            self._cache.put((source.name, key), result, self.cache_ttl, since=since)
            return
        scope = source.absence_scope()
        if scope is None:
            self._cache.put((source.name, key), result, self.negative_ttl, since=since)
        else:
            ttl = max(self.cache_ttl, self.negative_ttl)
            self._cache.put((source.name, key), result, ttl, since=since, scope=scope)

    def _record(
        self, source: Source, result: Result, cached: bool
    ) -> tuple[Attempt, SecretValue[Any] | None]:
        if isinstance(result, Found):
            masking.register(result.value, label=source.name)
            detail = result.detail or "found"
            return Attempt(source.name, source.type, "found", detail, cached), result.value
        logger.debug("%s: %s", source.name, result.reason)
        return Attempt(source.name, source.type, "not_found", result.reason, cached), None

    def _failed(self, source: Source, error: BackendError, raise_errors: bool) -> Attempt:
        tries = getattr(error, "attempts", 1)
        limit = getattr(error, "deadline_seconds", None)
        notes = [f"after {tries} attempts"] if tries > 1 else []
        if limit is not None and tries:
            notes.append(f"stopped by the {limit:g}s deadline")
        suffix = f" ({'; '.join(notes)})" if notes else ""
        skip = source.on_error == "skip"
        # SDK exceptions can carry request and response data: only a scrubbed
        # stand-in (type, masked text, traceback) goes on as the cause, and no
        # frame of the failure keeps its locals (a parsed response, a value).
        clear_frames(error)
        cause = _scrubbed(error.__cause__)
        logger.debug("%s failed%s: %s", source.name, suffix, error.message, exc_info=cause)
        if raise_errors and not skip:
            raise error.with_source(source.name, suffix, label=_label(source)) from cause
        note = " (on_error = skip)" if skip and raise_errors else ""
        denied = "access denied: " if error.access_denied and "denied" not in error.message else ""
        return Attempt(source.name, source.type, "error", f"error: {denied}{error.message}{suffix}{note}")

    def _announce(self, label: str, attempt: Attempt) -> None:
        level = logging.DEBUG if attempt.cached else logging.INFO
        logger.log(
            level, "%s resolved by %s%s", label, _label_of(attempt), " (cached)" if attempt.cached else ""
        )

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


@scrubbed
def _pick_field(result: Result, field: str | None, where: str) -> Result:
    """Apply a reference's ``#KEY`` to a JSON secret."""
    if field is None or not isinstance(result, Found):
        return result
    try:
        parsed = result.value.json()
    except ValueError:
        raise BackendError(f"{where} is not valid JSON, so #{field} cannot be read") from None
    if not isinstance(parsed, dict):
        raise BackendError(f"{where} is JSON but not an object, so #{field} cannot be read")
    if field not in parsed:
        return NotFound(f"{where} has no field {field!r}")
    item = parsed[field]
    import json

    text = item if isinstance(item, str) else json.dumps(item)
    return Found(SecretValue(text), f"{result.detail or where} (field {field!r})")


def _cycle_message(building: tuple[tuple[Source, str], ...], scheme: str, ref: SecretRef | None) -> str:
    """Name a credential cycle from the outermost lookup inwards (names and references only:
    neither is a value)."""

    def label(source: Source) -> str:
        return source.name if source.name == source.type else f"{source.name} ({source.type})"

    steps = [f"{label(source)} needs {asked!r}" for source, asked in building]
    wanted = repr(str(ref)) if ref is not None else f"a {scheme}:// reference"
    return (
        f"credential cycle: {', which '.join(steps)}; {wanted} can only be read by a {scheme} source "
        f"that is itself waiting for its credentials (configure another {scheme} source to read it, "
        f"or take these credentials from another store)"
    )


def _given(name: NameOrRef) -> str:
    """The key a caller will look a result up by: the text it passed."""
    return name if isinstance(name, str) else str(name)


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise ConfigError(f"a secret name must be a string, not {type(name).__name__}")
    if not name or name != name.strip() or any(ord(char) < 32 for char in name):
        raise ConfigError("a secret name must be non-empty, without surrounding spaces or control characters")


def _label(source: Source) -> str:
    return source.name if source.name == source.type else f"{source.name} ({source.type})"


def _label_of(attempt: Attempt) -> str:
    return attempt.source if attempt.source == attempt.type else f"{attempt.source} ({attempt.type})"


def _register(results: Iterable[object], label: str) -> None:
    """Register found values with the masker as soon as a backend call returns.

    ``label`` (the source's name) is what the warning about a value too short
    to mask names.
    """
    for result in results:
        if isinstance(result, Found):
            masking.register(result.value, label=label)


def _guarded(source: Source, operation: Callable[[], Any]) -> Callable[[], Any]:
    """``operation`` with anything but authchain's own errors turned into a ``BackendError``.

    A source is expected to translate its SDK's exceptions; one that escapes is
    still an error of that source (``on_error = "skip"`` applies, ``explain``
    records it), and its text, which may hold data just fetched, is not shown.
    """

    def run() -> Any:
        try:
            return operation()
        except AuthChainError:
            raise
        except Exception as error:
            failure = BackendError(f"unexpected {type(error).__name__} in the {source.type} source")
            clear_frames(error)  # the traceback stays (lines only): its frames may hold data fetched
            stand_in = UpstreamError(_type_name(error), "")
            stand_in.__traceback__ = error.__traceback__
        raise failure from stand_in

    return run


def _scrubbed(error: BaseException | None, depth: int = 0) -> BaseException | None:
    """A copy of an exception chain that is safe to keep and print.

    authchain's own errors stay (their messages never hold values); anything
    else becomes an :class:`UpstreamError` with the original's type name,
    its masked text and its traceback, so request objects, headers and
    response bodies an SDK exception carries are left behind.
    """
    if error is None or depth > 8:
        return None
    if isinstance(error, (AuthChainError, UpstreamError)):
        clean = error
    else:
        try:
            text = str(error)
        except Exception:
            text = ""
        text = " ".join(masking.default_masker.mask(text).split())
        clean = UpstreamError(_type_name(error), text[:500] + ("..." if len(text) > 500 else ""))
        clean.__traceback__ = error.__traceback__
    cause, context = error.__cause__, error.__context__
    clean.__cause__ = _scrubbed(cause, depth + 1) if cause is not None else None
    clean.__context__ = _scrubbed(context, depth + 1) if context is not None else None
    clean.__suppress_context__ = error.__suppress_context__
    return clean


def _type_name(error: BaseException) -> str:
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
