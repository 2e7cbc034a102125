"""Replace known secret values with ``***`` in text, log records and child output.

Every value the chain resolves is registered here, together with the encoded
forms programs print it in: base64 (standard and URL-safe, padded or not, and
the part that stays the same when the value sits at any byte offset inside a
longer base64 string, as in HTTP Basic's ``user:password``), URL-encoding
(upper- and lower-case hex), hex (both cases), JSON string escaping (as
Python, PHP, Go, Gson, Rails and .NET write it) and Python ``repr`` escaping,
and the value's bytes in UTF-16 (little-endian) and Latin-1 / Windows-1252.
A JSON object or array also registers each string inside it, so one field
of a credential document is masked on its own.

Values shorter than :data:`MIN_LENGTH` (8) characters are not masked in text:
replacing every occurrence of a short string rewrites ordinary words (a secret
``INFO`` turned ``INFORMATION`` into ``***RMATION``), and a short string that
is a whole word cannot be told from the same word in a log line. Registering
one logs a warning once per source, without the value.

What is stored is only what matching needs, never a value: a 32-bit keyed
BLAKE2b digest of each form and a 64-bit fingerprint of its first four
characters (with a random key made per process). Text is scanned for fingerprints in C
first; only where one matches is a digest computed and compared. So the
registry cannot be read back (no accessor, a repr with a count, no values in
``vars()``, and it refuses to travel in a pickle). One index serves text and
bytes: a form's digest is taken over its UTF-8 bytes either way, and an ASCII
form (most of them: base64, URL-encoding, JSON escapes) has the same
fingerprint as text and as Latin-1-decoded bytes, so it is stored once.

``hashlib``, ``base64``, ``json`` and ``urllib.parse`` are imported when the
first value is registered, not with ``authchain``: start-up time matters to
the short scripts and CLIs this library serves.

``install_log_masking()`` masks every log record at the point of output
(message, arguments, ``extra`` fields, exception and stack text): it wraps
``logging.Handler.handle``, so every handler masks a record before its filters
and ``emit`` see it, whichever way the record came (a logger, a queue
listener, ``logging.makeLogRecord`` on a socket receiver) and whenever the
handler was created. Records that an SDK emits *while* a source is fetching
(such as botocore's ``Response body:`` at DEBUG) are held back until the
chain has registered the value just fetched, then masked and emitted: see
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

from authchain import values as _values
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

MIN_LENGTH = 8
"""Values shorter than this are not masked in text (see the module docstring)."""
REPLACEMENT = "***"
_PREFIX = 4  # characters fingerprinted per form: the shortest form a default masker keeps
_MAX_JSON_DEPTH = 8
_MAX_WARNED = 256  # labels remembered for the one-time short-value warning
logger = logging.getLogger(__name__)


_LENGTH_BITS = 24  # a form's edges and length, packed under its digest
_EDGE_SHIFT = 20  # 4 bits of edges (see _forms) above a 20-bit length: forms up to 1 MB
_LENGTH_MASK = (1 << _EDGE_SHIFT) - 1
_EDGE_SLACK = 3  # the most base64 characters a match widens over on either side (see _forms)
_BASE64_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")


class _Index:
    """Fingerprints of form prefixes → (a digest of the whole form, its length), packed in one int.

    Each entry is ``digest << 24 | edges << 20 | length``, with a 32-bit
    keyed digest (``edges``: base64 characters next to the form that also
    carry the value's bits, see :func:`_forms`): a
    text position is a candidate only where its first characters have the
    fingerprint of a registered form, so the digest only has to tell apart
    the few strings that start like one (a wrong match: about one in four
    billion such candidates). Packing keeps one int per form, without a
    separate set of digests, which matters with the many forms a value has
    (base64 at three offsets, hex): at 10 000 registered values that is
    several MB less. A fingerprint almost always has one form: it is stored
    as a bare int and only becomes a tuple, longest first, when forms share
    a prefix. Mutated in place under the masker's lock; readers only do
    single dict look-ups, which are atomic under the GIL.
    """

    __slots__ = ("entries", "finder", "groups", "longest", "shortest")

    def __init__(self) -> None:
        self.entries: dict[int, int | tuple[int, ...]] = {}
        # What the byte scanner needs to skip text no form can be in (see
        # Masker.mask_stream): the form lengths' range and which coarse byte
        # groups (_GROUP_OF) forms contain; ``finder`` caches the table built from them.
        self.longest = 0
        self.shortest = 0
        self.groups = 0
        self.finder: tuple[tuple[int, int], bytes, bytes] | None = None

    def add_shape(self, length: int, groups: int) -> None:
        self.longest = max(self.longest, length)
        self.shortest = min(self.shortest, length) if self.shortest else length
        self.groups |= groups

    def add(self, fingerprint: int, digest: int, length: int, edges: int = 0) -> bool:
        """Add a form; False when it was there already."""
        packed = digest << _LENGTH_BITS | edges << _EDGE_SHIFT | length
        known = self.entries.get(fingerprint)
        if known is None:
            self.entries[fingerprint] = packed
            return True
        packs = {known} if isinstance(known, int) else set(known)
        if packed in packs:
            return False
        packs.add(packed)
        self.entries[fingerprint] = tuple(sorted(packs, key=lambda entry: entry & _LENGTH_MASK, reverse=True))
        return True

    def at(self, fingerprint: int) -> tuple[int, ...]:
        """The packed forms starting with this fingerprint, longest first."""
        known = self.entries[fingerprint]
        return (known,) if isinstance(known, int) else known

    def lengths_at(self, fingerprint: int) -> tuple[int, ...]:
        return tuple(entry & _LENGTH_MASK for entry in self.at(fingerprint))


class Masker:
    """A set of values to hide, and the functions that hide them.

    Example:
        >>> masker = Masker()
        >>> masker.add("hunter2-example")
        >>> masker.mask("password=hunter2-example")
        'password=***'
        >>> masker
        <Masker: 7 masked forms>
    """

    def __init__(self, min_length: int = MIN_LENGTH) -> None:
        self._min_length = min_length
        self._prefix = max(1, min(_PREFIX, min_length))
        self._key = os.urandom(32)
        self._salt = int.from_bytes(os.urandom(8), "big") >> 1
        self._index = _Index()
        self._values: set[bytes] = set()
        self._forms = 0
        self._generation = 0  # changes whenever a value is registered: records masked before are stale
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    # -- registering -------------------------------------------------------------

    def add(self, value: str | bytes | SecretValue[Any], *, label: str | None = None) -> None:
        """Register a value and its encoded forms.

        A value shorter than ``min_length`` is not registered: masking it
        would rewrite ordinary text. That is logged once per ``label`` (the
        source or name the value came from, never the value), so a user
        learns that this secret is not masked.
        """
        plain: str | bytes = value.get_secret_value() if isinstance(value, SecretValue) else value
        if len(plain) < self._min_length:
            if plain:
                self._warn_short(label)
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
        text_forms, byte_forms, edges = _forms(text, raw)
        for leaf in _json_leaves(text):
            leaf_text, leaf_bytes, leaf_edges = _forms(leaf, leaf.encode("utf-8", "surrogatepass"))
            text_forms |= leaf_text
            byte_forms |= leaf_bytes
            edges.update(leaf_edges)
        entries = {
            (self._form_digest(form), self._fingerprint(form[: self._prefix]), len(form), edges.get(form, 0))
            for form in text_forms
            if self._min_length <= len(form) <= _LENGTH_MASK
        }
        # Bytes are fingerprinted as Latin-1 text (one character per byte), so one
        # scanner serves both; an ASCII form is the text entry again (not hashed twice).
        entries |= {
            (self._form_digest(form), self._fingerprint(form[: self._prefix].decode("latin-1")), len(form), 0)
            for form in byte_forms
            if self._min_length <= len(form) <= _LENGTH_MASK
            and not (form.isascii() and form.decode("ascii") in text_forms)
        }
        groups = _groups(byte_forms)
        with self._lock:
            index = self._index
            for digest, fingerprint, length, form_edges in entries:
                self._forms += index.add(fingerprint, digest, length, form_edges)
                index.add_shape(length, groups)
            self._values.add(seen)
            self._generation += 1

    def _warn_short(self, label: str | None) -> None:
        key = label or ""
        with self._lock:
            if key in self._warned or len(self._warned) >= _MAX_WARNED:
                return
            self._warned.add(key)
        logger.warning(
            "a secret value%s is shorter than %d characters and is not masked in text output "
            "(masking so short a string would rewrite ordinary words); use a longer value",
            f" from {label}" if label else "",
            self._min_length,
        )

    def _digest(self, form: str | bytes) -> bytes:
        data = form.encode("utf-8", "surrogatepass") if isinstance(form, str) else form
        return _blake(data, self._key)

    def _form_digest(self, form: str | bytes) -> int:
        data = form.encode("utf-8", "surrogatepass") if isinstance(form, str) else form
        return _short_digest(data, self._key)

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
        if not self._index.entries or len(data) < self._prefix:
            return data
        return self.mask_stream(data, final=True)[0]

    def longest_form(self) -> int:
        """The longest stretch one match can replace (0: none): what a stream must hold back.

        That is the longest registered form plus the base64 characters a match
        widens over on each side (see :func:`_forms`). A length says nothing a
        reader of the output could not count in ``***``'s place anyway, and no
        value can be rebuilt from it.
        """
        longest = self._index.longest
        return longest + 2 * _EDGE_SLACK if longest else 0

    def mask_stream(self, data: bytes, *, final: bool = False) -> tuple[bytes, int]:
        """Mask the part of a stream's pending bytes that no later byte can change.

        Returns ``(masked, consumed)``: ``masked`` is ``data[:consumed]`` with
        every registered form replaced, and the caller keeps ``data[consumed:]``
        and puts it in front of the next chunk. Unless ``final`` (end of
        output), what is kept is the tail where a form may still begin and be
        completed by bytes not yet read: fewer than ``longest_form()`` bytes,
        and nothing after a byte no form contains (a newline, for most values),
        so a prompt shows at once up to that tail. The result is what masking
        the whole stream at once gives, however it was cut into chunks; the
        work per call is proportional to ``len(data)``.
        """
        index = self._index
        n = len(data)
        if not index.entries:
            return data, n
        table, needle = self._finder(index)
        if final:
            closed = stop = n
        else:
            # Where the trailing run of form bytes starts: only it can continue in the next chunk.
            width = min(n, index.longest + 64)
            last = data[n - width :].translate(table).rfind(0)
            closed = data.translate(table).rfind(0) + 1 if last < 0 and width < n else n - width + last + 1
            # Forms starting before stop are complete, with the base64 characters
            # around them that share the value's bits (see _forms).
            stop = max(closed, n - index.longest - _EDGE_SLACK + 1)
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
            if consumed < n:  # a form found later may widen over up to _EDGE_SLACK bytes before it
                consumed = max(done, closed, consumed - _EDGE_SLACK)
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
        if not self._index.entries or len(text) < self._prefix:
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
        entries = index.entries
        size = self._prefix
        spans: list[tuple[int, int]] = []
        start = 0
        # Fingerprint every position in C; only positions whose fingerprint is
        # known get a digest compared (most text has none at all).
        grams = map("".join, zip(*(text[offset:] for offset in range(size)), strict=False))
        prints = map(xor, map(hash, grams), repeat(self._salt))
        key = self._key
        for position in compress(count(), map(entries.__contains__, prints)):
            if position < start:
                continue  # inside a form already replaced
            if position >= stop:
                return spans, position  # a form may start here: undecided
            for packed in index.at(hash(text[position : position + size]) ^ self._salt):
                length = packed & _LENGTH_MASK
                piece = text[position : position + length]  # longest first: overlapping values mask whole
                if len(piece) == length and _short_digest(to_bytes(piece), key) == packed >> _LENGTH_BITS:
                    begin, end = position, position + length
                    edges = packed >> _EDGE_SHIFT & 15
                    if edges:  # base64 characters that share bits with the value's first and last bytes
                        begin, end = _widen(text, begin, end, edges >> 2, edges & 3, start)
                    spans.append((begin, end - begin))
                    start = end
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

    @property
    def generation(self) -> int:
        """A number that changes whenever a value is registered (text masked before may now change)."""
        return self._generation


# Coarse byte groups for the byte scanner's pre-filter: printable ASCII, space,
# control characters (newline among them), non-ASCII, NUL. What a masker records of a
# value is which groups its forms touch (at most five bits), never the bytes.
_GROUP_OF = tuple(
    1 if 0x21 <= byte <= 0x7E else 2 if byte == 0x20 else 8 if byte >= 0x80 else 16 if byte == 0 else 4
    for byte in range(256)
)  # NUL has a group of its own: UTF-16 forms hold it, and a newline must still end a run
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


_blake2b: Any = None


def _hasher() -> Any:
    """``hashlib.blake2b``, imported from ``_blake2`` where it lives: importing
    ``hashlib`` also loads OpenSSL (about 3 ms on a first ``resolve``)."""
    global _blake2b
    if _blake2b is None:
        try:
            from _blake2 import blake2b
        except ImportError:  # pragma: no cover (a Python built without it)
            from hashlib import blake2b
        _blake2b = blake2b
    return _blake2b


def _blake(data: bytes, key: bytes) -> bytes:
    return _hasher()(data, key=key, digest_size=16).digest()  # type: ignore[no-any-return]


def _widen(text: str, begin: int, end: int, left: int, right: int, floor: int) -> tuple[int, int]:
    """Extend a match over up to ``left``/``right`` more base64 characters (not before ``floor``)."""
    while left and begin > floor and text[begin - 1] in _BASE64_CHARACTERS:
        begin, left = begin - 1, left - 1
    while right and end < len(text) and text[end] in _BASE64_CHARACTERS:
        end, right = end + 1, right - 1
    return begin, end


def _short_digest(data: bytes, key: bytes) -> int:
    return int.from_bytes(_hasher()(data, key=key, digest_size=4).digest(), "big")


def _forms(text: str | None, raw: bytes) -> tuple[set[str], set[bytes], dict[str, int]]:
    """The encoded forms a value leaks in, as text and as bytes, and the edges of base64 middles.

    A middle part of base64 (the value at an offset in a longer string) is
    masked together with the characters around it that still hold some of
    the value's bits: ``edges`` is ``left << 2 | right``, counted in
    characters (2 for one byte of the value in the neighbouring group, 3 for
    two).
    """
    import base64
    import json
    from urllib.parse import quote, quote_plus

    hexed = raw.hex()
    texts = {repr(raw)[2:-1], hexed, hexed.upper()}
    edges: dict[str, int] = {}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        texts |= {whole, whole.rstrip("=")}
        # Inside a longer base64 string (HTTP Basic encodes ``user:password``)
        # the value starts at one of three byte offsets within a 3-byte group;
        # the groups wholly inside the value encode the same whatever surrounds
        # them, so that middle part is a form of its own (its first and last
        # character or two, shared with the neighbours, stay).
        for skip in (1, 2, 0):
            middle = raw[skip:]
            rest = len(middle) % 3
            middle = middle[: len(middle) - rest]
            if middle:
                form = encode(middle).decode()
                texts.add(form)
                edges[form] = _EDGE_CHARACTERS[skip] << 2 | _EDGE_CHARACTERS[rest]
    byte_forms = {raw}
    if text is not None:
        escaped = json.dumps(text)[1:-1]
        form_encoded = quote_plus(text, safe="")
        quoted = {
            quote(text, safe=""),
            quote(text),
            form_encoded,
            quote(text, safe="!*'()"),  # JavaScript's encodeURIComponent
            form_encoded.replace("~", "%7E"),  # PHP's urlencode
            quote_plus(text, safe="*").replace("~", "%7E"),  # JavaScript's URLSearchParams
        }
        texts |= quoted | {_lower_hex(form) for form in quoted if "%" in form}
        texts |= _json_escapings(text)
        texts |= {
            text,
            repr(text)[1:-1],
            repr(escaped)[1:-1],  # a JSON body shown with %r (botocore's "Response body")
        }
        byte_forms |= _other_charsets(text)
    byte_forms |= {form.encode("utf-8", "surrogatepass") for form in texts}
    for form in texts & {text, repr(raw)[2:-1]}:
        edges.pop(form, None)  # also the value itself (or its repr): no widening there
    return texts, byte_forms, edges


# Base64 characters holding bits of 0, 1 or 2 of the value's bytes in a group
# it shares with its neighbours.
_EDGE_CHARACTERS = (0, 2, 3)


# Characters JSON encoders other than Python's write as escapes: PHP escapes "/"
# as "\\/"; Go, Gson and Rails escape "&", "<", ">" (Gson also "=" and "'")
# as \\u0026...; .NET's default encoder also "+" and "`", with upper-case hex.
_JSON_EXTRA_ESCAPES = ("/", "&<>", "&<>='", "&<>='+`")


def _json_escapings(text: str) -> set[str]:
    """The value as the JSON encoders programs use write it inside a string.

    Non-ASCII escaped or kept, the extra characters some encoders escape
    (``_JSON_EXTRA_ESCAPES``), and ``\\u`` escapes in lower or upper case
    (``\\u00e9``, ``\\u00E9``). A value with none of those characters has one form.
    """
    import json
    import re

    forms: set[str] = set()
    for ensure_ascii in (True, False):
        base = json.dumps(text, ensure_ascii=ensure_ascii)[1:-1]
        forms.add(base)
        for extra in _JSON_EXTRA_ESCAPES:
            if extra == "/":
                forms.add(base.replace("/", "\\/"))
                continue
            escaped = base
            for character in extra:
                escaped = escaped.replace(character, f"\\u{ord(character):04x}")
            forms.add(escaped)
    upper = {
        re.sub(r"\\u[0-9a-f]{4}", lambda escape: "\\u" + escape.group()[2:].upper(), form) for form in forms
    }
    return forms | upper


def _other_charsets(text: str) -> set[bytes]:
    """The value's bytes in the other encodings a program may write: UTF-16 as
    Windows programs and PowerShell write it (little-endian; big-endian output
    is rare enough not to cost every value a form), and Latin-1 / Windows-1252
    for a value with accented letters."""
    forms = {text.encode("utf-16-le", "surrogatepass")}
    for charset in ("latin-1", "cp1252"):
        with contextlib.suppress(UnicodeEncodeError):
            forms.add(text.encode(charset))
    return forms


def _lower_hex(quoted: str) -> str:
    """``quote``'s ``%2F`` escapes in lower case (``%2f``), as some encoders write them."""
    import re

    return re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), quoted)


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

