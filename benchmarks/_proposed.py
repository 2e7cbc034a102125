"""Benchmark-only experiment: the ``Chain`` changes proposed in ``PROPOSED.md``.

``authchain/_chain.py`` belongs to another change in flight, so the proposal
is not applied to it; this subclass carries the same code as diffs A and C
(the methods they change, copied as changed), so the benchmarks measure the
proposal in the same run as the current code:

1. a per-name answer cache in ``resolve`` (diff A), remembered by ``_first``;
2. ``describe_key`` only when a ``#field`` needs it (diff A, ``_ask``);
3. ``_without()`` views that share the cache (diff C).

Diff B (lazy imports) only changes import time, which ``bench_import``
measures on the real package. Nothing here is imported by authchain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authchain import Chain
from authchain._chain import _MISSING, EXPLICIT_NOT_PASSED, _given, _pick_field
from authchain.errors import BackendError, SecretNotFound, SourceUnavailableError
from authchain.values import Attempt, SecretValue

__all__ = ["ProposedChain", "enable"]


class ProposedChain(Chain):
    """``Chain`` plus the changes proposed in PROPOSED.md (diffs A and C)."""

    _answers: dict[str, tuple[float, SecretValue[Any], tuple[tuple[Any, Any], ...]]]

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self._answers = {}

    def resolve(self, name: Any, *, explicit: Any = None, default: Any = _MISSING) -> SecretValue[Any]:
        if explicit is None and type(name) is str:
            answer = self._answers.get(name)
            if answer is not None and self._clock() < answer[0]:
                for source, context in answer[2]:
                    if source.context_key() != context:
                        break
                else:
                    return answer[1]
        # The slow path is the current resolve(), which calls self._first(name):
        # here _first remembers by default (diff A passes remember=True instead).
        return super().resolve(name, explicit=explicit, default=default)

    def _first(self, name: Any, *, remember: bool = True) -> tuple[SecretValue[Any], Attempt]:
        label, targets, _ = self._plan(name)
        attempts = [EXPLICIT_NOT_PASSED]
        for number, target in enumerate(targets):
            attempt, value = self._ask(target, raise_errors=True)
            attempts.append(attempt)
            if value is not None:
                self._announce(label, attempt)
                if remember and isinstance(name, str):
                    self._remember(name, targets[:number], attempts[1:-1], target, value)
                return value, attempt
        raise SecretNotFound(_given(name), attempts)

    def _remember(
        self, name: str, passed: Sequence[Any], attempts: Sequence[Attempt], winner: Any, value: Any
    ) -> None:
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
        self._answers[name] = (entry.stored_at + entry.ttl, value, guards)

    def invalidate(self, name: Any) -> None:
        self._answers.clear()
        super().invalidate(name)

    def clear_cache(self) -> None:
        self._answers.clear()
        super().clear_cache()

    def _without(self, excluded: frozenset[str]) -> Chain:
        view = object.__new__(type(self))  # diff C: shares the runtime
        view.__dict__.update(self.__dict__)
        view._sources = tuple(
            s for s in self._sources if s.name not in excluded and f"type:{s.type}" not in excluded
        )
        view._excluded = excluded
        view._answers = {}  # a view's answers are not this chain's answers
        return view

    def _ask(self, target: Any, *, raise_errors: bool) -> Any:
        source = target.source
        failure: BackendError | None = None
        try:
            result, cached = self._fetch(source, target.key)
            if target.field is not None:  # describe_key only when a message may need it
                result = _pick_field(result, target.field, source.describe_key(target.key))
        except SourceUnavailableError as error:
            return Attempt(source.name, source.type, "unavailable", f"unavailable: {error}"), None
        except BackendError as error:
            failure = error
        if failure is not None:
            return self._failed(source, failure, raise_errors), None
        return self._record(source, result, cached)


def enable(chain: Chain) -> Chain:
    """Give an existing chain (the default one) the proposed changes, in place."""
    chain.__class__ = ProposedChain
    chain._answers = {}  # type: ignore[attr-defined]
    return chain
