"""An in-memory source: the backend for tests and the ``authchain_secrets`` fixture."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from authchain.errors import BackendError
from authchain.refs import ReferenceGrammar, SecretRef, any_location
from authchain.sources.base import CheckResult, Found, Key, NotFound, Source
from authchain.values import SecretValue

__all__ = ["MemorySource", "register_memory_source"]


class MemorySource(Source):
    """Secrets held in a dict, with a call counter for cache and batching tests.

    Example:
        >>> from authchain import Chain
        >>> memory = MemorySource({"API_KEY": "example-key"})
        >>> Chain([memory]).resolve("API_KEY").get_secret_value()
        'example-key'
        >>> memory.calls
        1
    """

    type = "memory"
    reference_grammar = ReferenceGrammar("memory://NAME[#KEY]", any_location)
    rank = 100
    concurrent = False

    def __init__(
        self,
        values: Mapping[str, str | bytes] | None = None,
        *,
        batch: bool = False,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self._init_runtime()
        self._values.update(values or {})
        self.batches = batch  # type: ignore[misc]
        self.calls = 0
        self.batch_calls = 0

    _runtime_attrs = ("_values", "_lock")  # values never travel in a pickle

    def _init_runtime(self) -> None:
        self._values: dict[str, str | bytes] = {}
        self._lock = threading.Lock()

    def __setitem__(self, name: str, value: str | bytes) -> None:
        self._values[name] = value

    def __delitem__(self, name: str) -> None:
        del self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def set(self, name: str, value: str | bytes) -> None:
        self._values[name] = value

    def key_for(self, name: str) -> Key:
        return name

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        return ref.location, ref.field

    def get(self, key: Key) -> Found | NotFound:
        with self._lock:
            self.calls += 1
        value = self._values.get(str(key))
        if value is None:
            return NotFound(f"{key} is not in memory")
        return Found(SecretValue(value), f"{key} is in memory")

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Found | NotFound | BackendError]:
        with self._lock:
            self.batch_calls += 1
        results: dict[Key, Found | NotFound | BackendError] = {}
        for key in keys:
            value = self._values.get(str(key))
            results[key] = (
                NotFound(f"{key} is not in memory")
                if value is None
                else Found(SecretValue(value), f"{key} is in memory")
            )
        return results

    def check(self) -> CheckResult:
        return self.result("ok", f"{len(self._values)} secrets in memory")


def register_memory_source() -> None:
    """Make ``type = "memory"`` and ``memory://NAME`` known in this process (tests only).

    The memory source is a testing tool, so it is not a production source
    type: ``authchain run`` passes ``memory://...`` through as plain text and
    a config naming it is an error. The pytest plugin calls this at start-up;
    call it yourself in other test runners.
    """
    from authchain._registry import register_testing_type

    register_testing_type("memory", f"{__name__}:MemorySource")
