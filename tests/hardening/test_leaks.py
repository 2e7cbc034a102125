"""Leak hunt: one canary per test, searched everywhere a value must never appear.

Each test plants one fresh canary (``authchain.testing.canary()``) in a real
backend (OpenBao, moto, the gRPC GCP fake, a file keyring, Prefect's API, the
environment, a ``.env`` file), resolves it, and then searches: ``repr``/
``str``/``format`` of every public object; every exception the library raises,
with its whole ``__cause__``/``__context__`` chain, each exception's
attributes (SDK errors carry requests, headers and bodies) and its printed
traceback; ``explain``; the CLI's stdout and stderr for every command
without ``--reveal``, ``--debug`` tracebacks included; every log record at
DEBUG with boto3/botocore/hvac/urllib3/grpc/google debug logging on; and
pickles of chains, sources and Secret tasks after use. ``assert_not_leaked``
names the place, never the value.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import pickle
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import authchain
from authchain import BackendError, Chain, SecretNotFound, SecretRef, SecretValue, masking
from authchain.errors import AuthChainError
from authchain.sources.base import Found
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.hardening.conftest import BACKENDS, Backend, make_backend, token

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return make_backend(request.param, request)


# -- searching --------------------------------------------------------------------------


def _texts(value: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[str]:
    """Every string reachable from ``value`` through containers and object attributes."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 12:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("latin-1")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key, depth + 1, seen)
            yield from _texts(item, depth + 1, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _texts(item, depth + 1, seen)
    elif hasattr(value, "__dict__") and not isinstance(value, type) and not callable(value):
        yield from _texts(vars(value), depth + 1, seen)


def exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is known for known in chain):
            continue
        chain.append(current)
        pending += [current.__cause__, current.__context__]  # type: ignore[list-item]
    return chain


def assert_exception_clean(value: str, error: BaseException, where: str) -> None:
    """The error, every exception behind it, their attributes, the traceback and a pickle."""
    for number, item in enumerate(exception_chain(error)):
        label = f"{where}: {type(item).__name__} #{number} in the exception chain"
        assert_not_leaked(value, str(item), f"str() of {label}")
        assert_not_leaked(value, repr(item), f"repr() of {label}")
        assert_not_leaked(value, repr(item.args), f"args of {label}")
        assert_not_leaked(value, "\n".join(_texts(vars(item))), f"attributes of {label}")
    assert_not_leaked(value, "".join(traceback.format_exception(error)), f"{where}: printed traceback")
    try:
        data = pickle.dumps(error)
    except Exception:
        assert not isinstance(error, AuthChainError), "authchain's errors pickle"
    else:
        assert_not_leaked(value, data, f"{where}: pickled error")


def encoded_forms(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "raw": value,
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "urlsafe base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "JSON-escaped": json.dumps(value)[1:-1],
    }


def assert_no_form_leaked(value: str, text: str, where: str) -> None:
    """The value in ``text`` raw or in an encoded form (the masker's promise)."""
    for form, encoded in encoded_forms(value).items():
        assert_not_leaked(encoded, text, f"{where} ({form})")


def assert_shown_clean(value: str, obj: Any, where: str) -> None:
    for how, text in {
        "str": str(obj),
        "repr": repr(obj),
        "format": format(obj, ""),
        "f-string": f"{obj!s:>20} {obj!r}",
    }.items():
        assert_not_leaked(value, text, f"{how} of {where}")


def resolved_through(backend: Backend, value: str, **options: Any) -> Chain:
    """Plant ``value`` as TOKEN, resolve it once (registering it), return the chain."""
    backend.put("TOKEN", value)
    chain = backend.chain(**options)
    assert chain.resolve("TOKEN").get_secret_value() == value
    return chain


# -- repr / str / format of every public object -------------------------------------------


