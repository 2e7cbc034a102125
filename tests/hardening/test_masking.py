"""authchain.masking under pressure: every form, every part of a log record, every logger.

What the issue promises: every value resolved in the process (8+ characters)
is replaced by ``***`` in log messages, their arguments and exception text,
also in its base64, URL-encoded and JSON-escaped forms; on the root logger and
on Prefect's loggers once Prefect is imported (without importing Prefect
itself); the registered values cannot be read back from the filter; and
``authchain run`` masks its child's output with the same code.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

import authchain
from authchain import Chain, masking
from authchain.masking import Masker, MaskingFilter
from authchain.testing import MemorySource, canary
from authchain.testing.contract import assert_not_leaked
from tests._waiting import wait_for
from tests.hardening.conftest import make_backend, token

AWKWARD = ' p@ss w/rd&x=1+"q"\\b\u00e9\u2603'

FORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "base64 unpadded": lambda v: base64.b64encode(v.encode()).decode().rstrip("="),
    "urlsafe base64": lambda v: base64.urlsafe_b64encode(v.encode()).decode(),
    "urlsafe base64 unpadded": lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="),
    "url-encoded": lambda v: quote(v, safe=""),
    "url-encoded plus": lambda v: quote_plus(v, safe=""),
    "json-escaped": lambda v: json.dumps(v)[1:-1],
    "json-escaped, unicode kept": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "python repr": lambda v: repr(v)[1:-1],
    "json body shown with %r": lambda v: repr(json.dumps(v)[1:-1])[1:-1],
}


@pytest.fixture
def stream() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger writing to a string, masked by install_log_masking()."""
    authchain.install_log_masking()
    logger = logging.getLogger(f"hardening.masking.{token()}")
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(message)s|%(token)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, output
    logger.removeHandler(handler)


@pytest.mark.parametrize("form", list(FORMS))
def test_every_encoded_form_is_masked(form: str) -> None:
    value = canary() + AWKWARD
    masker = Masker()
    masker.add(value)
    encoded = FORMS[form](value)
    assert masker.mask(f"<{encoded}>") == "<***>", f"the {form} form"
    assert masker.mask_bytes(f"<{encoded}>".encode()) == b"<***>", f"the {form} form, as bytes"


def test_fields_of_a_json_secret_are_masked_on_their_own() -> None:
    user, password = canary("user"), canary("password")
    masker = Masker()
    masker.add(json.dumps({"user": user, "nested": {"list": [password, 5]}}))
    assert masker.mask(f"login {user} with {password}") == "login *** with ***"


def test_minimum_length_is_eight() -> None:
    masker = Masker()
    masker.add("abcdefg")
    masker.add(b"tuvwxyz")
    assert len(masker) == 0
    assert masker.mask("abcdefg tuvwxyz") == "abcdefg tuvwxyz"
    masker.add("stuvwxyz")
    assert masker.mask("a stuvwxyz b") == "a *** b"


def test_registered_values_cannot_be_read_back() -> None:
    """Only keyed digests and prefix fingerprints are kept: no form of the value anywhere."""
    value = canary() + AWKWARD
    masker = Masker()
    masker.add(value)
    masking_filter = MaskingFilter(masker)
    reachable: list[str] = []
    pending: list[Any] = [vars(masker), vars(masking_filter)]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending += list(item)
        elif isinstance(item, (str, bytes)):
            reachable.append(item.decode("latin-1") if isinstance(item, bytes) else item)
        elif hasattr(item, "__slots__"):
            pending += [getattr(item, slot) for slot in item.__slots__ if hasattr(item, slot)]
        else:
            reachable.append(repr(item))
    everything = "\n".join(reachable)
    for form, encode in FORMS.items():
        assert_not_leaked(encode(value), everything, f"the masker's state ({form})")
    for where, text in {"repr(masker)": repr(masker), "repr(filter)": repr(masking_filter)}.items():
        assert_not_leaked(value, text, where)
    for obj in (masker, masking_filter):
        try:
            data = pickle.dumps(obj)
        except Exception:  # noqa: S112 - refusing to pickle is as good
            continue
        for encode in FORMS.values():
            assert_not_leaked(encode(value), data.decode("latin-1"), f"a pickle of {type(obj).__name__}")


