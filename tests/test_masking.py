"""authchain.masking: the Masker, the logging filter and install_log_masking."""

from __future__ import annotations

import base64
import io
import json
import logging
import pickle
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import quote, quote_plus

import pytest

from authchain import Chain, SecretValue, install_log_masking, masking
from authchain.masking import Masker, MaskingFilter
from authchain.testing import MemorySource, canary
from authchain.testing.contract import assert_not_leaked

# Characters that change under URL-encoding, JSON escaping and base64.
AWKWARD = 'p@ss w/rd&x=1+"quoted"\\back\nline'


def awkward() -> str:
    return f"{canary()}-{AWKWARD}"


@pytest.fixture
def stream_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger with one stream handler, not propagating to caplog or root."""
    logger = logging.getLogger(f"authchain.tests.masking.{uuid.uuid4().hex}")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_masks_the_raw_value() -> None:
    value = canary()
    masker = Masker()
    masker.add(value)
    assert masker.mask(f"token={value}; again {value}") == "token=***; again ***"


@pytest.mark.parametrize(
    ("form", "encode"),
    [
        ("raw", lambda v: v),
        ("base64", lambda v: base64.b64encode(v.encode()).decode()),
        ("base64 unpadded", lambda v: base64.b64encode(v.encode()).decode().rstrip("=")),
        ("urlsafe base64", lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("=")),
        ("url-encoded", lambda v: quote(v, safe="")),
        ("url-encoded plus", lambda v: quote_plus(v, safe="")),
        ("json-escaped", lambda v: json.dumps(v)[1:-1]),
    ],
)
def test_masks_encoded_forms(form: str, encode: Callable[[str], str]) -> None:
    value = awkward()
    encoded = encode(value)
    assert encoded != value or form == "raw"
    masker = Masker()
    masker.add(value)
    masked = masker.mask(f"before {encoded} after")
    assert masked == "before *** after", f"the {form} form was not masked"


def test_masks_a_value_inside_a_json_document() -> None:
    value = awkward()
    masker = Masker()
    masker.add(value)
    document = json.dumps({"password": value, "user": "app"})
    masked = masker.mask(document)
    assert_not_leaked(value, masked, "a masked JSON document")
    assert json.loads(masked) == {"password": "***", "user": "app"}


def test_values_shorter_than_eight_characters_are_ignored() -> None:
    masker = Masker()
    masker.add("abcdefg")
    assert len(masker) == 0
    assert masker.mask("abcdefg and abcdefgh") == "abcdefg and abcdefgh"
    masker.add("abcdefgh")
    assert masker.mask("abcdefg and abcdefgh") == "abcdefg and ***"


def test_min_length_is_configurable() -> None:
    masker = Masker(min_length=8)
    masker.add("short-1")
    assert len(masker) == 0
    masker.add("long-enough")
    assert masker.mask("long-enough") == "***"


def test_longest_value_wins_when_values_overlap() -> None:
    masker = Masker()
    masker.add("secret-1")
    masker.add("secret-1-and-more")
    assert masker.mask("x secret-1-and-more y secret-1 z") == "x *** y *** z"


def test_secret_value_and_bytes_are_accepted() -> None:
    text, raw = canary(), canary().encode()
    masker = Masker()
    masker.add(SecretValue(text))
    masker.add(raw)
    assert masker.mask(f"{text} {raw.decode()}") == "*** ***"
    assert masker.mask_bytes(b"[" + raw + b"] [" + text.encode() + b"]") == b"[***] [***]"


def test_empty_masker_returns_text_unchanged() -> None:
    assert Masker().mask("nothing to hide") == "nothing to hide"
    assert Masker().mask_bytes(b"nothing") == b"nothing"


def test_adding_the_same_value_twice_changes_nothing() -> None:
    value = canary()
    masker = Masker()
    masker.add(value)
    size = len(masker)
    masker.add(value)
    assert len(masker) == size


def test_repr_shows_a_count_not_values() -> None:
    value = awkward()
    masker = Masker()
    masker.add(value)
    text = repr(masker)
    assert text == f"<Masker: {len(masker)} masked forms>"
    assert_not_leaked(value, text, "repr(Masker)")
    assert_not_leaked(value, str(vars(masker)), "vars(Masker)")


def test_pickle_carries_no_values() -> None:
    value = canary()
    masker = Masker(min_length=6)
    masker.add(value)
    data = pickle.dumps(masker)
    assert_not_leaked(value, data, "a pickled Masker")
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    assert len(clone) == 0
    clone.add("12345")
    assert len(clone) == 0, "min_length survives pickling"


def test_filter_masks_message_and_args(stream_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = stream_logger
    value = canary()
    masker = Masker()
    masker.add(value)
    logger.handlers[0].addFilter(MaskingFilter(masker))
    logger.info("connecting with %s to %s", value, "db.example")
    logger.info(f"inline {value}")
    logger.info("dict arg %(token)s", {"token": value})
    logger.info("nothing secret here: %d", 42)
    assert stream.getvalue().splitlines() == [
        "INFO connecting with *** to db.example",
        "INFO inline ***",
        "INFO dict arg ***",
        "INFO nothing secret here: 42",
    ]


def test_a_value_used_as_a_dict_key_is_masked_in_args_and_extra_fields() -> None:
    value = canary()
    masker = Masker()
    masker.add(value)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "seen %s", ({value: 1},), None)
    record.fields = {value: "x", "plain": "y"}
    masking.mask_record(record, masker)
    shown = f"{record.getMessage()} {record.fields!r} {record.args!r}"
    assert_not_leaked(value, shown, "a dict key in a log record")
    assert record.fields == {"***": "x", "plain": "y"}


def test_filter_masks_exception_text(stream_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = stream_logger
    value = canary()
    masker = Masker()
    masker.add(value)
    logger.handlers[0].addFilter(MaskingFilter(masker))
    try:
        raise ValueError(f"bad credentials {value}")
    except ValueError:
        logger.exception("lookup failed")
    output = stream.getvalue()
    assert "ValueError: bad credentials ***" in output
    assert_not_leaked(value, output, "a logged traceback")


def test_install_log_masking_attaches_to_every_handler_once(
    stream_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = stream_logger
    second = logging.StreamHandler(io.StringIO())
    logger.addHandler(second)
    try:
        value = canary()
        masking.register(value)
        installed = install_log_masking(logger)
        install_log_masking(logger)
        for handler in logger.handlers:
            filters = [f for f in handler.filters if isinstance(f, MaskingFilter)]
            # Exactly one per handler (the property). Which instance is not asserted:
            # install_log_masking returns a new MaskingFilter and attaches it only to handlers
            # that have none, so a handler that got one earlier in the run keeps that one.
            assert len(filters) == 1, "one masking filter per handler"
            assert filters[0].masker is installed.masker
        logger.warning("[%s]", value)
        assert stream.getvalue() == "WARNING [***]\n"
    finally:
        logger.removeHandler(second)


def test_values_resolved_by_a_chain_are_masked_in_logs(
    stream_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = stream_logger
    value = canary()
    install_log_masking(logger)
    resolved = Chain([MemorySource({"TOKEN": value})]).resolve("TOKEN")
    # The default masker is process-wide, so the surrounding text is kept to
    # brackets: a word another test resolved could be masked too.
    logger.info("[%s]", resolved.get_secret_value())
    logger.info("[%s]", base64.b64encode(value.encode()).decode())
    assert stream.getvalue().splitlines() == ["INFO [***]", "INFO [***]"]


def test_short_resolved_values_are_not_registered(stream_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = stream_logger
    install_log_masking(logger)
    Chain([MemorySource({"FLAG": "on"})]).resolve("FLAG")
    logger.info("[on]")
    assert stream.getvalue() == "INFO [on]\n"
