"""Log masking holds for the whole record, at the point of output, whatever path it took.

Each test plants a fresh canary with the process-wide masker, installs log
masking, and reads what a handler really wrote: the message, ``%r`` of an
object, ``extra`` fields (underscore-prefixed too), values nested deeper than
the walk goes, exception and stack text, and records that never went through
a logger (``logging.makeLogRecord`` handed to a handler created after
``install_log_masking()``: a queue listener, a socket receiver, a handler class
that overrides ``handle``).
"""

from __future__ import annotations

import base64
import io
import logging
import logging.handlers
import pickle
import queue
import socketserver
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import authchain
from authchain import masking
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.hardening.conftest import token

FORMAT = "%(message)s"


class Holder:
    """An object whose ``str()`` is harmless and whose ``repr()`` shows the value."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __str__(self) -> str:
        return "Holder"

    def __repr__(self) -> str:
        return f"Holder(value={self.value!r})"


def nested(value: Any, levels: int) -> Any:
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.fixture
def value() -> str:
    planted = canary("log")
    masking.register(planted)
    authchain.install_log_masking()
    return planted


def writer(fmt: str = FORMAT) -> tuple[logging.Handler, io.StringIO]:
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter(fmt))
    return handler, output


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    made = logging.getLogger(f"hardening.logmask.{token()}")
    made.setLevel(logging.DEBUG)
    # Propagating, so no handler of pytest's is put on it: pytest adds its capture handlers
    # to every non-propagating logger, ahead of the test's own, and install_log_masking()
    # has given them a MaskingFilter that would mask the record in place before the
    # test's handler (the layer under test) ever saw it.
    made.propagate = True
    yield made
    for handler in list(made.handlers):
        made.removeHandler(handler)


def test_message_and_repr_of_an_object_are_masked(value: str, logger: logging.Logger) -> None:
    handler, output = writer()
    logger.addHandler(handler)
    logger.info("message %s", value)
    logger.info("repr %r", Holder(value))
    logger.info("repr in a list %s", [Holder(value)])
    logger.info("%(shown)s", {"shown": "nothing", "hidden": Holder(value)})
    text = output.getvalue()
    assert "message ***" in text
    assert "repr Holder(value='***')" in text
    assert_not_leaked(value, text, "messages")


@pytest.mark.parametrize("fmt", ["%(_token)s", "%(_token)r", "%(obj)r", "%(obj)s", "%(deep)s", "%(deep)r"])
def test_extra_fields_are_masked_underscored_deep_and_by_repr(
    value: str, logger: logging.Logger, fmt: str
) -> None:
    handler, output = writer(f"{FORMAT} {fmt}")
    logger.addHandler(handler)
    logger.info(
        "extra",
        extra={"_token": value, "obj": Holder(value), "deep": nested(value, 20)},
    )
    text = output.getvalue()
    assert text.startswith("extra "), text
    assert_not_leaked(value, text, f"extra shown with {fmt}")


def test_values_nested_deeper_than_the_walk_are_masked_in_args_and_extra(value: str) -> None:
    """Handlers that read record.args or extras directly (JSON, Sentry) see no value."""
    for levels in (7, 8, 9, 10, 40):
        args = ({"a": 1, "b": nested(value, levels)},)
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "%(a)s", args, None)
        record.deep = nested(value, levels)
        record._deep = nested({value: value}, levels)
        masking.mask_record(record)
        shown = f"{record.getMessage()} {record.args!r} {record.deep!r} {record._deep!r}"
        shown += f" {record.deep} {record._deep}"
        assert_not_leaked(value, shown, f"a value {levels} levels deep")


def test_exception_text_its_cause_and_stack_info_are_masked(value: str, logger: logging.Logger) -> None:
    handler, output = writer()
    logger.addHandler(handler)
    try:
        try:
            raise KeyError(value)
        except KeyError as cause:
            error = ValueError(f"Invalid header value b'Bearer {value}'")
            error.add_note(f"note {value}") if hasattr(error, "add_note") else None
            raise error from cause
    except ValueError:
        logger.exception("failed")
        logger.error("again", exc_info=True, stack_info=True)
    secret_in_frame = value  # noqa: F841 - a local that holds the value, on the stack
    logger.info("stack %s", "here", stack_info=True)
    text = output.getvalue()
    assert "Bearer ***" in text
    assert "KeyError" in text
    assert "Stack (most recent call last)" in text
    assert_not_leaked(value, text, "exception and stack text")


def test_a_queue_listener_added_later_writes_masked_records(value: str, logger: logging.Logger) -> None:
    records: queue.Queue[logging.LogRecord] = queue.Queue()
    logger.addHandler(logging.handlers.QueueHandler(records))
    handler, output = writer(f"{FORMAT} %(_token)s")
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    try:
        logger.info("queued %s", value, extra={"_token": value})
        # A record made elsewhere (another process's dict) and queued directly.
        records.put(logging.makeLogRecord({"msg": "made %r", "args": (Holder(value),), "_token": value}))
    finally:
        listener.stop()
    text = output.getvalue()
    assert text.count("\n") == 2
    assert "queued ***" in text
    assert_not_leaked(value, text, "a queue listener's output")


def test_records_from_a_socket_receiver_are_masked(value: str) -> None:
    """logging's SocketHandler pickles a record's dict; the receiver rebuilds it with makeLogRecord."""
    handler, output = writer(f"{FORMAT} %(_token)s")
    received = threading.Event()

    class Receiver(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            size = struct.unpack(">L", self.rfile.read(4))[0]
            record = logging.makeLogRecord(pickle.loads(self.rfile.read(size)))  # noqa: S301 - our own test data
            handler.handle(record)  # the receiving process's handler, made after install
            received.set()

    with socketserver.TCPServer(("127.0.0.1", 0), Receiver) as server:
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        sender = logging.handlers.SocketHandler("127.0.0.1", server.server_address[1])
        # A record from a process that never registered the value (so nothing masked it there).
        record = logging.LogRecord("remote", logging.INFO, __file__, 1, "sent %s", (value,), None)
        record._token = value
        record.__dict__["_authchain_masked"] = (object(), masking.default_masker.generation)
        sender.emit(record)
        sender.close()
        assert received.wait(30), "the receiver must get the record"
        thread.join(30)
    text = output.getvalue()
    assert "sent ***" in text
    assert_not_leaked(value, text, "a socket receiver's output")


def test_a_handler_class_defined_later_that_overrides_handle_masks(value: str) -> None:
    lines: list[str] = []

    class Direct(logging.Handler):
        def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
            self.emit(record)
            return True

        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.getMessage()} {record.__dict__.get('_token')} {record.exc_text}")

    record = logging.makeLogRecord({"msg": "direct %s", "args": (value,), "_token": value, "exc_text": value})
    Direct().handle(record)
    assert lines == ["direct *** *** ***"]


def test_a_value_registered_after_a_record_was_masked_is_masked_at_the_next_handler(
    logger: logging.Logger,
) -> None:
    authchain.install_log_masking()
    late = canary("late")
    first: list[str] = []

    class Registers(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            first.append(record.getMessage())
            masking.register(late)  # e.g. a handler whose own lookup resolves a secret

    handler, output = writer()
    logger.addHandler(Registers())
    logger.addHandler(handler)
    logger.info("late %s", late)
    assert first == [f"late {late}"], "not registered yet when the first handler ran"
    assert output.getvalue() == "late ***\n"


def test_a_record_that_cannot_be_masked_is_withheld(value: str) -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            return f"Broken({value})"

    handler, output = writer(f"{FORMAT} %(obj)r")
    handler.handle(logging.makeLogRecord({"msg": "broken", "obj": Broken()}))
    assert_not_leaked(value, output.getvalue(), "an object whose str() raises")


def test_http_basic_credentials_in_a_debug_log_are_masked(value: str, logger: logging.Logger) -> None:
    """What `curl -v -u user:PW` and urllib3's debug logs print."""
    handler, output = writer()
    logger.addHandler(handler)
    for user in ("u", "us", "usr", "admin"):
        header = base64.b64encode(f"{user}:{value}".encode()).decode()
        logger.debug("> Authorization: Basic %s", header)
    text = output.getvalue()
    assert text.count("***") == 4
    for line in text.splitlines():
        for part in line.rsplit(" ", 1)[1].split("***"):
            for start in range(4):
                piece = part[start:].rstrip("=")
                piece = piece[: len(piece) - len(piece) % 4]
                assert value.encode()[:6] not in base64.b64decode(piece)