def test_message_args_extra_exception_and_stack_are_masked(
    stream: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, output = stream
    value = canary()
    masking.register(value)
    encoded = base64.b64encode(value.encode()).decode()
    logger.info("plain %s", value, extra={"token": "-"})
    logger.info(f"inline {value}", extra={"token": "-"})
    logger.info("unused args", {"token": value}, extra={"token": "-"})
    logger.info("extra field", extra={"token": value})
    logger.info("nested %s", {"deep": [encoded]}, extra={"token": "-"})
    try:
        raise RuntimeError(f"failed with {json.dumps({'password': value})}")
    except RuntimeError:
        logger.exception("caught", extra={"token": "-"})
    logger.info("stack", stack_info=True, extra={"token": value})
    text = output.getvalue()
    assert text.count("***") >= 6
    for form in ("raw", "base64", "json-escaped"):
        assert_not_leaked(FORMS[form](value), text, f"the log output ({form})")


def test_a_record_whose_args_hold_the_value_keeps_them_masked_for_structured_handlers() -> None:
    authchain.install_log_masking()
    value = canary()
    masking.register(value)
    seen: list[logging.LogRecord] = []

    class Structured(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger(f"hardening.structured.{token()}")
    handler = Structured()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("user %(name)s", {"name": "alice", "ignored": value})
        logger.warning("broken %s %s", value)  # a format error: logging prints msg and args
    finally:
        logger.removeHandler(handler)
    structured, broken = seen
    assert_not_leaked(value, repr(structured.args), "record.args")
    assert structured.getMessage() == "user alice"
    assert_not_leaked(value, repr(broken.args), "the args of a record whose format is broken")


def test_install_attaches_to_root_and_prefect_handlers(prefect_api: Any) -> None:
    import prefect  # noqa: F401 - imported: install must now reach Prefect's loggers

    authchain.install_log_masking()
    loggers = [logging.getLogger()] + [
        known
        for name, known in logging.root.manager.loggerDict.items()
        if isinstance(known, logging.Logger) and (name == "prefect" or name.startswith("prefect."))
    ]
    handlers = [handler for logger in loggers for handler in logger.handlers]
    assert handlers, "there are handlers to check"
    missing = [repr(h) for h in handlers if not any(isinstance(f, MaskingFilter) for f in h.filters)]
    assert missing == []


def test_install_does_not_import_prefect(tmp_path: Path) -> None:
    code = (
        "import sys, authchain; authchain.install_log_masking(); "
        "print(sorted(m for m in ('prefect', 'boto3', 'hvac', 'google.cloud') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "[]"


def test_prefect_run_logs_reach_the_api_masked(prefect_api: Any) -> None:
    from prefect import flow, get_run_logger
    from prefect.logging.handlers import APILogHandler

    authchain.install_log_masking()
    value = canary()
    chain = Chain([MemorySource({"TOKEN": value})])
    marker = f"marker-{token()}"

    @flow(name="hardening-masked-logs")
    def leaky() -> None:
        logger = get_run_logger()
        secret = chain.resolve("TOKEN").get_secret_value()
        logger.info("%s plain %s", marker, secret)
        logger.info(f"{marker} inline {secret} {base64.b64encode(secret.encode()).decode()}")
        try:
            raise RuntimeError(f"boom {secret}")
        except RuntimeError:
            logger.exception("%s failed", marker)

    leaky()
    APILogHandler().flush()
    messages = wait_for(
        lambda: [
            str(row[0])
            for row in prefect_api.rows("SELECT message FROM log WHERE message LIKE ?", (f"%{marker}%",))
        ],
        until=lambda found: len(found) >= 3,
        what="the flow's 3 log lines in the API's log table",
    )
    for message in messages:
        assert "***" in message
        for form in ("raw", "base64"):
            assert_not_leaked(FORMS[form](value), message, f"a log line stored by Prefect ({form})")


def test_run_masks_the_childs_output_with_the_process_masker(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The child prints the bootstrap credential (the Vault token the chain resolved for itself):
    ``run`` masks it too, because it masks with the same process-wide masker as logging."""
    from authchain.cli import main

    backend = make_backend("vault", request)
    openbao = backend.extras["server"]
    bootstrap = canary("token")
    openbao.client().auth.token.create(id=bootstrap, policies=["reader"], ttl="10m")
    value = canary()
    backend.put("TOKEN", value)
    config = tmp_path / "authchain.toml"
    config.write_text(
        f'[sources.vault]\ntype = "vault"\nurl = "{openbao.url}"\ntoken = "HARDEN_BOOT"\n'
        '[sources.env]\ntype = "env"\n'
    )
    monkeypatch.setenv("HARDEN_BOOT", bootstrap)
    monkeypatch.setenv("HARDEN_SECRET", str(backend.reference and backend.reference("TOKEN")))
    child = (
        "import os, base64; v = os.environ['HARDEN_SECRET']; b = os.environ['HARDEN_BOOT']; "
        "print(v, base64.b64encode(v.encode()).decode(), b, base64.b64encode(b.encode()).decode())"
    )
    assert main(["--config", str(config), "run", "--", sys.executable, "-c", child]) == 0
    output = capsys.readouterr()
    for secret in (value, bootstrap):
        assert_not_leaked(secret, output.out + output.err, "the output of `authchain run`")
    assert output.out.split() == ["***"] * 4


def test_masking_a_megabyte_finds_the_value_at_its_end() -> None:
    # How fast is measured in benchmarks/ (against a baseline in the same run), not here.
    masker = Masker()
    for _ in range(200):
        masker.add(canary())
    value = canary()
    masker.add(value)
    text = ("x" * 1000 + "\n") * 1000 + value
    masked = masker.mask(text)
    assert masked == text[: -len(value)] + "***"
