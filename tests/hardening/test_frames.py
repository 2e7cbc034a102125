"""No frame of a raised error holds a plain value (issue 13, item 15).

Error reporters show every frame's local variables (Sentry, rich, ``pytest
--showlocals``); :func:`assert_frames_clean` formats each error the way they
do, ``traceback.TracebackException(..., capture_locals=True)``, walks the
whole ``__cause__``/``__context__`` chain and looks for the planted value in
every frame's locals and in every message, raw and encoded (base64 at three
offsets, URL-safe base64, percent-encoding, JSON escapes, hex).

Frames of this test file are skipped: they are the caller's, which holds
what it passed in (the library can only answer for its own frames and the
ones below them).
"""

from __future__ import annotations

import base64
import json
import secrets
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authchain import Chain, SecretRef
from authchain.backends.env.source import EnvSource
from authchain.errors import AuthChainError, ConfigError
from authchain.testing import MemorySource
from authchain.values import SecretValue
from tests.hardening.conftest import Backend, make_backend

pytestmark = pytest.mark.timeout(120)

HERE = str(Path(__file__).resolve())


def fresh() -> str:
    return f"frame-canary-{secrets.token_hex(12)}"


def forms(value: str) -> dict[str, str]:
    """The value and the encodings a reporter or a log could show it in."""
    raw = value.encode()
    shown = {
        "raw": value,
        "percent-encoded": urllib.parse.quote(value, safe=""),
        "JSON-escaped": json.dumps(value)[1:-1],
        "hex": raw.hex(),
        "urlsafe base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    for offset in range(3):  # the value at any alignment inside a larger base64 blob
        encoded = base64.b64encode(b"x" * offset + raw).decode()
        first = -(-offset // 3) * 3  # the first 3-byte group made of the value's bytes only
        last = (offset + len(raw)) // 3 * 3
        shown[f"base64 (offset {offset})"] = encoded[first // 3 * 4 : last // 3 * 4]
    return shown


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        yield current
        pending += [current.__cause__, current.__context__]


def frame_texts(error: BaseException) -> Iterator[tuple[str, str]]:
    """(where, text) for every message and every captured local, outside this file."""
    for number, item in enumerate(exception_chain(error)):
        label = f"{type(item).__name__} #{number} of the chain"
        yield f"str() of {label}", str(item)
        yield f"repr() of {label}", repr(item)
        summary = traceback.TracebackException(type(item), item, item.__traceback__, capture_locals=True)
        for frame in summary.stack:
            if frame.filename == HERE:
                continue
            for name, shown in (frame.locals or {}).items():
                yield f"local {name!r} of {frame.name} ({Path(frame.filename).name}) in {label}", shown
        yield f"formatted {label}", "".join(line for line in summary.format_exception_only())


def assert_frames_clean(value: str, error: BaseException) -> None:
    """No frame of ``error`` (or of an error behind it) and no message holds ``value``."""
    encoded = forms(value)
    for where, text in frame_texts(error):
        for form, needle in encoded.items():
            if needle and needle in text:
                pytest.fail(f"the planted value ({form}) is in the {where}", pytrace=False)


def raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except Exception as error:  # whatever it is, it must be clean
        return error
    pytest.fail("expected an error", pytrace=False)


# -- the helper itself can fail ----------------------------------------------------------------


def test_the_check_finds_a_value_held_in_a_frame() -> None:
    value = fresh()

    def holds(secret: str) -> None:
        parsed = {"password": secret}
        raise ValueError(f"bad document with {len(parsed)} keys")

    import types

    # Compiled under another file name: this file's frames are skipped on purpose.
    namespace: dict[str, Any] = {}
    code = compile("def call(f, v):\n    f(v)\n", "elsewhere.py", "exec")
    exec(code, namespace)  # noqa: S102 - our own two lines
    holder = types.FunctionType(holds.__code__.replace(co_filename="elsewhere.py"), globals())
    error = raised(lambda: namespace["call"](holder, value))
    with pytest.raises(pytest.fail.Exception, match=r"the planted value \(raw\) is in the local"):
        assert_frames_clean(value, error)
    for form, needle in forms(value).items():
        assert needle, form


# -- SecretValue ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        '["{v}"]',  # JSON, not an object
        '"{v}"',
        '{{"user": "{v}"',  # not JSON
        "{v}",
    ],
)
def test_secret_value_json_and_fields_errors_hold_no_value(document: str) -> None:
    value = fresh()
    secret = SecretValue(document.format(v=value))
    for call in (secret.fields, secret.json):
        try:
            call()
        except ValueError as error:
            assert_frames_clean(value, error)


# -- credential documents -------------------------------------------------------------------------

AWS_DOCUMENTS = [
    {"ACCESS_KEY": "{v}"},  # lacks the secret key
    {"ACCESS_KEY": "{v}", "SECRET_ACCESS_KEY": 5},  # wrong type
    {"ACCESS_KEY": "{v}", "SECRET_ACCESS_KEY": "{v}", "Color": "{v}"},  # unknown key
    {"ACCESS_KEY": "{v}", "aws_access_key_id": "{v}", "SECRET_ACCESS_KEY": "{v}"},  # twice
    {"ACCESS_KEY": "{v}", "SECRET_ACCESS_KEY": "{v}", "Expiration": "{v}"},  # bad expiry
    ["{v}"],
]


def _filled(document: Any, value: str) -> Any:
    if isinstance(document, str):
        return document.format(v=value)
    if isinstance(document, list):
        return [_filled(item, value) for item in document]
    if isinstance(document, dict):
        return {key: _filled(item, value) for key, item in document.items()}
    return document


def empty_chain() -> Chain:
    return Chain([EnvSource(environ={}, name="empty")], cache_ttl=0)


@pytest.mark.parametrize("document", AWS_DOCUMENTS, ids=lambda d: json.dumps(d)[:40])
def test_parse_aws_credentials_errors_hold_no_value(document: Any) -> None:
    from authchain.backends.aws.source import parse_aws_credentials

    value = fresh()
    secret = SecretValue(json.dumps(_filled(document, value)))
    error = raised(lambda: parse_aws_credentials(secret, "the test credentials"))
    assert isinstance(error, ConfigError)
    assert_frames_clean(value, error)


@pytest.mark.parametrize("document", AWS_DOCUMENTS, ids=lambda d: json.dumps(d)[:40])
def test_aws_session_with_a_malformed_document_holds_no_value(document: Any) -> None:
    pytest.importorskip("boto3")
    from authchain.clients import aws_session

    value = fresh()
    explicit = SecretValue(json.dumps(_filled(document, value)))
    error = raised(lambda: aws_session(explicit, chain=empty_chain()))
    assert isinstance(error, ConfigError)
    assert_frames_clean(value, error)
    named = Chain([EnvSource(environ={"AWS_CREDS": explicit.get_secret_value()}, name="env")], cache_ttl=0)
    error = raised(lambda: aws_session(credential_name="AWS_CREDS", chain=named))
    assert isinstance(error, ConfigError)
    assert_frames_clean(value, error)


@pytest.mark.parametrize(
    "document",
    [
        {"type": "service_account", "private_key": "{v}", "client_email": "a@b.c", "token_uri": "{v}"},
        {"type": "service_account", "private_key": "{v}"},  # missing fields
        {"type": "authorized_user", "refresh_token": "{v}"},  # not a service account
        ["{v}"],
    ],
    ids=["bad-key", "missing-fields", "other-type", "array"],
)
def test_gcp_credentials_from_a_malformed_key_hold_no_value(document: Any) -> None:
    pytest.importorskip("google.oauth2")
    from authchain.clients import gcp_credentials

    value = fresh()
    named = Chain(
        [EnvSource(environ={"GCP_KEY": json.dumps(_filled(document, value))}, name="env")], cache_ttl=0
    )
    error = raised(lambda: gcp_credentials(credential_name="GCP_KEY", chain=named))
    assert isinstance(error, ConfigError)
    assert_frames_clean(value, error)


def test_vault_client_with_undecodable_explicit_bytes_holds_no_value() -> None:
    from authchain.clients import vault_client

    value = fresh()
    token = b"\xff\xfe" + value.encode()
    chain = empty_chain()
    error = raised(lambda: vault_client(url="http://127.0.0.1:9", token=token, chain=chain).read)
    assert_frames_clean(value, error)


# -- #field picks through the chain, on every kind of source --------------------------------------

PICKS = [
    ('["{v}"]', "field"),  # JSON but not an object
    ('{{"other": "{v}"', "field"),  # not JSON
    ('{{"other": "{v}"}}', "field"),  # no such field: not found
    ('{{"field": ["{v}", 1]}}', "missing"),
]


@pytest.fixture(params=["env", "dotenv", "memory", "aws-sm", "gcp-sm"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        memory = MemorySource(name="memory")
        return Backend("memory", memory, put=memory.set, calls=lambda name: 0)
    return make_backend(request.param, request)


def _pick_reference(backend: Backend, name: str, field: str) -> SecretRef:
    if backend.kind == "memory":
        return SecretRef.parse(f"memory://{name}#{field}")
    assert backend.reference is not None
    text = backend.reference(name)
    return SecretRef.parse(f"{text.partition('#')[0]}#{field}")


@pytest.mark.parametrize(("document", "field"), PICKS)
def test_bad_field_picks_hold_no_value(backend: Backend, document: str, field: str) -> None:
    value = fresh()
    backend.put("DOC", document.format(v=value))
    with backend.chain(cache_ttl=0) as chain:
        ref = _pick_reference(backend, "DOC", field)
        error = raised(lambda: chain.resolve(ref))
        assert isinstance(error, AuthChainError)
        assert_frames_clean(value, error)
        explanation = chain.explain(ref)
        for form, needle in forms(value).items():
            assert needle not in str(explanation), f"explain shows the value ({form})"


def test_vault_missing_field_and_bad_credentials_hold_no_value(request: pytest.FixtureRequest) -> None:
    backend = make_backend("vault", request)
    value = fresh()
    backend.put("DOC", value)
    assert backend.reference is not None
    with backend.chain(cache_ttl=0) as chain:
        ref = SecretRef.parse(backend.reference("DOC").partition("#")[0] + "#absent")
        error = raised(lambda: chain.resolve(ref))
        assert_frames_clean(value, error)
    # A credential document read from Vault for another client, malformed.
    pytest.importorskip("boto3")
    from authchain.clients import aws_session

    backend.put("AWS_DOC", json.dumps({"ACCESS_KEY": value, "SECRET_ACCESS_KEY": 7}))
    with backend.chain(cache_ttl=0) as chain:
        error = raised(lambda: aws_session(credential_name=backend.reference("AWS_DOC"), chain=chain))  # type: ignore[misc]
        assert isinstance(error, ConfigError)
        assert_frames_clean(value, error)


# -- text passed where a reference or a name was expected -----------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{v}",
        "env://{v}!",
        "vault://admin:{v}@cache",
        "vault://secret/a?version={v}",
        "nope-{v}://x",
        "env://A#{v}&",
    ],
)
def test_reference_errors_hold_no_value(template: str) -> None:
    value = fresh()
    error = raised(lambda: SecretRef.parse(template.format(v=value)))
    assert isinstance(error, ConfigError)
    assert_frames_clean(value, error)


def test_config_errors_hold_no_value_from_the_file_or_the_environment(tmp_path: Path) -> None:
    from authchain.config import load_settings

    value = fresh()
    environ = {"HOLDS_IT": value, "AUTHCHAIN_CONFIG": str(tmp_path / "authchain.toml")}
    for body in (
        f'[secrets]\nP = "env://{value}!"\n',
        '[secrets]\nP = "${HOLDS_IT}"\n',
        '[secrets]\nP = "env://${HOLDS_IT}!"\n',
        f'[sources.v]\ntype = "vault"\ntoken = "{value}"\n',
        f'[clients.vault]\nrole_id = "{value}"\n',
        '[sources.e]\ntype = "env"\nprefix = 5\n',  # an error with the environment in scope
    ):
        (tmp_path / "authchain.toml").write_text(body, encoding="utf-8")
        error = raised(lambda: load_settings(environ=environ, cwd=tmp_path))
        assert isinstance(error, ConfigError)
        assert_frames_clean(value, error)


def test_run_refusing_a_value_holds_no_value() -> None:
    from authchain._run import _as_text

    value = fresh()
    for secret in (SecretValue(value + "\x00"), SecretValue(b"\xff" + value.encode())):
        error = raised(lambda secret=secret: _as_text(secret, "NAME"))  # type: ignore[misc]
        assert isinstance(error, ConfigError)
        assert_frames_clean(value, error)


# -- a source's own read path, called directly or through the chain -------------------------------


def test_a_dotenv_file_that_is_not_text_holds_no_value(tmp_path: Path) -> None:
    from authchain.backends.dotenv.source import DotenvSource

    value = fresh()
    path = tmp_path / ".env"
    path.write_bytes(f"TOKEN={value}\n".encode() + b"BROKEN=\xff\xfe\n")
    source = DotenvSource(path=path, name="dotenv")
    error = raised(lambda: source.get(source.key_for("TOKEN")))
    assert isinstance(error, AuthChainError)
    assert_frames_clean(value, error)
    with Chain([source], cache_ttl=0) as chain:
        error = raised(lambda: chain.resolve("TOKEN"))
        assert_frames_clean(value, error)


def test_any_source_that_raises_while_holding_a_value_holds_none_after(tmp_path: Path) -> None:
    """A plugin source (not written with this in mind) parsing a response and raising."""
    from authchain.errors import BackendError
    from authchain.sources.base import Found, Key, NotFound, Source

    value = fresh()

    class Careless(Source):
        type = "careless"

        def key_for(self, name: str) -> Key:
            return name

        def get(self, key: Key) -> Found | NotFound:
            response = {"data": [value, "and more"]}
            if not isinstance(response["data"], dict):
                raise BackendError("the answer is not a KV secret")
            return NotFound("never")

        def get_many(self, keys: Any) -> Any:
            body = json.loads(json.dumps({"values": [value]}))
            raise KeyError(len(body))

    source = Careless(name="careless")
    for call in (lambda: source.get("X"), lambda: source.get_many(["X"])):
        error = raised(call)
        assert_frames_clean(value, error)
    with Chain([source], cache_ttl=0) as chain:
        error = raised(lambda: chain.resolve("X"))
        assert isinstance(error, BackendError)
        assert_frames_clean(value, error)


def test_a_secret_value_of_the_wrong_type_holds_no_value() -> None:
    value = fresh()
    error = raised(lambda: SecretValue({"password": value}))  # type: ignore[arg-type]
    assert isinstance(error, TypeError)
    assert_frames_clean(value, error)