def test_adapters_mapping_arguments_and_bytes_are_masked(value: str, logger: logging.Logger) -> None:
    """A ``LoggerAdapter`` that adds the value to the message and to ``extra``, a dict as the
    record's arguments (``%(name)s`` formatting), and ``%s``/``%r`` of bytes, bytearray and
    UTF-16 bytes."""

    class Tagging(logging.LoggerAdapter):  # type: ignore[type-arg]
        def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
            kwargs.setdefault("extra", {})["tag"] = self.extra["tag"]  # type: ignore[index]
            return f"[{self.extra['tag']}] {msg}", kwargs  # type: ignore[index]

    handler, output = writer("%(message)s|%(tag)s")
    logger.addHandler(handler)
    Tagging(logger, {"tag": value}).info("adapted")
    logger.info("mapping %(token)s", {"token": value, "unused": value}, extra={"tag": "-"})
    raw = value.encode()
    for shown in (raw, bytearray(raw), base64.b64encode(raw), value.encode("utf-16-le")):
        logger.info("bytes %s %r", shown, shown, extra={"tag": "-"})
    written = output.getvalue()
    assert written.count("***") == 11, "each of the 11 places the value was shown is masked"
    assert_not_leaked(value, written, "what the handler wrote")
    assert repr(value.encode("utf-16-le"))[2:-1] not in written


