"""Replace known secret values with ``***`` in text, log records and child output.

Every value the chain resolves is registered here (values of 4+ characters),
together with the encoded forms it most often leaks in: base64 (standard and
URL-safe, padded or not), URL-encoding, JSON string escaping and Python
``repr`` escaping. A JSON object or array also registers each string inside it,
so one field of a credential document is masked on its own.

What is stored is only what matching needs, never a value: a keyed BLAKE2b
digest of each form and a 64-bit fingerprint of its first four characters
(with a random key made per process). Text is scanned for fingerprints in C
first; only where one matches is a digest computed and compared. So the
registry cannot be read back (no accessor, a repr with a count, no values in
``vars()``, and it refuses to travel in a pickle). One index serves text and
bytes: a form's digest is taken over its UTF-8 bytes either way, and an ASCII
form (most of them: base64, URL-encoding, JSON escapes) has the same
fingerprint as text and as Latin-1-decoded bytes, so it is stored once.

``hashlib``, ``base64``, ``json`` and ``urllib.parse`` are imported when the
first value is registered, not with ``authchain``: start-up time matters to
the short scripts and CLIs this library serves.

``install_log_masking()`` masks every log record the process creates from then
on (message, arguments, ``extra`` fields, exception and stack text): a
log-record factory puts a masking filter on each logger that makes a record,
and the same filter goes on the root logger's and Prefect's handlers. Records
that an SDK emits *while* a source is fetching (such
as botocore's ``Response body:`` at DEBUG) are held back until the chain has
registered the value just fetched, then masked and emitted: see
:func:`holding`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from itertools import compress, count, repeat
from operator import xor
from typing import Any

from authchain.values import SecretValue

__all__ = [
    "MIN_LENGTH",
    "Masker",
    "MaskingFilter",
    "default_masker",
    "holding",
    "install_log_masking",
    "mask_record",
    "register",
]

MIN_LENGTH = 4
REPLACEMENT = "***"
_PREFIX = 4  # characters fingerprinted per form: the shortest form a default masker keeps
_MAX_JSON_DEPTH = 8


class _Index:
    """Fingerprints of form prefixes (→ the lengths of forms starting so) and digests of whole forms.

    A fingerprint almost always has one length: it is stored as a bare int
    (small ints are shared objects) and only becomes a tuple, longest first,
    when two forms share a prefix; at 10 000 registered values that is a few
    MB less than a tuple each. Mutated in place under the masker's lock;
    readers only do single dict/set look-ups, which are atomic under the GIL.
    """

    __slots__ = ("digests", "finder", "groups", "lengths", "longest", "shortest")

    def __init__(self) -> None:
        self.lengths: dict[int, int | tuple[int, ...]] = {}
        self.digests: set[bytes] = set()
        # What the byte scanner needs to skip text no form can be in (see
        # Masker._byte_spans): the form lengths' range and which coarse byte
        # groups (_GROUP_OF) forms contain; ``finder`` caches the table built from them.
        self.longest = 0
        self.shortest = 0
        self.groups = 0
        self.finder: tuple[tuple[int, int], bytes, bytes] | None = None

    def add_shape(self, length: int, groups: int) -> None:
        self.longest = max(self.longest, length)
        self.shortest = min(self.shortest, length) if self.shortest else length
        self.groups |= groups

    def add_length(self, fingerprint: int, length: int) -> None:
        known = self.lengths.get(fingerprint)
        if known is None:
            self.lengths[fingerprint] = length
            return
        lengths = {known} if isinstance(known, int) else set(known)
        if length not in lengths:
            self.lengths[fingerprint] = tuple(sorted(lengths | {length}, reverse=True))

    def lengths_at(self, fingerprint: int) -> tuple[int, ...]:
        known = self.lengths[fingerprint]
        return (known,) if isinstance(known, int) else known


class Masker:
    """A set of values to hide, and the functions that hide them.

    Example:
        >>> masker = Masker()
        >>> masker.add("hunter2-example")
        >>> masker.mask("password=hunter2-example")
        'password=***'
        >>> masker
        <Masker: 2 masked forms>
    """

    def __init__(self, min_length: int = MIN_LENGTH) -> None:
        self._min_length = min_length
        self._prefix = max(1, min(_PREFIX, min_length))
        self._key = os.urandom(32)
        self._salt = int.from_bytes(os.urandom(8), "big") >> 1
        self._index = _Index()
        self._values: set[bytes] = set()
        self._forms = 0
        self._lock = threading.Lock()

    # -- registering -------------------------------------------------------------

    def add(self, value: str | bytes | SecretValue[Any]) -> None:
        """Register a value and its encoded forms (shorter than ``min_length``: ignored)."""
        plain: str | bytes = value.get_secret_value() if isinstance(value, SecretValue) else value
        if len(plain) < self._min_length:
            return
        if isinstance(plain, bytes):
            raw = plain
            try:
                text: str | None = plain.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        else:
            text, raw = plain, plain.encode("utf-8", "surrogatepass")
        seen = self._digest(raw)
        if seen in self._values:
            return  # known already, with every form
        text_forms, byte_forms = _forms(text, raw)
        for leaf in _json_leaves(text):
            leaf_text, leaf_bytes = _forms(leaf, leaf.encode("utf-8", "surrogatepass"))
            text_forms |= leaf_text
            byte_forms |= leaf_bytes
        entries = {
            (self._digest(form), self._fingerprint(form[: self._prefix]), len(form))
            for form in text_forms
            if len(form) >= self._min_length
        }
        # Bytes are fingerprinted as Latin-1 text (one character per byte), so one
        # scanner serves both; for an ASCII form that is the text entry again.
        entries |= {
            (self._digest(form), self._fingerprint(form[: self._prefix].decode("latin-1")), len(form))
            for form in byte_forms
            if len(form) >= self._min_length
        }
        groups = _groups(byte_forms)
        with self._lock:
            index = self._index
            before = len(index.digests)
            for digest, fingerprint, length in entries:
                index.digests.add(digest)
                index.add_length(fingerprint, length)
                index.add_shape(length, groups)
            self._forms += len(index.digests) - before
            self._values.add(seen)

    def _digest(self, form: str | bytes) -> bytes:
        data = form.encode("utf-8", "surrogatepass") if isinstance(form, str) else form
        return _blake(data, self._key)

    def _fingerprint(self, prefix: str) -> int:
        # hash() is SipHash keyed per process; the salt keeps the stored numbers
        # from being plain hash() values of a short string.
        return hash(prefix) ^ self._salt

    # -- masking -----------------------------------------------------------------

    def mask(self, text: str) -> str:
        """Return ``text`` with every registered form replaced by ``***``."""
        return self._scan(text, lambda piece: piece.encode("utf-8", "surrogatepass"))

    def mask_bytes(self, data: bytes) -> bytes:
        """The same for bytes (a child process's output in ``authchain run``)."""
        if not self._index.lengths or len(data) < self._prefix:
            return data
        return self.mask_stream(data, final=True)[0]

    def longest_form(self) -> int:
        """The length of the longest registered form (0: none): what a stream must hold back.

        A length says nothing a reader of the output could not count in ``***``'s
        place anyway, and no value can be rebuilt from it.
        """
        return self._index.longest

    def mask_stream(self, data: bytes, *, final: bool = False) -> tuple[bytes, int]:
        """Mask the part of a stream's pending bytes that no later byte can change.

        Returns ``(masked, consumed)``: ``masked`` is ``data[:consumed]`` with
        every registered form replaced, and the caller keeps ``data[consumed:]``
        and puts it in front of the next chunk. Unless ``final`` (end of
        output), what is kept is the tail where a form may still begin and be
        completed by bytes not yet read: at most ``longest_form() - 1`` bytes,
        and nothing after a byte no form contains (a newline, for most values),
        so a prompt shows at once up to that tail. The result is what masking
        the whole stream at once gives, however it was cut into chunks; the
        work per call is proportional to ``len(data)``.
        """
        index = self._index
        n = len(data)
        if not index.lengths:
            return data, n
        table, needle = self._finder(index)
        if final:
            closed = stop = n
        else:
            # Where the trailing run of form bytes starts: only it can continue in the next chunk.
            width = min(n, index.longest + 64)
            last = data[n - width :].translate(table).rfind(0)
            closed = data.translate(table).rfind(0) + 1 if last < 0 and width < n else n - width + last + 1
            stop = max(closed, n - index.longest + 1)  # forms starting before stop are complete
        pieces: list[bytes] = []
        done = 0
        # A run of form bytes as long as the shortest form holds `len(run_of)`
        # consecutive samples every `step` bytes: look for those in a sample
        # (an eighth of the bytes, in C), then classify only around them.
        step = max(1, len(needle) // 8)
        samples = data[::step].translate(table)
        run_of = b"\x01" * (len(needle) // step)
        limit = -(-closed // step)  # the samples before `closed`
        position = 0
        while position < limit:
            first = samples.find(run_of, position, limit)
            if first < 0:
                break
            after = samples.find(0, first + len(run_of), limit)
            after = limit if after < 0 else after
            # Samples first-1 and after hold bytes no form contains: the runs lie between.
            low = (first - 1) * step + 1 if first else 0
            done = self._runs(data, low, min(after * step, closed), table, needle, pieces, done)
            position = after
        consumed = n
        if closed < n:  # the trailing run: decide what is complete, keep the rest
            done, consumed = self._replace(data, closed, n, stop - closed, pieces, done)
        if not pieces:
            return (data, n) if consumed == n else (data[:consumed], consumed)
        pieces.append(data[done:consumed])
        return b"".join(pieces), consumed

    def _runs(
        self, data: bytes, low: int, high: int, table: bytes, needle: bytes, pieces: list[bytes], done: int
    ) -> int:
        """Mask every run of form bytes in ``data[low:high]`` long enough to hold a form."""
        flags = data[low:high].translate(table)  # 1 where a byte could be in a form
        position = 0
        while True:
            begin = flags.find(needle, position)
            if begin < 0:
                return done
            end = flags.find(0, begin + len(needle))
            end = len(flags) if end < 0 else end
            done = self._replace(data, low + begin, low + end, end - begin, pieces, done)[0]
            position = end

    def _replace(
        self, data: bytes, begin: int, end: int, stop: int, pieces: list[bytes], done: int
    ) -> tuple[int, int]:
        """Append to ``pieces`` the run ``data[begin:end]`` with its forms starting before
        ``begin + stop`` masked; return the new ``done`` and where undecided bytes start."""
        spans, hold = self._find_forms(data[begin:end].decode("latin-1"), _latin1, stop)
        for position, length in spans:
            pieces += (data[done : begin + position], _REPLACEMENT_BYTES)
            done = begin + position + length
        return done, begin + hold

    def _finder(self, index: _Index) -> tuple[bytes, bytes]:
        key = (index.groups, index.shortest)
        cached = index.finder
        if cached is None or cached[0] != key:
            table = bytes(1 if index.groups & _GROUP_OF[byte] else 0 for byte in range(256))
            cached = index.finder = (key, table, b"\x01" * max(1, index.shortest))
        return cached[1], cached[2]

    def _scan(self, text: str, to_bytes: Callable[[str], bytes]) -> str:
        if not self._index.lengths or len(text) < self._prefix:
            return text
        spans, _ = self._find_forms(text, to_bytes, len(text))
        if not spans:
            return text
        pieces: list[str] = []
        start = 0
        for position, length in spans:
            pieces += (text[start:position], REPLACEMENT)
            start = position + length
        pieces.append(text[start:])
        return "".join(pieces)

    def _find_forms(
        self, text: str, to_bytes: Callable[[str], bytes], stop: int
    ) -> tuple[list[tuple[int, int]], int]:
        """The forms in ``text`` starting before ``stop`` (position, length), leftmost
        and longest first; and the first position from ``stop`` on where a form may start."""
        index = self._index
        lengths = index.lengths
        size = self._prefix
        spans: list[tuple[int, int]] = []
        start = 0
        # Fingerprint every position in C; only positions whose fingerprint is
        # known get a digest compared (most text has none at all).
        grams = map("".join, zip(*(text[offset:] for offset in range(size)), strict=False))
        prints = map(xor, map(hash, grams), repeat(self._salt))
        digests, key = index.digests, self._key
        for position in compress(count(), map(lengths.__contains__, prints)):
            if position < start:
                continue  # inside a form already replaced
            if position >= stop:
                return spans, position  # a form may start here: undecided
            for length in index.lengths_at(hash(text[position : position + size]) ^ self._salt):
                piece = text[position : position + length]  # longest first: overlapping values mask whole
                if len(piece) == length and _blake(to_bytes(piece), key) in digests:
                    spans.append((position, length))
                    start = position + length
                    break
        # Past the last full prefix nothing could be fingerprinted: undecided too.
        return spans, max(start, min(stop, len(text)), len(text) - size + 1)

    def __len__(self) -> int:
        with self._lock:
            return self._forms

    def __repr__(self) -> str:
        return f"<Masker: {len(self)} masked forms>"

    def __reduce__(self) -> Any:
        # Travelling in a pickle would carry digests of every registered value.
        return (type(self), (self._min_length,))


# Coarse byte groups for the byte scanner's pre-filter: printable ASCII, space,
# control characters (newline among them), non-ASCII. What a masker records of a
# value is which groups its forms touch (at most four bits), never the bytes.
_GROUP_OF = tuple(
    1 if 0x21 <= byte <= 0x7E else 2 if byte == 0x20 else 8 if byte >= 0x80 else 4 for byte in range(256)
)
_GROUP_TABLE = bytes(_GROUP_OF)
_REPLACEMENT_BYTES = REPLACEMENT.encode()


def _groups(forms: set[bytes]) -> int:
    groups = 0
    for form in forms:
        for byte in set(form.translate(_GROUP_TABLE)):
            groups |= byte
    return groups


def _latin1(piece: str) -> bytes:
    return piece.encode("latin-1")


def _blake(data: bytes, key: bytes) -> bytes:
    import hashlib

    return hashlib.blake2b(data, key=key, digest_size=16).digest()


def _forms(text: str | None, raw: bytes) -> tuple[set[str], set[bytes]]:
    """The encoded forms a value leaks in, as text and as bytes."""
    import base64
    import json
    from urllib.parse import quote, quote_plus

    encoded = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    texts = {encoded, encoded.rstrip("="), urlsafe, urlsafe.rstrip("="), repr(raw)[2:-1]}
    if text is not None:
        escaped = json.dumps(text)[1:-1]
        texts |= {
            text,
            quote(text, safe=""),
            quote_plus(text, safe=""),
            escaped,
            json.dumps(text, ensure_ascii=False)[1:-1],
            repr(text)[1:-1],
            repr(escaped)[1:-1],  # a JSON body shown with %r (botocore's "Response body")
        }
    byte_forms = {raw} | {form.encode("utf-8", "surrogatepass") for form in texts}
    return texts, byte_forms


def _json_leaves(text: str | None) -> Iterator[str]:
    """The strings inside a JSON object or array (a credential document's fields)."""
    if text is None or not text.lstrip().startswith(("{", "[")):
        return
    import json

    try:
        document = json.loads(text)
    except ValueError:
        return
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            yield item
        elif depth < _MAX_JSON_DEPTH and isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif depth < _MAX_JSON_DEPTH and isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


# -- log records ---------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def mask_record(record: logging.LogRecord, masker: Masker | None = None) -> None:
    """Mask a record in place: message, arguments, ``extra`` fields, exception and stack text."""
    masker = masker or default_masker
    try:
        message = record.getMessage()
    except Exception:  # a broken format: logging prints msg and args when it reports it
        message = None
    if message is not None:
        masked = masker.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        elif record.args:
            # Arguments the format string does not show (a dict with more keys)
            # are still handed to handlers that read record.args.
            args = _mask_object(record.args, masker)
            if args is not record.args:
                record.args = args
    else:
        record.msg = _mask_object(record.msg, masker)
        record.args = _mask_object(record.args, masker)
    if record.exc_info and record.exc_info[1] is not None:
        text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        masked_text = masker.mask(text)
        if masked_text != text:
            # The exception object itself would print the value again: keep only the text.
            record.exc_text, record.exc_info = masked_text, None
    elif record.exc_text:
        record.exc_text = masker.mask(record.exc_text)
    if record.stack_info:
        record.stack_info = masker.mask(record.stack_info)
    for name, value in list(vars(record).items()):
        if name not in _STANDARD and not name.startswith("_"):
            masked_value = _mask_object(value, masker)
            if masked_value is not value:
                setattr(record, name, masked_value)


def _mask_object(value: Any, masker: Masker, depth: int = 0) -> Any:
    """``value`` with registered forms masked: the same object when nothing changed."""
    if isinstance(value, str):
        masked = masker.mask(value)
        return value if masked == value else masked
    if isinstance(value, bytes):
        masked_bytes = masker.mask_bytes(value)
        return value if masked_bytes == value else masked_bytes
    if isinstance(value, (int, float, bool, SecretValue)) or value is None or depth > _MAX_JSON_DEPTH:
        return value
    if isinstance(value, (tuple, list)):
        items = [_mask_object(item, masker, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        pairs = [
            (key, item, _mask_object(key, masker, depth + 1), _mask_object(item, masker, depth + 1))
            for key, item in value.items()
        ]
        if all(new_key is key and new_item is item for key, item, new_key, new_item in pairs):
            return value
        return {new_key: new_item for _, _, new_key, new_item in pairs}  # keys can hold a value too
    try:
        shown = str(value)
    except Exception:
        return value
    masked = masker.mask(shown)
    return value if masked == shown else masked


class MaskingFilter(logging.Filter):
    """A logging filter that masks the message, its arguments, ``extra`` fields and exception text."""

    def __init__(self, masker: Masker | None = None) -> None:
        super().__init__()
        self.masker = masker or default_masker

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record, self.masker)
        return True

    def __repr__(self) -> str:
        return f"<MaskingFilter {self.masker!r}>"


default_masker = Masker()


def register(value: str | bytes | SecretValue[Any]) -> None:
    """Register a value with the process-wide masker (the chain does this for you)."""
    default_masker.add(value)


# -- holding records back while a source fetches ----------------------------------------

_HELD: ContextVar[list[logging.LogRecord] | None] = ContextVar("authchain_held_records", default=None)
_MARK = "_authchain_mask"


@contextlib.contextmanager
def holding() -> Iterator[None]:
    """Hold back log records created in this context until the block ends.

    The chain wraps each backend call in it and registers the values the call
    returned before the block ends, so an SDK that logs a response body (as
    botocore does at DEBUG) has it masked. Held records are released in order,
    masked, through their own logger; only records created while log masking
    is installed are held, and authchain's own records never are.
    """
    held: list[logging.LogRecord] = []
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
        _release(held)


def _release(held: list[logging.LogRecord]) -> None:
    outer = _HELD.get()
    for record in held:
        if outer is not None:  # still inside an outer fetch: its value is not registered yet
            outer.append(record)
            continue
        mask_record(record)
        logger = logging.getLogger() if record.name == "root" else logging.getLogger(record.name)
        with contextlib.suppress(Exception):
            logger.handle(record)


class _RecordFilter(logging.Filter):
    """On every logger that made a record since masking was installed: mask it, or hold it.

    A logger filter runs after ``extra=`` fields are set on the record and
    before any handler sees it, whichever handlers there are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        mark = record.__dict__.pop(_MARK, None)
        if mark is None:  # not made through our factory (logging.makeLogRecord)
            return True
        if isinstance(mark, list):  # made during a fetch: wait for its values (see holding)
            mark.append(record)
            return False
        mask_record(record)
        return True


_record_filter = _RecordFilter()
_install_lock = threading.Lock()
_previous_factory: Callable[..., logging.LogRecord] | None = None


def _masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    assert _previous_factory is not None
    record = _previous_factory(*args, **kwargs)
    logger = logging.getLogger() if record.name == "root" else logging.getLogger(record.name)
    if _record_filter not in logger.filters:
        logger.addFilter(_record_filter)
    held = _HELD.get()
    hold = held is not None and not record.name.startswith("authchain")
    setattr(record, _MARK, held if hold else True)
    return record


def install_log_masking(logger: logging.Logger | None = None) -> MaskingFilter:
    """Mask every secret value resolved in this process in log output.

    Installs (once) a log-record factory that puts a masking filter on every
    logger that makes a record, so each record is masked before any handler
    sees it, whatever handlers there are (including handlers added after this
    call, such as the ones Prefect configures on its first run); and attaches
    the masking filter to every handler of ``logger`` (root by default) and,
    when Prefect is already imported, of Prefect's loggers, for records made
    some other way. It never imports Prefect itself.

    Example:
        >>> import authchain
        >>> masking_filter = authchain.install_log_masking()
    """
    global _previous_factory
    with _install_lock:
        if _previous_factory is None:
            _previous_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_masking_factory)
    masking_filter = MaskingFilter()
    targets = [logger or logging.getLogger()]
    if logger is None and "prefect" in sys.modules:
        targets += [
            known
            for name, known in list(logging.root.manager.loggerDict.items())
            if isinstance(known, logging.Logger) and (name == "prefect" or name.startswith("prefect."))
        ]
    for target in targets:
        for handler in target.handlers:
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(masking_filter)
    return masking_filter
