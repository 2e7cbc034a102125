"""Canary tests: a resolved value never shows up where it was not asked for.

Each test plants one fresh canary (``authchain.testing.canary()``) in a real
source (the environment seam or a real ``.env`` file), resolves it, and then
searches every printable or serialisable surface for it. ``assert_not_leaked``
reports where a value leaked without printing it.
"""

from __future__ import annotations

import json
import logging
import pickle
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authchain import BackendError, Chain, SecretNotFound, SecretValue
from authchain.backends.dotenv.source import DotenvSource
from authchain.backends.env.source import EnvSource
from authchain.sources.base import Found, Source
from authchain.testing import MemorySource, canary
from authchain.testing.contract import assert_not_leaked


@dataclass
class Planted:
    value: str
    chain: Chain
    source: Source
    name: str = "TOKEN"


@pytest.fixture(params=["env", "dotenv"])
def planted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Planted]:
    """One canary, reachable as TOKEN through an env or a dotenv source."""
    value = canary()
    source: Source
    if request.param == "env":
        source = EnvSource(prefix="APP_", environ={"APP_TOKEN": value, "APP_JSON": json.dumps({"k": value})})
    else:
        path = tmp_path / ".env"
        path.write_text(f"TOKEN={value}\nJSON='{json.dumps({'k': value})}'\n", encoding="utf-8")
        source = DotenvSource(path=path)
    with Chain([source]) as chain:
        yield Planted(value, chain, source)


def formatted(error: BaseException) -> str:
    """The message and the whole printed traceback, context chain included."""
    return str(error) + repr(error) + "".join(traceback.format_exception(error))


def test_assert_not_leaked_catches_a_leak() -> None:
    value = canary()
    with pytest.raises(pytest.fail.Exception) as caught:
        assert_not_leaked(value, f"prefix {value} suffix", "a control string")
    assert_not_leaked(value, str(caught.value), "the failure message itself")
    with pytest.raises(pytest.fail.Exception):
        assert_not_leaked(value, f"[{value}]".encode(), "control bytes")


def test_the_canary_really_resolves(planted: Planted) -> None:
    assert planted.chain.resolve(planted.name).get_secret_value() == planted.value


def test_secret_value_never_shows_its_value(planted: Planted) -> None:
    value = planted.chain.resolve(planted.name)
    surfaces = {
        "str": str(value),
        "repr": repr(value),
        "f-string": f"{value}",
        "f-string !r": f"{value!r}",
        "f-string with spec": f"{value:>40}",
        "%-format": "%s %r" % (value, value),  # noqa: UP031 - the old style is what we test
        "str.format": "{} {!r}".format(value, value),  # noqa: UP032 - the method is what we test
        "inside a list": str([value]),
        "inside a dict": str({"token": value}),
        "inside a tuple": repr((value,)),
        "dir": str(dir(value)),
    }
    for where, text in surfaces.items():
        assert_not_leaked(planted.value, text, where)


def test_secret_value_in_pydantic_models(planted: Planted) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Settings(pydantic.BaseModel):
        token: SecretValue[str]

    model = Settings(token=planted.chain.resolve(planted.name))
    for where, text in {
        "repr(model)": repr(model),
        "model_dump_json": model.model_dump_json(),
        "model_dump": str(model.model_dump()),
    }.items():
        assert_not_leaked(planted.value, text, where)


def test_found_sources_and_chain_never_show_the_value(planted: Planted) -> None:
    source = planted.source
    result = source.get(source.key_for(planted.name))
    assert isinstance(result, Found)
    planted.chain.resolve(planted.name)
    for where, text in {
        "repr(Found)": repr(result),
        "str(Found)": str(result),
        "Found.detail": result.detail,
        "repr(source)": repr(source),
        "source.settings()": json.dumps(source.settings(), default=str),
        "source.check()": repr(source.check()),
        "repr(chain)": repr(planted.chain),
        "str(chain)": str(planted.chain),
        "chain.check()": repr(planted.chain.check()),
    }.items():
        assert_not_leaked(planted.value, text, where)


def test_explain_never_shows_the_value(planted: Planted) -> None:
    for _ in range(2):  # fresh, then from the cache
        explanation = planted.chain.explain(planted.name)
        assert explanation.found
        for where, text in {
            "str(explain)": str(explanation),
            "repr(explain)": repr(explanation),
            "explain JSON": json.dumps(explanation.as_dict()),
        }.items():
            assert_not_leaked(planted.value, text, where)
    assert explanation.from_cache


def test_secret_not_found_never_shows_a_held_value(planted: Planted) -> None:
    planted.chain.resolve(planted.name)
    with pytest.raises(SecretNotFound) as caught:
        planted.chain.resolve("ABSENT")
    assert_not_leaked(planted.value, formatted(caught.value), "SecretNotFound")
    assert_not_leaked(planted.value, pickle.dumps(caught.value), "a pickled SecretNotFound")
    with pytest.raises(SecretNotFound) as many:
        planted.chain.resolve_many([planted.name, "ABSENT"])
    assert_not_leaked(planted.value, formatted(many.value), "SecretNotFound from resolve_many")