def test_public_objects_never_show_the_value(backend: Backend) -> None:
    from secret_tasks import ChainSecret

    value = canary()
    chain = resolved_through(backend, value)
    resolved = chain.resolve("TOKEN")  # from the cache
    many = chain.resolve_many(["TOKEN"])
    explanation = chain.explain("TOKEN")
    found = backend.source.get(backend.source.key_for("TOKEN"))
    assert isinstance(found, Found)
    task = ChainSecret("TOKEN", chain=chain)
    assert task.run() == resolved
    objects: dict[str, Any] = {
        "SecretValue": resolved,
        "resolve_many's dict": many,
        "Chain": chain,
        "Explanation": explanation,
        "Explanation.as_dict()": explanation.as_dict(),
        "Attempt": explanation.winner,
        "Found": found,
        "chain.check()": chain.check(),
        "the ChainSecret task": task,
        "the default masker": masking.default_masker,
        "a MaskingFilter": masking.MaskingFilter(),
        "SecretValue.fields() of a JSON value": SecretValue(json.dumps({"k": value})).fields(),
    }
    if backend.reference is not None:
        reference = SecretRef.parse(backend.reference("TOKEN"))
        objects["SecretRef"] = reference
        objects["a reference's SecretValue"] = chain.resolve(reference)
    for source in chain.sources:
        objects[f"source {source.name}"] = source
        objects[f"settings of {source.name}"] = source.settings()
    for where, obj in objects.items():
        assert_shown_clean(value, obj, where)
    assert_not_leaked(value, json.dumps(explanation.as_dict()), "explain --json data")


# -- exceptions -------------------------------------------------------------------------------


def test_errors_after_a_lookup_never_show_the_value(backend: Backend) -> None:
    value = canary()
    chain = resolved_through(backend, value, cache_ttl=0, retries=0)
    with pytest.raises(SecretNotFound) as missing:
        chain.resolve("ABSENT")
    assert_exception_clean(value, missing.value, "SecretNotFound")
    with pytest.raises(SecretNotFound) as many:
        chain.resolve_many(["TOKEN", "ABSENT"])
    assert_exception_clean(value, many.value, "SecretNotFound from resolve_many")
    if backend.reference is not None and backend.kind not in ("vault", "dotenv"):
        with pytest.raises(BackendError, match="not valid JSON") as not_json:
            chain.resolve(backend.reference("TOKEN") + "#field")
        assert_exception_clean(value, not_json.value, "a #field of a value that is not JSON")
        text = str(chain.explain(backend.reference("TOKEN") + "#field"))
        assert_not_leaked(value, text, "explain of a #field that cannot be read")


def _echoing_fault(backend: Backend, request: pytest.FixtureRequest, value: str) -> Chain:
    """Make the backend answer an error whose text repeats ``value`` (after it was resolved)."""
    if backend.kind == "vault":
        from tests.servers.openbao import OpenBao

        openbao: OpenBao = backend.extras["server"]
        host, port = openbao.url.removeprefix("http://").split(":")
        proxy = request.getfixturevalue("tcp_proxy")((host, int(port)))
        echo = make_backend("vault", request, url=proxy.url)
        echo.put("TOKEN", value)
        chain = echo.chain(cache_ttl=0, retries=1)
        assert chain.resolve("TOKEN").get_secret_value() == value
        body = json.dumps({"errors": [f"storage failure while reading {value}"]}).encode()
        proxy.fail("respond", status=500, body=body, headers={"Content-Type": "application/json"})
        return chain
    chain = resolved_through(backend, value, cache_ttl=0, retries=1)
    if backend.kind in ("aws-sm", "aws-ssm"):
        body = json.dumps({"__type": "InternalFailure", "message": f"Value '{value}' failed"}).encode()
        backend.extras["proxy"].fail(
            "respond", status=500, body=body, headers={"Content-Type": "application/x-amz-json-1.1"}
        )
    elif backend.kind == "gcp-sm":
        import grpc

        backend.extras["fake"].fail("*", grpc.StatusCode.UNAVAILABLE, message=f"backend said {value}")
    elif backend.kind == "keyring":
        import keyring.errors

        class Failing:  # a fault a file keyring cannot be made to show
            def get_password(self, service: str, username: str) -> str:
                raise keyring.errors.KeyringError(f"cannot decrypt {value} for {username}")

        backend.source._keyring = Failing()  # type: ignore[attr-defined]
    else:
        raise AssertionError(f"{backend.kind} has no server that can be told to echo a value")
    return chain


