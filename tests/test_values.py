"""SecretValue masks itself everywhere; Attempt and Explanation describe lookups without values."""

from __future__ import annotations

import json
import logging
import pickle
import secrets

import pytest

from authchain import Chain, Explanation, SecretValue
from authchain.testing import MemorySource
from authchain.values import MASK, Attempt


def generated() -> str:
    """A fresh random value that cannot appear anywhere by accident."""
    return "gen-" + secrets.token_urlsafe(24)


# -- masking -------------------------------------------------------------------


def test_mask_constant_is_stars() -> None:
    assert MASK == "**********"


def test_str_repr_and_format_are_masked() -> None:
    raw = generated()
    value = SecretValue(raw)
    shown = [
        str(value),
        repr(value),
        format(value),
        f"{value}",
        f"{value!s}",
        f"{value!r}",
        "%s" % value,  # noqa: UP031 - %-formatting is what is being tested
        "%r" % value,  # noqa: UP031
        "{}".format(value),  # noqa: UP032
        str([value]),
        str({"k": value}),
    ]
    for text in shown:
        assert raw not in text
        assert MASK in text
    assert str(value) == MASK
    assert repr(value) == f"SecretValue('{MASK}')"


def test_format_spec_applies_to_the_mask_not_the_value() -> None:
    value = SecretValue(generated())
    assert f"{value:>12}" == "  " + MASK
    assert f"{value:<12}|" == MASK + "  |"


def test_logging_a_value_shows_the_mask(caplog: pytest.LogCaptureFixture) -> None:
    raw = generated()
    logger = logging.getLogger("tests.values")
    with caplog.at_level(logging.INFO, logger="tests.values"):
        logger.info("token is %s", SecretValue(raw))
        logger.info("token repr %r", SecretValue(raw))
    assert caplog.records
    assert raw not in caplog.text
    assert MASK in caplog.text


def test_bytes_value_is_masked_too() -> None:
    raw = generated().encode()
    value = SecretValue(raw)
    assert raw.decode() not in str(value) + repr(value) + f"{value}"
    assert value.get_secret_value() == raw
    assert isinstance(value.get_secret_value(), bytes)


# -- holding values -------------------------------------------------------------


def test_get_secret_value_returns_the_original_string() -> None:
    raw = generated()
    value = SecretValue(raw)
    assert value.get_secret_value() == raw
    assert isinstance(value.get_secret_value(), str)


def test_wrapping_a_secret_value_unwraps_it() -> None:
    raw = generated()
    inner = SecretValue(raw)
    outer = SecretValue(inner)  # type: ignore[type-var]
    assert outer.get_secret_value() == raw
    assert isinstance(outer.get_secret_value(), str)


@pytest.mark.parametrize("bad", [123, 1.5, None, ["x"], {"a": "b"}, bytearray(b"x")])
def test_rejects_other_types(bad: object) -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        SecretValue(bad)  # type: ignore[type-var]


# -- equality and hashing ---------------------------------------------------------


def test_equal_only_to_a_secret_value_with_the_same_value() -> None:
    raw = generated()
    assert SecretValue(raw) == SecretValue(raw)
    assert SecretValue(raw) != SecretValue(generated())
    assert not (SecretValue(raw) != SecretValue(raw))  # noqa: SIM202 - __ne__ itself is under test


def test_never_equal_to_a_plain_string_or_bytes() -> None:
    raw = generated()
    value = SecretValue(raw)
    assert value != raw
    assert raw != value
    assert not (value == raw)  # noqa: SIM201 - __eq__ itself is under test
    assert value != raw.encode()
    assert SecretValue(raw.encode()) != raw.encode()
    assert value != None  # noqa: E711 - equality with None is part of the contract


def test_str_and_bytes_of_the_same_text_are_not_equal() -> None:
    raw = generated()
    assert SecretValue(raw) != SecretValue(raw.encode())


def test_hash_follows_equality() -> None:
    raw = generated()
    assert hash(SecretValue(raw)) == hash(SecretValue(raw))
    bucket = {SecretValue(raw), SecretValue(raw), SecretValue(generated())}
    assert len(bucket) == 2
    assert SecretValue(raw) in bucket
    assert {SecretValue(raw): 1}[SecretValue(raw)] == 1


def test_len_and_bool_reflect_the_value() -> None:
    raw = generated()
    assert len(SecretValue(raw)) == len(raw)
    assert len(SecretValue(raw.encode())) == len(raw.encode())
    assert bool(SecretValue(raw)) is True
    assert bool(SecretValue("")) is False
    assert bool(SecretValue(b"")) is False
    assert len(SecretValue("")) == 0