class Formatted:
    """``str()`` and ``repr()`` harmless; ``format(obj, spec)`` (``{obj:spec}``) shows the value."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return "Formatted"

    def __repr__(self) -> str:
        return "Formatted()"

    def __format__(self, spec: str) -> str:
        return self._value if spec else "Formatted"


class Bag:
    """``str()``/``repr()`` harmless; ``{bag.value}`` and ``{bag[key]}`` reach the value."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Bag()"

    def __getitem__(self, key: str) -> str:
        return self.value


class Failure(Exception):
    def __init__(self, value: str) -> None:
        super().__init__("failed")
        self.value = value


@pytest.mark.parametrize(
    "fmt",
    [
        "{message} {obj:x}",
        "{message} {bag.value}",
        "{message} {bag[key]}",
        "{message} {args[0]:x}",
        "{message} {deep[0][k][0][k][0][k][0][k][0][k]:x}",
        "{msg:x}",
        "{message} {exc_info[1].value}",
    ],
)
def test_fields_a_brace_formatter_reaches_through_format_or_attributes_are_masked(
    value: str, logger: logging.Logger, fmt: str
) -> None:
    """``str.format`` calls ``__format__`` with the spec, follows ``.attr`` and ``[key]``:
    none of them is ``str()`` or ``repr()``, so only masking the formatted text can hold."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter(fmt, style="{"))
    logger.addHandler(handler)
    extra = {"obj": Formatted(value), "bag": Bag(value), "deep": nested(Formatted(value), 10)}
    if fmt.startswith("{msg"):
        logger.info(Formatted(value), extra=extra)
    elif "exc_info" in fmt:
        try:
            raise Failure(value)
        except Failure:
            logger.exception("braced", extra=extra)
    else:
        logger.info("braced %s", Formatted(value), extra=extra)
    text = output.getvalue()
    assert text.strip(), "the handler wrote the record"
    assert_not_leaked(value, text, f"a record formatted with {fmt!r}")


class Shown:
    """``repr()`` and ``format(obj, spec)`` harmless; ``str()`` (all ``$`` formatting calls) shows it."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Shown()"

    def __format__(self, spec: str) -> str:
        return "Shown"


