"""Redact the password of a URL (``https://user:PW@host`` → ``https://user:***@host``).

Server addresses are settings, so they appear in ``authchain config`` and
``check`` output, in error messages and in reprs; a password written into
one (``url = "https://admin:PW@vault"``) must not come along. Everything that
shows text which may hold a URL passes it through :func:`redact_url_passwords`.
When in doubt the pattern redacts more (from the first ``:`` after the user
to the last ``@`` of the word), never less.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redact_url_passwords"]

REDACTED = "***"

_pattern: re.Pattern[str] | None = None


def redact_url_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    if "@" not in text or "://" not in text:  # the common case: nothing to do, no regex
        return text
    global _pattern
    if _pattern is None:  # compiled on first use: import time matters (see authchain.refs)
        _pattern = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:'\"]*):[^\s'\"]*@")
    return _pattern.sub(rf"\1:{REDACTED}@", text)
