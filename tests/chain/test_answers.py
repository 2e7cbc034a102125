"""The chain's remembered answers: resolve() skips the walk while they hold."""

from __future__ import annotations

from typing import Any

from authchain import Chain
from authchain.backends.env.source import EnvSource
from authchain.errors import SourceUnavailableError
from authchain.sources.base import Found, Key, NotFound, Source
from authchain.testing.memory import MemorySource
from authchain.values import SecretValue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Gate(Source):
    """Unavailable outside a 'run', like the Prefect source; context_key says which."""

    type = "gate"

    def __init__(self, values: dict[str, str], **common: Any) -> None:
        super().__init__(**common)
        self.values, self.inside, self.calls = values, False, 0

    def key_for(self, name: str) -> Key:
        return name

    def context_key(self) -> bool:
        return self.inside

    def get(self, key: Key) -> Found | NotFound:
        self.calls += 1
        if not self.inside:
            raise SourceUnavailableError("not inside a run")
        value = self.values.get(str(key))
        return Found(SecretValue(value)) if value else NotFound(f"no {key}")


def test_a_remembered_answer_skips_the_walk() -> None:
    gate, memory = Gate({"A": "from-the-gate"}), MemorySource({"A": "from-memory"})
    chain = Chain([gate, memory])
    assert chain.resolve("A").get_secret_value() == "from-memory"
    assert chain.resolve("A").get_secret_value() == "from-memory"
    assert (gate.calls, memory.calls) == (1, 1)


def test_a_changed_context_drops_the_answer() -> None:
    gate, memory = Gate({"A": "from-the-gate"}), MemorySource({"A": "from-memory"})
    chain = Chain([gate, memory])
    assert chain.resolve("A").get_secret_value() == "from-memory"
    gate.inside = True
    assert chain.resolve("A").get_secret_value() == "from-the-gate"


def test_a_source_that_said_not_found_is_asked_again() -> None:
    first, second = MemorySource({}, name="first"), MemorySource({"A": "value-a"}, name="second")
    chain = Chain([first, second])
    chain.resolve("A")
    chain.resolve("A")
    assert (first.calls, second.calls) == (2, 1)


def test_an_answer_expires_with_its_cache_entry() -> None:
    clock, memory = Clock(), MemorySource({"A": "first-value"})
    chain = Chain([memory], cache_ttl=10, clock=clock)
    assert chain.resolve("A").get_secret_value() == "first-value"
    memory["A"] = "second-value"
    clock.now = 9.9
    assert chain.resolve("A").get_secret_value() == "first-value"
    clock.now = 10.0
    assert chain.resolve("A").get_secret_value() == "second-value"


def test_no_cache_means_no_remembered_answer() -> None:
    memory = MemorySource({"A": "first-value"})
    chain = Chain([memory], cache_ttl=0)
    chain.resolve("A")
    memory["A"] = "second-value"
    assert chain.resolve("A").get_secret_value() == "second-value"


def test_invalidate_and_clear_cache_forget_answers() -> None:
    memory = MemorySource({"A": "first-value"})
    chain = Chain([memory])
    chain.resolve("A")
    memory["A"] = "second-value"
    chain.invalidate("memory://A")  # another spelling of the same secret
    assert chain.resolve("A").get_secret_value() == "second-value"
    memory["A"] = "third-value"
    chain.clear_cache()
    assert chain.resolve("A").get_secret_value() == "third-value"


def test_explicit_and_defaults_are_not_remembered() -> None:
    memory = MemorySource({})
    chain = Chain([memory])
    assert chain.resolve("A", explicit="given-value").get_secret_value() == "given-value"
    assert chain.resolve("A", default=None) is None
    memory["A"] = "stored-value"
    assert chain.resolve("A").get_secret_value() == "stored-value"


def test_a_view_without_some_sources_keeps_its_own_answers() -> None:
    # A credential lookup's view (first's own credentials): first is left out.
    first = MemorySource({"A": "first-value"}, name="first")
    second = EnvSource(name="second", environ={"A": "second-value"})
    chain = Chain([first, second])
    assert chain.resolve("A").get_secret_value() == "first-value"
    with chain._building(first, "A") as view:
        assert view.resolve("A").get_secret_value() == "second-value"
    assert chain.resolve("A").get_secret_value() == "first-value"
