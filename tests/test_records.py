"""``authchain._records.record``: the frozen-dataclass stand-in behind Found, Attempt, SecretRef, ...

These records are public (``Found``, ``NotFound``, ``Option``, ``CheckResult``,
``Attempt``, ``Explanation``, ``SecretRef``), so they must keep what users of a
frozen dataclass rely on: construction, equality, hashing, repr, immutability,
pickling and copying.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import cloudpickle
import pytest

from authchain import SecretRef, SecretValue
from authchain._records import record
from authchain.sources.base import Found, NotFound, Option
from authchain.values import Attempt, Explanation


@record
class Point:
    x: int
    y: int = 0
    label: str = "p"


def test_positional_keyword_and_default_construction() -> None:
    assert vars(Point(1)) == {"x": 1, "y": 0, "label": "p"}
    assert vars(Point(1, 2)) == {"x": 1, "y": 2, "label": "p"}
    assert vars(Point(1, label="q")) == {"x": 1, "y": 0, "label": "q"}
    assert vars(Point(x=3, y=4, label="r")) == {"x": 3, "y": 4, "label": "r"}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, r"Point\(\) missing required argument: 'x'"),
        ((1, 2, "a", 4), {}, r"Point\(\) takes 3 arguments but 4 were given"),
        ((1,), {"z": 2}, r"Point\(\) got an unexpected keyword argument 'z'"),
        ((1,), {"x": 2}, r"Point\(\) got multiple values for argument 'x'"),
    ],
)
def test_bad_construction_is_a_type_error(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)  # type: ignore[arg-type]


def test_equality_and_hash_follow_the_fields_and_the_class() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(2, 1)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(1, 3)}) == 2

    @record
    class Other:
        x: int
        y: int = 0
        label: str = "p"

    assert Point(1) != Other(1), "same fields, other class"  # type: ignore[comparison-overlap]
    assert Point(1) != (1, 0, "p")  # type: ignore[comparison-overlap]


def test_records_are_frozen() -> None:
    point = Point(1)
    with pytest.raises(AttributeError, match="cannot assign to field 'x': Point is frozen"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot delete field 'y'"):
        del point.y
    assert point == Point(1)


def test_repr_lists_the_fields_unless_the_class_writes_its_own() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, label='p')"
    assert repr(NotFound("no such key")) == "NotFound(reason='no such key')"
    assert repr(Found(SecretValue("hunter2-canary"), "kv/app")) == (
        "Found(value=SecretValue('**********'), detail='kv/app')"
    )


def test_pickle_copy_and_match_keep_the_record() -> None:
    ref = SecretRef.parse("vault://secret/app/db#password?version=2")
    pickled = pickle.loads(pickle.dumps(ref))  # noqa: S301 - our own bytes
    for made in (pickled, cloudpickle.loads(cloudpickle.dumps(ref)), copy.copy(ref)):
        assert made == ref
        assert str(made) == str(ref)
    deep = copy.deepcopy(Explanation("X", (Attempt("env", "env", "not_found", "X is not set"),)))
    assert deep.attempts[0].detail == "X is not set"
    assert deep.winner is None
    assert deep.shadowed == ()
    match Point(5, 6):
        case Point(x, y):
            assert (x, y) == (5, 6)
        case _:
            pytest.fail("match_args")


def test_a_required_field_after_a_default_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="field 'b' without a default follows one with a default"):

        @record
        class Broken:
            a: int = 0
            b: int  # type: ignore[misc]


def test_public_records_keep_their_constructors() -> None:
    option = Option("url", str, help="the server", required=True)
    assert (option.name, option.kind, option.default, option.required, option.is_path) == (
        "url",
        str,
        None,
        True,
        False,
    )
    attempt = Attempt("env", "env", "found", "set", cached=True)
    assert attempt.line() == "env: set [cached]"


def test_import_authchain_loads_no_dataclasses_or_hashing_modules() -> None:
    """The point of these records (and of the lazy imports in masking and values): start-up time."""
    heavy = ["dataclasses", "inspect", "hashlib", "json", "base64", "secrets", "random", "concurrent.futures"]
    probe = f"import sys, authchain; print([m for m in {heavy!r} if m in sys.modules])"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "[]"