class ShownLater(Shown):
    """Harmless the first time ``str()`` is called (when the record's fields are judged), the value
    afterwards (when the formatter calls it): only masking the formatted text can hold."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.calls = 0

    def __str__(self) -> str:
        self.calls += 1
        return "Shown" if self.calls == 1 else self._value


@pytest.mark.parametrize(
    "fmt",
    ["$message", "${message}|${shown}", "$message $shown_later", "${msg}"],
)
def test_fields_a_dollar_formatter_shows_through_str_are_masked(
    value: str, logger: logging.Logger, fmt: str
) -> None:
    """A ``$``-style formatter (``string.Template``) shows each field by ``str()``: the value
    reaches the written line through the message's arguments, an ``extra`` field, the message
    object itself, or an object whose ``str()`` changes after the fields were judged."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter(fmt, style="$"))
    logger.addHandler(handler)
    later = ShownLater(value)
    extra = {"shown": Shown(value), "shown_later": later}
    if fmt == "${msg}":
        logger.info(Shown(value), extra=extra)
    else:
        logger.info("dollar %s", Shown(value), extra=extra)
    text = output.getvalue()
    expected = {
        "$message": "dollar ***",
        "${message}|${shown}": "dollar ***|***",
        "$message $shown_later": "dollar *** ***",
        "${msg}": "***",
    }[fmt]
    assert text == f"{expected}\n"
    if "shown_later" in fmt:
        assert later.calls >= 2, "the formatter called str() after the fields were judged"
    assert_not_leaked(value, text, f"a record formatted with {fmt!r}")


def test_a_handler_or_formatter_class_that_formats_on_its_own_is_masked(
    value: str, logger: logging.Logger
) -> None:
    """Classes defined after install that override ``format`` (no ``Formatter`` of logging's
    own in between), and a queue listener's handler formatting ``extra`` fields with ``{``."""
    lines: list[str] = []

    class OwnFormat(logging.Handler):
        def format(self, record: logging.LogRecord) -> str:
            return f"{record.getMessage()} {record.__dict__['obj']:x}"

        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    class OwnFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"{record.__dict__['bag'].value}"

    logger.addHandler(OwnFormat())
    by_formatter, output = writer()
    by_formatter.setFormatter(OwnFormatter())
    logger.addHandler(by_formatter)
    records: queue.Queue[logging.LogRecord] = queue.Queue()
    logger.addHandler(logging.handlers.QueueHandler(records))
    braced = io.StringIO()
    listening = logging.StreamHandler(braced)
    listening.setFormatter(logging.Formatter("{message} {obj:x}", style="{"))
    listener = logging.handlers.QueueListener(records, listening)
    listener.start()
    try:
        logger.info("own", extra={"obj": Formatted(value), "bag": Bag(value)})
    finally:
        listener.stop()
    assert lines == ["own ***"]
    assert output.getvalue() == "***\n"
    assert braced.getvalue() == "own ***\n"


def test_plain_records_are_not_masked_twice(
    value: str, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a record that carries objects gets its formatted text masked: the others are
    masked field by field already (a whole line is not scanned a second time)."""
    handler, output = writer()
    handler.setFormatter(logging.Formatter("{message} {number} {text}", style="{"))
    logger.addHandler(handler)
    scanned: list[str] = []
    mask = masking.default_masker.mask

    def counting(text: str) -> str:
        scanned.append(text)
        return mask(text)

    monkeypatch.setattr(masking.default_masker, "mask", counting)
    logger.info("plain %s", value, extra={"number": 5, "text": value})
    assert output.getvalue() == "plain *** 5 ***\n"
    assert scanned, "masking went through the masker's mask()"
    assert "plain *** 5 ***" not in scanned, "the formatted line was scanned again"