def test_invalid_json_field_error_never_shows_the_value() -> None:
    value = canary()
    chain = Chain([EnvSource(environ={"TOKEN": value})])
    with pytest.raises(BackendError) as caught:
        chain.resolve("env://TOKEN#password")
    assert "is not valid JSON" in str(caught.value)
    assert_not_leaked(value, formatted(caught.value), "the invalid-JSON BackendError")
    assert_not_leaked(value, pickle.dumps(caught.value), "a pickled BackendError")
    assert_not_leaked(value, str(chain.explain("env://TOKEN#password")), "explain of a bad #field")


def exception_chain(error: BaseException | None) -> list[BaseException]:
    """The error and every cause and context behind it, printed or suppressed."""
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


@pytest.mark.parametrize("raw", [b"not json ", b"\xff\xfe not utf-8 "])
def test_json_error_chain_holds_no_value(raw: bytes) -> None:
    """``from None`` only hides a context when printing; the decoder's error would
    still carry the whole document (``JSONDecodeError.doc``, ``UnicodeDecodeError.object``)."""
    value = canary()
    memory = MemorySource({"DOC": raw + value.encode()})
    with pytest.raises(BackendError) as caught:
        Chain([memory]).resolve("memory://DOC#field")
    errors = exception_chain(caught.value)
    for error in errors:
        carried = [error.args, vars(error), getattr(error, "doc", None), getattr(error, "object", None)]
        assert_not_leaked(value, repr(carried), f"a {type(error).__name__} in the exception chain")
    with pytest.raises(ValueError, match="not valid JSON") as direct:
        SecretValue(value).json()
    for error in exception_chain(direct.value):
        carried = [error.args, vars(error), getattr(error, "doc", None)]
        assert_not_leaked(value, repr(carried), f"a {type(error).__name__} behind SecretValue.json()")


def test_json_errors_never_show_the_document() -> None:
    value = canary()
    chain = Chain([EnvSource(environ={"LIST": json.dumps([value]), "OBJ": json.dumps({"k": value})})])
    with pytest.raises(BackendError) as not_object:
        chain.resolve("env://LIST#k")
    assert_not_leaked(value, formatted(not_object.value), "the not-an-object BackendError")
    with pytest.raises(SecretNotFound) as no_field:
        chain.resolve("env://OBJ#other")
    assert_not_leaked(value, formatted(no_field.value), "the missing-field SecretNotFound")
    assert chain.resolve("env://OBJ#k").get_secret_value() == value


def test_backend_errors_never_show_values(tmp_path: Path) -> None:
    value = canary()
    ambiguous = EnvSource(case_sensitive=False, environ={"token": value, "Token": canary()})
    with pytest.raises(BackendError) as case_error:
        Chain([ambiguous]).resolve("TOKEN")
    assert_not_leaked(value, formatted(case_error.value), "the ambiguous-case BackendError")

    path = tmp_path / "latin.env"
    path.write_bytes(f"TOKEN={value}\nOTHER=\xe9\n".encode("latin-1"))
    with pytest.raises(BackendError) as decode_error:
        Chain([DotenvSource(path=path)]).resolve("TOKEN")
    assert_not_leaked(value, formatted(decode_error.value), "the decode BackendError")


def test_log_records_at_debug_never_show_the_value(
    planted: Planted, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="authchain")
    chain = planted.chain
    chain.resolve(planted.name)
    chain.resolve(planted.name)  # cached
    chain.resolve_many([planted.name, "ABSENT"], default=None)
    chain.explain(planted.name)
    chain.invalidate(planted.name)
    chain.explain(planted.name)
    with pytest.raises(SecretNotFound):
        chain.resolve("ABSENT")
    chain.resolve("JSON")  # a JSON document holding the value
    if isinstance(planted.source, EnvSource):
        with pytest.raises(BackendError):
            chain.resolve("env://APP_TOKEN#field")  # not JSON: the error path logs too
    assert any(r.levelno == logging.INFO for r in caplog.records), "the winner is logged at INFO"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        assert_not_leaked(planted.value, formatter.format(record), f"a {record.levelname} record")
        assert_not_leaked(planted.value, repr(record.args), f"the args of a {record.levelname} record")


def test_pickles_of_chain_and_sources_never_hold_the_value(planted: Planted) -> None:
    cloudpickle: Any = pytest.importorskip("cloudpickle")
    planted.chain.resolve(planted.name)
    planted.chain.resolve_many([planted.name])
    planted.chain.explain(planted.name)
    for where, obj in {"chain": planted.chain, "source": planted.source}.items():
        assert_not_leaked(planted.value, pickle.dumps(obj), f"pickle of the {where}")
        assert_not_leaked(planted.value, cloudpickle.dumps(obj), f"cloudpickle of the {where}")