# prefect, env and dotenv have no server that can be told to echo a value.
@pytest.mark.parametrize("backend", ["vault", "aws-sm", "aws-ssm", "gcp-sm", "keyring"], indirect=True)
def test_backend_errors_echoing_the_value_never_show_it(
    backend: Backend, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    value = canary()
    chain = _echoing_fault(backend, request, value)
    caplog.set_level(logging.DEBUG, logger="authchain")
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert caught.value.source in {s.name for s in chain.sources}
    assert_exception_clean(value, caught.value, f"the {backend.kind} error")
    explanation = chain.explain("TOKEN")
    assert_not_leaked(value, str(explanation), "explain of a failing source")
    assert_not_leaked(value, json.dumps(explanation.as_dict()), "explain --json of a failing source")
    with pytest.raises(BackendError) as many:
        chain.resolve_many(["TOKEN", "OTHER"])
    assert_exception_clean(value, many.value, f"the {backend.kind} error from resolve_many")
    for record in caplog.records:
        assert_not_leaked(value, logging.Formatter().format(record), f"a {record.levelname} record")


def test_credentials_never_show_in_errors_objects_or_pickles(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The canary is a credential this time: a Vault token and an AWS session token."""
    from tests.servers.openbao import OpenBao

    value = canary("token")
    openbao: OpenBao = request.getfixturevalue("openbao")
    openbao.client().auth.token.create(id=value, policies=["reader"], ttl="10m")
    host, port = openbao.url.removeprefix("http://").split(":")
    proxy = request.getfixturevalue("tcp_proxy")((host, int(port)))
    vault = make_backend("vault", request, url=proxy.url)
    vault.creds = {"VAULT_TOKEN": value}
    aws = make_backend("aws-sm", request)
    aws.creds = {
        "AWS_CREDENTIALS": json.dumps(
            {
                "aws_access_key_id": "AKIAHARDENING0000000",
                "aws_secret_access_key": token(),
                "aws_session_token": value,
            }
        )
    }
    aws.source.credentials = "AWS_CREDENTIALS"  # type: ignore[attr-defined]
    for backend in (vault, aws):
        planted = canary()
        chain = resolved_through(backend, planted, cache_ttl=0, retries=1)
        proxy_of = proxy if backend is vault else backend.extras["proxy"]
        for fault in ("reset", "respond"):
            proxy_of.fail(fault, status=403, body=b'{"errors": ["permission denied"]}')
            with pytest.raises(BackendError) as caught:
                chain.resolve("TOKEN")
            proxy_of.heal()
            assert_exception_clean(value, caught.value, f"{backend.kind} {fault} with a credential")
            assert_not_leaked(value, str(chain.explain("TOKEN")), f"explain after a {fault}")
        for source in chain.sources:
            assert_shown_clean(value, source, f"the {source.name} source holding a credential")
            assert_not_leaked(value, pickle.dumps(source), f"pickle of {source.name} after login")
        assert_not_leaked(value, pickle.dumps(chain), f"pickle of the {backend.kind} chain after login")


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``--debug`` adds a handler to the root logger and lowers its level: undo that."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def cli_project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A config with vault, aws-sm, gcp-sm and env sources; one canary, held by all three stores."""
    from tests.servers.moto_server import REGION

    value = canary()
    vault = make_backend("vault", request)
    aws = make_backend("aws-sm", request)
    gcp = make_backend("gcp-sm", request)
    for backend in (vault, aws, gcp):
        backend.put("TOKEN", value)
    openbao = vault.extras["server"]
    monkeypatch.setenv("HARDEN_VAULT_TOKEN", openbao.tokens["reader"])
    config = tmp_path / "authchain.toml"
    config.write_text(
        f"""
cache_ttl = 60
retries = 0

[sources.vault]
type = "vault"
url = "{openbao.url}"
path_prefix = "{vault.extras["prefix"]}"
token = "HARDEN_VAULT_TOKEN"

[sources.aws]
type = "aws-sm"
region = "{REGION}"
endpoint_url = "{aws.extras["proxy"].url}"
prefix = "{aws.extras["prefix"]}"

[sources.gcp]
type = "gcp-sm"
project = "authchain-test"
endpoint = "{gcp.source.endpoint}"
prefix = "{gcp.extras["prefix"]}"

[sources.env]
type = "env"
""",
        encoding="utf-8",
    )
    return {"config": str(config), "value": value, "vault": vault}


COMMANDS = {
    "resolve": ["resolve", "TOKEN"],
    "resolve --json": ["resolve", "TOKEN", "--json"],
    "resolve a reference": ["resolve", "REFERENCE"],
    "resolve missing": ["resolve", "ABSENT"],
    "resolve denied": ["resolve", "vault://secret/not-readable/x#x"],
    "explain": ["explain", "TOKEN"],
    "explain --json": ["explain", "TOKEN", "--json"],
    "check": ["check"],
    "check --json": ["check", "--json"],
    "config": ["config"],
    "config --json": ["config", "--json"],
    "run": ["run", "--", sys.executable, "-c", "import os; print(os.environ['HARDEN_CHILD'])"],
    "run denied": ["run", "--", sys.executable, "-c", "pass"],
}


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_never_prints_the_value(
    command: str,
    debug: bool,
    cli_project: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    restore_logging: None,
) -> None:
    from authchain.cli import main

    value = cli_project["value"]
    reference = cli_project["vault"].reference("TOKEN")
    monkeypatch.setenv("HARDEN_CHILD", reference)
    if command == "run denied":
        monkeypatch.setenv("HARDEN_CHILD", "vault://secret/not-readable/x#x")
    argv = [arg.replace("REFERENCE", reference) for arg in COMMANDS[command]]
    code = main([*(["--debug"] if debug else []), "--config", cli_project["config"], *argv])
    output = capsys.readouterr()
    expected = {"resolve missing": 1, "resolve denied": 3, "run denied": 3}.get(command, 0)
    # The leak checks first: they fail without showing the value; the others would print it.
    assert_not_leaked(value, output.out, f"stdout of `authchain {command}`")
    assert_not_leaked(value, output.err, f"stderr of `authchain {command}`")
    assert_no_form_leaked(value, output.out + output.err, f"the output of `authchain {command}`")
    assert code == expected, f"exit code of {command}"
    if command == "run":
        assert output.out.strip() == "***", "the child's output is masked"
    if debug and expected:
        assert "Traceback" in output.err


def test_cli_keyring_set_never_echoes_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    pytest.importorskip("keyrings.alt")
    from authchain.cli import main

    value = canary()
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.keyring]\ntype = "keyring"\nbackend = "keyrings.alt.file.PlaintextKeyring"\n')
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO(value + "\n"))
    assert main(["--debug", "--config", str(config), "keyring", "set", "svc", "NAME"]) == 0
    assert (
        main(["--config", str(config), "keyring", "set", "svc", "NAME", value]) == 2
    )  # value on argv: refused
    assert main(["--debug", "--config", str(config), "resolve", "keyring://svc/NAME"]) == 0
    output = capsys.readouterr()
    assert_not_leaked(value, output.out + output.err, "`authchain keyring set` output")