# Attributes every LogRecord has; anything else on a record came from ``extra=``
# (underscore-prefixed ones included) or from a filter or handler.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_MARK = "_authchain_mask"  # set by the record factory: hold the record, or mask it
_DONE = "_authchain_masked"  # (this process, masker generation) a record was masked at
_OPAQUE = "_authchain_opaque"  # the maskers that left an object in the record (see _reaches_objects)
_OWN = frozenset({_MARK, _DONE, _OPAQUE})
_PROCESS = object()  # a record pickled to another process arrives with a different object
_WITHHELD = "(a log record authchain could not mask was withheld)"


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
        # Formatters print exc_text when it is set: what was checked is what is shown.
        record.exc_text = masked_text
        if masked_text != text:
            # The exception object itself would print the value again: keep only the text.
            record.exc_info = None
    elif record.exc_text:
        record.exc_text = masker.mask(record.exc_text)
    if record.stack_info:
        record.stack_info = masker.mask(record.stack_info)
    for name, value in list(vars(record).items()):
        if name not in _STANDARD and name not in _OWN:
            masked_value = _mask_object(value, masker)
            if masked_value is not value:
                setattr(record, name, masked_value)
    if _reaches_objects(record):
        maskers = record.__dict__.get(_OPAQUE)
        maskers = maskers if isinstance(maskers, tuple) else ()
        if masker not in maskers:
            record.__dict__[_OPAQUE] = (*maskers, masker)


