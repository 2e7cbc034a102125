"""``resolve_many``: several names at once, each source asked about all of its names in one go.

The walk is the chain's (``authchain._chain``); this module only changes its
shape for many names: step ``n`` of every pending name's plan is taken
together, grouped by source, and each group goes to the source as one batch
call (``Source.batches``: AWS ``BatchGetSecretValue``, SSM ``GetParameters``),
onto the chain's thread pool (``Source.concurrent``), or through a plain loop.
Single flight holds across both ways of asking: a key a batch leads is not
fetched again by a single lookup, and the other way round.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from authchain import masking
from authchain._cache import FlightTimeout
from authchain._trail import EXPLICIT_NOT_PASSED, announce, failed, pick_field, recorded, register
from authchain.errors import BackendError, SourceUnavailableError
from authchain.sources.base import Found, Key, NotFound, Source
from authchain.values import Attempt, SecretValue

if TYPE_CHECKING:
    from authchain._chain import Chain, _Target

__all__ = ["ask_group", "record_answers", "step_groups", "walk_many"]

Result = Found | NotFound
Answered = tuple[Attempt, SecretValue[Any] | None]


def walk_many(
    chain: Chain, plans: Mapping[str, Sequence[_Target]]
) -> tuple[dict[str, SecretValue[Any]], dict[str, list[Attempt]]]:
    """The value each name's walk found, and every name's trail (for the ones nothing had)."""
    results: dict[str, SecretValue[Any]] = {}
    trails: dict[str, list[Attempt]] = {label: [EXPLICIT_NOT_PASSED] for label in plans}
    depth = 0
    while groups := step_groups(plans, results, depth):
        for group in groups:
            record_answers(ask_group(chain, group), results, trails)
        depth += 1
    return results, trails


def step_groups(
    plans: Mapping[str, Sequence[_Target]], results: Mapping[str, Any], depth: int
) -> list[list[tuple[str, _Target]]]:
    """Step ``depth`` of every pending name's target list, grouped by source, so each source
    sees all the names it is asked about in one go (none left: the walk is over)."""
    by_source: dict[str, list[tuple[str, _Target]]] = {}
    for label, targets in plans.items():
        if label not in results and depth < len(targets):
            target = targets[depth]
            by_source.setdefault(target.source.name, []).append((label, target))
    return list(by_source.values())


def record_answers(
    answered: Mapping[str, Answered], results: dict[str, SecretValue[Any]], trails: dict[str, list[Attempt]]
) -> None:
    """Add each name's attempt to its trail, and keep (and announce) the values found."""
    for label, (attempt, value) in answered.items():
        trails[label].append(attempt)
        if value is not None:
            results[label] = value
            announce(label, attempt)


def ask_group(chain: Chain, group: list[tuple[str, _Target]]) -> dict[str, Answered]:
    """Ask one source about several names: a batch call, a pool, or a loop."""
    source = group[0][1].source
    if source.batches and len(group) > 1:
        return _ask_batch(chain, source, group)
    if source.concurrent and len(group) > 1 and chain.max_workers > 1:
        from concurrent.futures import CancelledError

        pool = chain._executor()
        # Each task runs in a copy of this context: the deadline and the
        # credential-lookup exclusions travel to the pool's threads.
        try:
            futures = {
                label: pool.submit(contextvars.copy_context().run, chain._ask, target, raise_errors=True)
                for label, target in group
            }
        except RuntimeError:  # "cannot schedule new futures after shutdown"
            if chain._closed.is_set():
                raise chain._closed_error() from None
            raise
        try:
            return {label: future.result() for label, future in futures.items()}
        except CancelledError:  # queued when close() shut the pool down
            raise chain._closed_error() from None
    return {label: chain._ask(target, raise_errors=True) for label, target in group}


def _ask_batch(chain: Chain, source: Source, group: list[tuple[str, _Target]]) -> dict[str, Answered]:
    """One batch request for the keys nobody is fetching; wait for the ones others are."""
    answers: dict[str, tuple[Attempt, SecretValue[Any] | None]] = {}
    misses: dict[Key, list[tuple[str, _Target]]] = {}
    for label, target in group:
        entry = chain._cache.hit(source, target.key)
        if entry is not None:
            answers[label] = _settle(source, target, entry.result, cached=True)
        else:
            misses.setdefault(target.key, []).append((label, target))
    if not misses:
        return answers
    led: dict[Key, Any] = {}
    joined: dict[Key, Any] = {}
    for key in misses:
        call, leader = chain._cache.claim(source, key)
        (led if leader else joined)[key] = call
    outcomes, unavailable = _fetch_batch(chain, source, led)
    for key, call in joined.items():
        try:
            outcomes[key] = chain._join(call)
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
            stale = chain._cache.stale(source, key, outcome)
            if stale is not None:
                answers.update({label: _settle(source, t, stale, cached=True) for label, t in items})
                continue
            attempt = failed(source, outcome, raise_errors=True)
            answers.update({label: (attempt, None) for label, _ in items})
            continue
        for label, target in items:
            answers[label] = _settle(source, target, outcome, cached=False)
    return answers


def _fetch_batch(
    chain: Chain, source: Source, led: dict[Key, Any]
) -> tuple[dict[Key, Result | BackendError], SourceUnavailableError | None]:
    """``get_many`` for the keys this caller leads; every led flight is settled, whatever happens."""
    outcomes: dict[Key, Result | BackendError] = {}
    unavailable: SourceUnavailableError | None = None
    try:
        keys = []
        for key in led:
            again = chain._cache.hit(source, key)  # a flight that just landed
            if again is not None:
                outcomes[key] = again.result
            else:
                keys.append(key)
        if keys:
            since = chain._cache.generation()
            with masking.holding():
                fetched = chain._with_retry(
                    source, lambda: source.get_many(keys), f"{len(keys)} keys in one batch"
                )
                register(fetched.values(), source.name)
            outcomes.update(fetched)
            for key in keys:
                outcome = outcomes.get(key)
                if isinstance(outcome, (Found, NotFound)):
                    chain._store(source, key, outcome, since)
    except SourceUnavailableError as error:
        unavailable = error
    except BackendError as error:
        outcomes.update(dict.fromkeys([k for k in led if k not in outcomes], error))
    except BaseException as error:
        for key, call in led.items():
            chain._cache.settle(source, key, call, None, error)
        raise
    for key, call in led.items():
        outcome = outcomes.get(key)
        if unavailable is not None and outcome is None:
            chain._cache.settle(source, key, call, None, unavailable)
        elif isinstance(outcome, BackendError):
            chain._cache.settle(source, key, call, None, outcome)
        else:
            missing = NotFound(f"{source.describe_key(key)} was not returned")
            chain._cache.settle(source, key, call, outcome or missing, None)
    return outcomes, unavailable


def _settle(source: Source, target: _Target, result: Result, *, cached: bool) -> Answered:
    try:
        result = pick_field(result, target.field, source.describe_key(target.key))
    except BackendError as error:
        return failed(source, error, raise_errors=True), None
    return recorded(source, result, cached)