# -- DEBUG logs with the SDKs' debug logging on -----------------------------------------------


def test_debug_logs_of_every_sdk_never_show_the_value(
    backend: Backend, debug_sdk_logging: list[logging.LogRecord]
) -> None:
    authchain.install_log_masking()
    value = canary()
    backend.put("TOKEN", value)
    backend.put("JSON", json.dumps({"password": value}))
    debug_sdk_logging.clear()  # the test's own seeding calls are not the library's
    chain = backend.chain(cache_ttl=0)
    assert chain.resolve("TOKEN").get_secret_value() == value
    assert chain.resolve_many(["TOKEN", "JSON"])["JSON"].json() == {"password": value}
    chain.explain("TOKEN")
    if backend.reference is not None and backend.kind != "dotenv":
        chain.resolve(backend.reference("JSON") + ("" if backend.kind == "vault" else "#password"))
    with pytest.raises(SecretNotFound):
        chain.resolve("ABSENT")
    assert debug_sdk_logging, "debug logging was on"
    if backend.kind in ("aws-sm", "aws-ssm"):
        bodies = [r for r in debug_sdk_logging if r.name == "botocore.parsers"]
        assert bodies, "botocore logged the response bodies (the records this test is about)"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in debug_sdk_logging:
        where = f"a {record.levelname} record of {record.name}"
        assert_no_form_leaked(value, formatter.format(record), where)
        assert_no_form_leaked(value, "\n".join(_texts(vars(record))), f"the attributes of {where}")