# -- pickling -----------------------------------------------------------------


@pytest.mark.parametrize("kind", [str, bytes])
def test_pickle_round_trip(kind: type) -> None:
    raw = generated()
    original = SecretValue(raw if kind is str else raw.encode())
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(original, protocol=protocol))  # noqa: S301 - our own data
        assert isinstance(copy, SecretValue)
        assert copy == original
        assert type(copy.get_secret_value()) is kind
        assert str(copy) == MASK


_UNPICKLE_AND_LOG = """
import logging, pickle, sys
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
import authchain.masking as masking
masking.install_log_masking()
value = pickle.loads(sys.stdin.buffer.read())
logging.getLogger("worker").info("worker sees %s", value.get_secret_value())
print("printed:", masking.default_masker.mask(value.get_secret_value()))
"""


def test_a_value_unpickled_in_another_process_is_masked_there() -> None:
    """A Dask worker or multiprocessing child that unpickles a value has a masker of its own:
    unpickling registers the value with it, so the worker's logs mask it."""
    import subprocess
    import sys

    raw = generated()
    done = subprocess.run(
        [sys.executable, "-c", _UNPICKLE_AND_LOG],
        input=pickle.dumps(SecretValue(raw)),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    output = done.stdout.decode()
    assert "worker sees" in output
    assert "printed:" in output
    assert raw not in output


# -- JSON ---------------------------------------------------------------------


def test_json_parses_the_value() -> None:
    user, password = generated(), generated()
    value = SecretValue(json.dumps({"user": user, "password": password, "port": 5432}))
    assert value.json() == {"user": user, "password": password, "port": 5432}
    assert SecretValue(json.dumps([1, 2, 3])).json() == [1, 2, 3]


def test_json_of_bytes_value() -> None:
    token = generated()
    assert SecretValue(json.dumps({"t": token}).encode()).json() == {"t": token}


@pytest.mark.parametrize("wrap", [str, str.encode])
def test_invalid_json_error_never_quotes_the_value(wrap: object) -> None:
    raw = "not json " + generated()
    value = SecretValue(wrap(raw))  # type: ignore[operator]
    with pytest.raises(ValueError, match="not valid JSON") as info:
        value.json()
    assert raw not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_invalid_utf8_bytes_is_a_json_error() -> None:
    value = SecretValue(b"\xff\xfe" + generated().encode())
    with pytest.raises(ValueError, match="not valid JSON"):
        value.json()


def test_fields_wraps_each_top_level_field() -> None:
    user, password = generated(), generated()
    value = SecretValue(
        json.dumps({"user": user, "password": password, "port": 5432, "tls": True, "tags": ["a"]})
    )
    fields = value.fields()
    assert set(fields) == {"user", "password", "port", "tls", "tags"}
    assert all(isinstance(item, SecretValue) for item in fields.values())
    assert fields["user"].get_secret_value() == user
    assert fields["password"].get_secret_value() == password
    assert fields["port"].get_secret_value() == "5432"
    assert fields["tls"].get_secret_value() == "true"
    assert fields["tags"].get_secret_value() == '["a"]'
    assert password not in str(fields) + repr(fields)


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "42", "null"])
def test_fields_requires_a_json_object(payload: str) -> None:
    with pytest.raises(ValueError, match="not an object"):
        SecretValue(payload).fields()


def test_fields_of_invalid_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        SecretValue(generated()).fields()


# -- pydantic -----------------------------------------------------------------