# What formatting cannot turn into more than its str() or repr() (the walk judged those).
_PLAIN = frozenset({str, bytes, bytearray, int, float, bool, type(None), SecretValue})


def _reaches_objects(record: logging.LogRecord) -> bool:
    """Whether a formatter could show more of ``record`` than the field walk judged.

    The walk masks what ``str()`` and ``repr()`` show (``%``- and ``$``-style
    formatting use nothing else). A ``{``-style formatter calls
    ``format(obj, spec)`` (a class's own ``__format__``) and follows
    ``{obj.attr}`` and ``{obj[key]}``; so does any formatter of a user's
    own. A record holding such an object (in ``msg``, ``args``, an ``extra``
    field, an exception) has its formatted text masked (see
    :func:`_masked_format`); a record of strings and numbers does not pay for it.
    """
    if record.exc_info and record.exc_info[1] is not None:
        return True
    if not _plain(record.msg) or not _plain(record.args):
        return True
    return any(
        not _plain(value)
        for name, value in vars(record).items()
        if name not in _STANDARD and name not in _OWN
    )


def _plain(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if kind in _PLAIN or kind is _Masked:
        return True
    if kind in (tuple, list) and depth < _MAX_JSON_DEPTH:
        return all(_plain(item, depth + 1) for item in value)
    if kind is dict and depth < _MAX_JSON_DEPTH:
        return all(_plain(key, depth + 1) and _plain(item, depth + 1) for key, item in value.items())
    return False


def _mask_object(value: Any, masker: Masker, depth: int = 0) -> Any:
    """``value`` with registered forms masked: the same object when nothing changed.

    Containers are walked to ``_MAX_JSON_DEPTH`` levels; anything deeper, and
    any other object, is judged by its ``str()`` and its ``repr()`` (``%s``
    and ``%r`` show those) and replaced by a stand-in showing both masked.
    """
    if isinstance(value, str):
        masked = masker.mask(value)
        return value if masked == value else masked
    if isinstance(value, (bytes, bytearray)):
        masked_bytes = masker.mask_bytes(bytes(value))
        return value if masked_bytes == value else masked_bytes
    if value is None or isinstance(value, (bool, SecretValue)):
        return value
    if depth < _MAX_JSON_DEPTH:
        if isinstance(value, (tuple, list)):
            items = [_mask_object(item, masker, depth + 1) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, dict):
            pairs = [
                (key, item, _mask_object(key, masker, depth + 1), _mask_object(item, masker, depth + 1))
                for key, item in value.items()
            ]
            if all(new_key is key and new_item is item for key, item, new_key, new_item in pairs):
                return value
            return {new_key: new_item for _, _, new_key, new_item in pairs}  # keys can hold a value too
    return _Masked.of(value, masker)


class _Masked:
    """Stands in for an object whose ``str()`` or ``repr()`` showed a registered value."""

    __slots__ = ("_repr", "_str")

    def __init__(self, shown: str, represented: str) -> None:
        self._str = shown
        self._repr = represented

    @classmethod
    def of(cls, value: Any, masker: Masker) -> Any:
        """``value`` itself when neither its ``str()`` nor its ``repr()`` shows a value, else a stand-in."""
        try:
            shown: str | None = str(value)
        except Exception:
            shown = None
        try:
            represented: str | None = repr(value)
        except Exception:
            represented = None
        masked_shown = None if shown is None else masker.mask(shown)
        if represented == shown:
            masked_repr = masked_shown
        else:
            masked_repr = None if represented is None else masker.mask(represented)
        if masked_shown == shown and masked_repr == represented:
            return value
        return cls(masked_shown or REPLACEMENT, masked_repr or REPLACEMENT)

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr

    def __format__(self, spec: str) -> str:
        return format(self._str, spec)


def _mask_once(record: logging.LogRecord) -> None:
    """Mask a record with the default masker, unless done since the last value was registered.

    A record that cannot be masked (a ``__str__`` that raises half-way) is
    withheld: its text is replaced, never passed on unmasked.
    """
    generation = default_masker.generation
    done = record.__dict__.get(_DONE)
    if isinstance(done, tuple) and done[0] is _PROCESS and done[1] == generation:
        return
    try:
        mask_record(record)
    except Exception:
        record.msg, record.args, record.exc_info, record.exc_text = _WITHHELD, None, None, None
        record.stack_info = None
        for name in [name for name in vars(record) if name not in _STANDARD and name not in _OWN]:
            setattr(record, name, REPLACEMENT)
    record.__dict__[_DONE] = (_PROCESS, generation)


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


def _register_unpickled(value: SecretValue[Any]) -> None:
    register(value, label="unpickled")


# Unpickled SecretValues are registered here, in the process that unpickles them.
_values._on_unpickle = _register_unpickled


def register(value: str | bytes | SecretValue[Any], *, label: str | None = None) -> None:
    """Register a value with the process-wide masker (the chain does this for you).

    ``label`` names where the value came from, for the warning about values
    too short to mask.
    """
    default_masker.add(value, label=label)


# -- holding records back while a source fetches ----------------------------------------

_HELD: ContextVar[list[logging.LogRecord] | None] = ContextVar("authchain_held_records", default=None)


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
        _mask_once(record)
        logger = logging.getLogger() if record.name == "root" else logging.getLogger(record.name)
        with contextlib.suppress(Exception):
            logger.handle(record)


class _RecordFilter(logging.Filter):
    """On every logger that made a record since masking was installed: mask it, or hold it.

    A logger filter runs after ``extra=`` fields are set on the record and
    before any handler sees it. Handlers mask again at output (see
    :func:`_install_output_masking`), which costs nothing for a record
    masked here unless a value was registered in between.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        mark = record.__dict__.pop(_MARK, None)
        if mark is None:  # not made through our factory (logging.makeLogRecord)
            return True
        if isinstance(mark, list):  # made during a fetch: wait for its values (see holding)
            mark.append(record)
            return False
        _mask_once(record)
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


def _masked_handle(handle: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(handle)
    def masked(self: Any, record: logging.LogRecord) -> Any:
        _mask_once(record)
        return handle(self, record)

    masked._authchain_masks = True  # type: ignore[attr-defined]
    return masked


def _masked_format(format_record: Callable[..., Any]) -> Callable[..., Any]:
    """``Handler.format``/``Formatter.format`` whose text is masked when the record holds objects.

    The record is masked first (once per registered value, as at ``handle``),
    so a formatter used on its own, outside any handler, masks too.
    """
    import functools

    @functools.wraps(format_record)
    def masked(self: Any, record: logging.LogRecord) -> Any:
        _mask_once(record)
        text = format_record(self, record)
        maskers = record.__dict__.get(_OPAQUE)
        if isinstance(text, str) and isinstance(maskers, tuple):
            for masker in maskers:
                if isinstance(masker, Masker):
                    text = masker.mask(text)
        return text

    masked._authchain_masks = True  # type: ignore[attr-defined]
    return masked


# The methods masking at output wraps, on each class and every subclass.
_WRAPPED: tuple[tuple[type[Any], str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    (logging.Handler, "handle", _masked_handle),
    (logging.Handler, "format", _masked_format),
    (logging.Formatter, "format", _masked_format),
)


def _wrap_own(cls: type[Any]) -> None:
    """Wrap the methods of :data:`_WRAPPED` that ``cls`` defines itself."""
    for base, name, wrapper in _WRAPPED:
        if issubclass(cls, base):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_authchain_masks", False):
                setattr(cls, name, wrapper(method))


def _install_output_masking() -> None:
    """Make every handler mask a record before its filters and ``emit`` see it.

    Masking at the point of output is what holds whatever path a record took:
    a logger's handlers, a ``QueueListener`` or a socket receiver handing a
    record made by ``logging.makeLogRecord`` straight to a handler, handlers
    created after this call. ``logging.Handler.handle`` is wrapped, and so is
    ``handle`` on every handler class that overrides it, now or in a class
    defined later (through ``__init_subclass__``), plus ``Logger.callHandlers``.
    ``format`` of every handler and formatter class is wrapped the same way: a
    ``{``-style formatter reaches an object through ``__format__``, ``.attr``
    and ``[key]``, which no field walk can judge (see :func:`_reaches_objects`).
    Call with ``_install_lock`` held.
    """
    for root in (logging.Handler, logging.Formatter):
        pending: list[type[Any]] = [root]
        while pending:
            cls = pending.pop()
            pending.extend(cls.__subclasses__())
            _wrap_own(cls)
        _wrap_subclasses_defined_later(root)
    calls = logging.Logger.__dict__["callHandlers"]
    if not getattr(calls, "_authchain_masks", False):
        logging.Logger.callHandlers = _masked_handle(calls)  # type: ignore[method-assign]


def _wrap_subclasses_defined_later(root: type[Any]) -> None:
    previous = root.__dict__.get("__init_subclass__")

    def init_subclass(cls: type[Any], /, **kwargs: Any) -> None:
        if previous is not None:
            previous.__get__(None, cls)(**kwargs)
        else:
            super(root, cls).__init_subclass__(**kwargs)
        _wrap_own(cls)

    root.__init_subclass__ = classmethod(init_subclass)  # type: ignore[assignment]


def _install_process_wide() -> None:
    """The record factory (holding) and masking at output, once per process; no handler filters.

    What Secret tasks install: it changes no handler object (a test runner's
    shared capture handlers included), and masks every handler anyway.
    """
    global _previous_factory
    with _install_lock:
        if _previous_factory is None:
            _previous_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_masking_factory)
            _install_output_masking()


def install_log_masking(logger: logging.Logger | None = None) -> MaskingFilter:
    """Mask every secret value resolved in this process in log output.

    Installs (once) masking at the point of output: every handler, including
    ones created later and ones fed by queue listeners or socket receivers,
    masks a record before its filters and ``emit`` see it (message,
    arguments, ``extra`` fields, exception and stack text). It also installs
    a log-record factory that puts a filter on every logger that makes a
    record, which holds back records an SDK makes while a source fetches
    (see :func:`holding`); and attaches a :class:`MaskingFilter` to every
    handler of ``logger`` (root by default) and, when Prefect is already
    imported, of Prefect's loggers. It never imports Prefect itself.

    Example:
        >>> import authchain
        >>> masking_filter = authchain.install_log_masking()
    """
    _install_process_wide()
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