def test_records_held_during_a_fetch_are_released_in_order(backend: Backend) -> None:
    """The holding that masks SDK records loses none and keeps their order."""
    authchain.install_log_masking()
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger(f"hardening.sdk.{token()}")
    logger.setLevel(logging.DEBUG)
    handler = Collect()
    logger.addHandler(handler)
    value = canary()
    backend.put("TOKEN", value)
    original = backend.source.get

    def get_and_log(key: Any) -> Any:
        logger.debug("before %s", "the call")
        result = original(key)
        if isinstance(result, Found):
            logger.debug("body %s", result.value.get_secret_value())  # what an SDK's debug log does
        logger.debug("after")
        return result

    backend.source.get = get_and_log  # type: ignore[method-assign]
    try:
        assert backend.chain(cache_ttl=0).resolve("TOKEN").get_secret_value() == value
    finally:
        logger.removeHandler(handler)
    assert_not_leaked(value, "\n".join(seen), "the records held during the fetch")
    assert seen == ["before the call", "body ***", "after"]


# -- pickles -----------------------------------------------------------------------------------


def test_pickles_of_chains_sources_and_tasks_after_use_hold_no_value(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    cloudpickle: Any = pytest.importorskip("cloudpickle")
    from secret_tasks import ChainSecret

    value = canary()
    chain = resolved_through(backend, value)
    chain.resolve_many(["TOKEN"])
    chain.explain("TOKEN")
    tasks: list[Any] = [ChainSecret("TOKEN", chain=chain)]
    task = _backend_task(backend, request)
    if task is not None:
        tasks.append(task)
    for item in tasks:
        assert item.run().get_secret_value() == value
    objects: dict[str, Any] = {"the chain": chain, **{f"source {s.name}": s for s in chain.sources}}
    objects.update({f"task {type(t).__name__}": t for t in tasks})
    for where, obj in objects.items():
        assert_not_leaked(value, pickle.dumps(obj), f"pickle of {where}")
        assert_not_leaked(value, cloudpickle.dumps(obj), f"cloudpickle of {where}")
    if backend.kind in ("aws-sm", "aws-ssm", "gcp-sm", "dotenv"):  # no test seam holding the data
        clone = pickle.loads(pickle.dumps(chain))  # noqa: S301 - our own bytes
        assert clone.resolve("TOKEN").get_secret_value() == value, "a pickled chain works where it lands"


def _backend_task(backend: Backend, request: pytest.FixtureRequest) -> Any:
    """The backend's own Secret task, configured with ``source_options``, reading TOKEN."""
    import secret_tasks as st

    source: Any = backend.source
    if backend.kind == "vault":
        request.getfixturevalue("monkeypatch").setenv("HARDEN_TASK_TOKEN", backend.creds["VAULT_TOKEN"])
        options = {"url": source.url, "token": "env://HARDEN_TASK_TOKEN"}
        return st.VaultSecret(f"{source.path_prefix}/TOKEN", key="TOKEN", source_options=options)
    if backend.kind in ("aws-sm", "aws-ssm"):
        options = {"endpoint_url": source.endpoint_url, "region": source.region}
        if backend.kind == "aws-sm":
            return st.AWSSecretsManagerSecret(f"{source.prefix}TOKEN", source_options=options)
        return st.AWSParameterStoreSecret(f"{source.path_prefix}/TOKEN", source_options=options)
    if backend.kind == "gcp-sm":
        options = {"endpoint": source.endpoint, "project": source.project}
        return st.GCPSecretManagerSecret(
            f"{source.prefix}TOKEN", project=source.project, source_options=options
        )
    return None


def test_values_fetched_but_not_asked_for_are_masked_too(
    request: pytest.FixtureRequest, debug_sdk_logging: list[logging.LogRecord]
) -> None:
    """SSM ``load_path`` reads every parameter under the path: botocore logs all of their
    values, not only the one asked for, so all of them must be known to the masker."""
    authchain.install_log_masking()
    backend = make_backend("aws-ssm", request)
    prefix = backend.extras["prefix"].rstrip("/")
    backend.source.load_path = True  # type: ignore[attr-defined]
    value = canary()
    backend.put("TOKEN", canary("asked-for"))
    backend.put("NEIGHBOUR", value)
    debug_sdk_logging.clear()
    assert backend.chain().resolve("TOKEN")
    assert any(record.name == "botocore.parsers" for record in debug_sdk_logging)
    formatter = logging.Formatter("%(message)s")
    for record in debug_sdk_logging:
        assert_no_form_leaked(value, formatter.format(record), f"a record of {record.name} under {prefix}")