def test_pydantic_field_validates_and_serialises_masked() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Settings(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        token: SecretValue  # type: ignore[type-arg]
        name: str = "app"

    raw = generated()
    model = Settings(token=raw)
    assert isinstance(model.token, SecretValue)
    assert model.token.get_secret_value() == raw

    dumped = model.model_dump()
    assert dumped == {"token": MASK, "name": "app"}
    dumped_json = model.model_dump_json()
    assert json.loads(dumped_json) == {"token": MASK, "name": "app"}
    assert raw not in dumped_json
    assert raw not in repr(model)
    assert raw not in str(model)


def test_pydantic_accepts_bytes_and_secret_value_and_rejects_others() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        token: SecretValue  # type: ignore[type-arg]

    raw = generated()
    given = SecretValue(raw)
    assert Model(token=given).token is given
    assert Model(token=raw.encode()).token.get_secret_value() == raw.encode()
    with pytest.raises(pydantic.ValidationError):
        Model(token=12345)


def test_pydantic_json_schema_is_a_password_string() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        token: SecretValue  # type: ignore[type-arg]

    schema = Model.model_json_schema()["properties"]["token"]
    assert schema["type"] == "string"
    assert schema["format"] == "password"
    assert schema.get("writeOnly") is True


# -- Attempt ------------------------------------------------------------------


def test_attempt_line_names_source_and_type() -> None:
    attempt = Attempt("vault-prod", "vault", "not_found", "no secret at kv/app/DB_PASSWORD")
    assert attempt.line() == "vault-prod (vault): no secret at kv/app/DB_PASSWORD"


def test_attempt_line_omits_type_when_it_equals_the_name() -> None:
    assert Attempt("env", "env", "not_found", "APP_X is not set").line() == "env: APP_X is not set"


def test_attempt_line_marks_cached_answers() -> None:
    attempt = Attempt("env", "env", "found", "X is set", cached=True)
    assert attempt.line() == "env: X is set [cached]"


# -- Explanation ----------------------------------------------------------------


def _explanation() -> Explanation:
    explicit = Attempt("explicit", "explicit", "not_asked", "no value passed")
    winner = Attempt("mem-a", "memory", "found", "X is in memory", cached=True)
    miss = Attempt("env", "env", "not_found", "X is not set")
    shadow = Attempt("dotenv", "dotenv", "found", ".env has X")
    failed = Attempt("mem-b", "memory", "error", "error: boom")
    return Explanation("X", (explicit, winner, miss, shadow, failed), winner, (shadow,))


def test_explanation_flags() -> None:
    explanation = _explanation()
    assert explanation.found
    assert explanation.from_cache
    nothing = Explanation("Y", (Attempt("env", "env", "not_found", "Y is not set"),))
    assert not nothing.found
    assert not nothing.from_cache
    fresh = Attempt("env", "env", "found", "Z is set")
    assert not Explanation("Z", (fresh,), fresh).from_cache


def test_explanation_str_is_a_table_with_winner_and_shadowed() -> None:
    text = str(_explanation())
    lines = text.splitlines()
    assert lines[0] == "X: found by mem-a (memory), from cache"
    assert lines[1].split() == ["#", "source", "type", "status", "detail"]
    rows = {line.split()[1]: line for line in lines[2:7]}
    assert set(rows) == {"explicit", "mem-a", "env", "dotenv", "mem-b"}
    assert "WINNER" in rows["mem-a"]
    assert "[cached]" in rows["mem-a"]
    assert "shadowed" in rows["dotenv"]
    assert "not found" in rows["env"]
    assert "error" in rows["mem-b"]
    assert "not asked" in rows["explicit"]
    assert lines[-1] == "also defined in (shadowed): dotenv"


def test_explanation_str_when_nothing_found_and_when_pinned() -> None:
    attempt = Attempt("env", "env", "not_found", "Y is not set")
    text = str(Explanation("Y", (attempt,), pinned_to="env://OTHER"))
    assert text.splitlines()[0] == "Y: not found by any source"
    assert text.splitlines()[1] == "pinned in config to env://OTHER"
    assert "shadowed" not in text


def test_explanation_as_dict() -> None:
    data = _explanation().as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["name"] == "X"
    assert data["found"] is True
    assert data["winner"] == "mem-a"
    assert data["from_cache"] is True
    assert data["shadowed"] == ["dotenv"]
    assert data["pinned_to"] is None
    statuses = {row["source"]: row["status"] for row in data["attempts"]}
    assert statuses == {
        "explicit": "not asked",
        "mem-a": "WINNER",
        "env": "not found",
        "dotenv": "shadowed",
        "mem-b": "error",
    }
    winner_row = next(row for row in data["attempts"] if row["source"] == "mem-a")
    assert winner_row == {
        "source": "mem-a",
        "type": "memory",
        "outcome": "found",
        "detail": "X is in memory",
        "cached": True,
        "status": "WINNER",
    }


def test_explanation_from_a_real_chain_flags_shadowed_and_cached() -> None:
    first, second = generated(), generated()
    chain = Chain(
        [
            MemorySource({"NAME": first}, name="primary"),
            MemorySource({}, name="empty"),
            MemorySource({"NAME": second}, name="backup"),
        ]
    )
    cold = chain.explain("NAME")
    assert cold.winner is not None
    assert cold.winner.source == "primary"
    assert [a.source for a in cold.shadowed] == ["backup"]
    assert not cold.from_cache
    assert [a.source for a in cold.attempts] == ["explicit", "primary", "empty", "backup"]

    assert chain.resolve("NAME").get_secret_value() == first
    warm = chain.explain("NAME")
    assert warm.from_cache
    assert warm.as_dict()["from_cache"] is True
    text = str(warm)
    assert "from cache" in text.splitlines()[0]
    assert first not in text
    assert second not in text
    assert first not in json.dumps(warm.as_dict())
