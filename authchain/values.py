"""Values that carry secrets, and the records that describe a lookup without them.

``SecretValue`` is the only object in authchain that holds a secret. It masks
itself everywhere a value might be printed by accident (``str``, ``repr``,
f-strings, ``%``-formatting, logging, pydantic serialisation) and gives the
real value only through an explicit call. ``Attempt`` and ``Explanation``
describe what the chain did and never hold a value at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Literal, TypeVar

from authchain._records import record
from authchain._scrub import scrubbed

__all__ = ["MASK", "Attempt", "Explanation", "Outcome", "SecretValue", "source_label"]

MASK = "**********"

T = TypeVar("T", str, bytes)


class SecretValue(Generic[T]):
    """A secret string or bytes value that masks itself when shown.

    ``str``, ``repr`` and ``format`` give ``**********``; the real value only
    comes from :meth:`get_secret_value`, so a value reaching a log line, an
    exception or a Prefect parameter by accident is masked there.

    Example:
        >>> pw = SecretValue("hunter2-example")
        >>> print(pw, repr(pw), f"{pw}")
        ********** SecretValue('**********') **********
        >>> pw.get_secret_value()
        'hunter2-example'
    """

    __slots__ = ("_secret",)

    def __init__(self, value: T) -> None:
        if isinstance(value, SecretValue):
            value = value.get_secret_value()
        if not isinstance(value, (str, bytes)):
            kind = type(value).__name__
            del value  # a dict of credentials passed by mistake stays out of this frame
            raise TypeError(f"SecretValue holds str or bytes, not {kind}")
        self._secret: T = value

    def get_secret_value(self) -> T:
        """Return the real value. Call it at the last moment, where it is used."""
        return self._secret

    def json(self) -> Any:
        """Parse the value as JSON and return the plain (unmasked) Python object.

        Like :meth:`get_secret_value` this reveals the secret; prefer
        :meth:`fields` when you pass parts of it around.

        Raises:
            ValueError: the value is not valid JSON (the message never quotes it).
        """
        import json  # here, not at import: start-up time (see authchain.masking)

        try:
            return json.loads(self._secret)
        except (ValueError, UnicodeDecodeError):
            pass
        # Raised outside the handler: `from None` alone only hides the context
        # when printing, and the decoder's error keeps the whole value in `.doc`.
        raise ValueError("the secret value is not valid JSON") from None

    @scrubbed
    def fields(self) -> dict[str, SecretValue[str]]:
        """Parse a JSON object and return each top-level field as a ``SecretValue``.

        Non-string fields are re-encoded as JSON text (``5432`` → ``"5432"``).

        Example:
            >>> creds = SecretValue('{"user": "app", "port": 5432}').fields()
            >>> creds["port"].get_secret_value(), str(creds["user"])
            ('5432', '**********')
        """
        import json

        parsed = self.json()
        if not isinstance(parsed, dict):
            raise ValueError("the secret value is JSON but not an object")
        return {
            str(key): SecretValue(item if isinstance(item, str) else json.dumps(item))
            for key, item in parsed.items()
        }

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"SecretValue('{MASK}')"

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __len__(self) -> int:
        return len(self._secret)

    def __bool__(self) -> bool:
        return bool(self._secret)

    def __eq__(self, other: object) -> bool:
        # Only another SecretValue compares equal, so `value == "guess"` in user
        # code (or a test assertion printing both sides) cannot probe the value.
        if not isinstance(other, SecretValue):
            return NotImplemented
        mine, theirs = self._secret, other._secret
        if type(mine) is not type(theirs):
            return False
        left = mine.encode() if isinstance(mine, str) else mine
        right = theirs.encode() if isinstance(theirs, str) else theirs
        import hmac

        return hmac.compare_digest(left, right)

    def __hash__(self) -> int:
        return hash((SecretValue, self._secret))

    def __reduce__(self) -> tuple[Any, tuple[type[SecretValue[T]], T]]:
        # Pickles on purpose (multiprocessing needs it); pass a SecretRef across
        # process boundaries to keep the value out of the pickle altogether.
        return (_restore, (type(self), self._secret))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Validate str/bytes/SecretValue; serialise masked, like ``SecretStr``."""
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            _validate_for_pydantic,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _serialize_masked, when_used="always"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "format": "password", "writeOnly": True}


