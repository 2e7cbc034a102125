"""Replace known secret values with ``***`` in text, log records and child output.

Every value the chain resolves is registered here (values of 4+ characters),
together with the encoded forms it most often leaks in: base64, URL-encoding
and JSON string escaping. The registry is write-only from the outside: it has
no accessor, its repr shows a count, and it refuses to pickle.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

from authchain.values import SecretValue

__all__ = ["MIN_LENGTH", "Masker", "MaskingFilter", "install_log_masking", "register"]

MIN_LENGTH = 4
REPLACEMENT = "***"


class Masker:
    """A set of values to hide, and the functions that hide them."""

    def __init__(self, min_length: int = MIN_LENGTH) -> None:
        self._min_length = min_length
        self.__forms: set[str] = set()
        self.__pattern: re.Pattern[str] | None = None
        self.__bytes_pattern: re.Pattern[bytes] | None = None
        self._lock = threading.Lock()

    def add(self, value: str | bytes | SecretValue[Any]) -> None:
        """Register a value and its encoded forms (shorter than ``min_length``: ignored)."""
        plain: str | bytes = value.get_secret_value() if isinstance(value, SecretValue) else value
        text = plain.decode("utf-8", "replace") if isinstance(plain, bytes) else plain
        raw = plain if isinstance(plain, bytes) else plain.encode("utf-8", "surrogatepass")
        if len(text) < self._min_length:
            return
        forms = {
            text,
            quote(text, safe=""),
            quote_plus(text, safe=""),
            json.dumps(text)[1:-1],
            base64.b64encode(raw).decode(),
            base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
        }
        forms = {form for form in forms if len(form) >= self._min_length}
        with self._lock:
            if forms <= self.__forms:
                return
            self.__forms |= forms
            self.__pattern = None
            self.__bytes_pattern = None

    def _text_pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self.__pattern is None and self.__forms:
                ordered = sorted(self.__forms, key=len, reverse=True)
                self.__pattern = re.compile("|".join(map(re.escape, ordered)))
            return self.__pattern

    def _bytes_pattern(self) -> re.Pattern[bytes] | None:
        with self._lock:
            if self.__bytes_pattern is None and self.__forms:
                ordered = sorted(
                    (f.encode("utf-8", "surrogatepass") for f in self.__forms), key=len, reverse=True
                )
                self.__bytes_pattern = re.compile(b"|".join(map(re.escape, ordered)))
            return self.__bytes_pattern

    def mask(self, text: str) -> str:
        """Return ``text`` with every registered form replaced by ``***``."""
        pattern = self._text_pattern()
        return text if pattern is None else pattern.sub(REPLACEMENT, text)

    def mask_bytes(self, data: bytes) -> bytes:
        pattern = self._bytes_pattern()
        return data if pattern is None else pattern.sub(REPLACEMENT.encode(), data)

    def __len__(self) -> int:
        with self._lock:
            return len(self.__forms)

    def __repr__(self) -> str:
        return f"<Masker: {len(self)} masked forms>"

    def __reduce__(self) -> Any:
        # Travelling in a pickle would carry every registered value with it.
        return (type(self), (self._min_length,))


class MaskingFilter(logging.Filter):
    """A logging filter that masks the message, its arguments and exception text."""

    def __init__(self, masker: Masker | None = None) -> None:
        super().__init__()
        self.masker = masker or default_masker

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.masker.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.masker.mask(record.exc_text)
        return True


default_masker = Masker()


def register(value: str | bytes | SecretValue[Any]) -> None:
    """Register a value with the process-wide masker (the chain does this for you)."""
    default_masker.add(value)


def install_log_masking(logger: logging.Logger | None = None) -> MaskingFilter:
    """Attach the process-wide masking filter to every handler of ``logger`` (root by default).

    Handler filters, not logger filters, see records propagated from child
    loggers, so the filter goes on handlers.
    """
    target = logger or logging.getLogger()
    masking_filter = MaskingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(masking_filter)
    return masking_filter