def _validate_for_pydantic(value: Any) -> SecretValue[Any]:
    if isinstance(value, SecretValue):
        return value
    if isinstance(value, (str, bytes)):
        return SecretValue(value)
    # ValueError, not TypeError: pydantic turns only ValueError/AssertionError
    # into a ValidationError; a TypeError would escape the model raw.
    raise ValueError("expected a str, bytes or SecretValue")


def _serialize_masked(value: Any) -> str:
    return MASK


Outcome = Literal["found", "not_found", "error", "unavailable", "not_asked"]


def source_label(name: str, type: str) -> str:
    """How messages name a source: ``vault-prod (vault)``, or just ``env`` when name and type agree.

    One function, so an error, ``explain``, a log line and a chain's repr
    name a source the same way.
    """
    return name if name == type else f"{name} ({type})"


@record
class Attempt:
    """What one source said about one name. Holds no value, only where and why."""

    source: str
    type: str
    outcome: Outcome
    detail: str
    cached: bool = False

    @property
    def label(self) -> str:
        """The source as messages name it (see :func:`source_label`)."""
        return source_label(self.source, self.type)

    def line(self) -> str:
        """The ``name (type): detail`` line used in errors and ``explain``."""
        suffix = " [cached]" if self.cached else ""
        return f"{self.label}: {_shown(self.detail)}{suffix}"


@record
class Explanation:
    """The full trail of a lookup: who was asked, what each said, who won.

    ``str()`` renders a table; ``winner`` is None when nothing had the name.
    ``shadowed`` lists the other sources that also hold the name: the value a
    user sees elsewhere may come from one of them ("works on my machine").
    """

    name: str
    attempts: tuple[Attempt, ...]
    winner: Attempt | None = None
    shadowed: tuple[Attempt, ...] = ()
    pinned_to: str | None = None

    @property
    def found(self) -> bool:
        return self.winner is not None

    @property
    def from_cache(self) -> bool:
        return self.winner is not None and self.winner.cached

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for ``authchain explain --json``."""
        return {
            "name": self.name,
            "found": self.found,
            "winner": self.winner.source if self.winner else None,
            "from_cache": self.from_cache,
            "pinned_to": self.pinned_to,
            "shadowed": [a.source for a in self.shadowed],
            "attempts": [
                {
                    "source": a.source,
                    "type": a.type,
                    "outcome": a.outcome,
                    "detail": _shown(a.detail),
                    "cached": a.cached,
                    "status": self._status(a),
                }
                for a in self.attempts
            ],
        }

    def _status(self, attempt: Attempt) -> str:
        if attempt is self.winner:
            return "WINNER"
        if attempt in self.shadowed:
            return "shadowed"
        return attempt.outcome.replace("_", " ")

    def __str__(self) -> str:
        if self.winner is None:
            head = f"{self.name}: not found by any source"
        else:
            cache = ", from cache" if self.winner.cached else ""
            head = f"{self.name}: found by {self.winner.source} ({self.winner.type}){cache}"
        if self.pinned_to:
            head += f"\npinned in config to {self.pinned_to}"
        rows = [("#", "source", "type", "status", "detail")]
        for number, attempt in enumerate(self.attempts, start=1):
            detail = _shown(attempt.detail) + (" [cached]" if attempt.cached else "")
            rows.append((str(number), attempt.source, attempt.type, self._status(attempt), detail))
        table = _format_table(rows)
        tail = ""
        if self.shadowed:
            names = ", ".join(a.source for a in self.shadowed)
            tail = f"\nalso defined in (shadowed): {names}"
        return f"{head}\n{table}{tail}"


def _shown(detail: str) -> str:
    """A source's detail as shown: a URL's password is never part of it."""
    from authchain._redact import redact_url_passwords

    return redact_url_passwords(detail)


def _format_table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


# What this process does with a value it unpickles: ``authchain.masking`` sets
# it to "register with the masker" when it is imported (``import authchain``
# always imports it). masking imports this module, so this module does not
# import masking, not even inside a function (tests/test_import_cycles.py).
_on_unpickle: Callable[[SecretValue[Any]], None] | None = None


def _restore(cls: type[SecretValue[T]], value: T) -> SecretValue[T]:
    """Unpickle a ``SecretValue`` and register it with this process's masker.

    The process that fetched it registered it; the one that unpickles it (a
    Dask worker, a multiprocessing child, a Prefect task runner) has its own
    masker, which must know the value before anything there logs it.
    """
    restored = cls(value)
    if _on_unpickle is not None:
        _on_unpickle(restored)
    return restored
