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

__all__ = ["REDACTED", "looks_like_a_credential", "redact_url_passwords"]

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


_shapes: re.Pattern[str] | None = None

# Credential-bearing URL query parameters: OAuth's access_token, signed URLs
# (S3's X-Amz-Signature/Credential, GCS's X-Goog-Signature, Azure SAS's sig).
_QUERY_CREDENTIALS = (
    r"access_token|token|api_?key|apikey|key|secret|password|passwd|pwd|sig|signature|"
    r"x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|client_secret"
)
# Token formats that say what they are whatever variable holds them.
_ANNOUNCED_FORMATS = (
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{16,}|xox[abposr]-[\w-]{10,}"
    r"|(?:sk|rk)_(?:live|test)_\w{10,}|sk-[\w-]{20,}|(?:AKIA|ASIA)[A-Z0-9]{16}|AIza[\w-]{30,}"
    r"|hv[sb]\.[\w-]{20,}|npm_[A-Za-z0-9]{30,}|pypi-[\w-]{30,}|glsa_\w{20,}|dop_v1_[a-f0-9]{30,}"
)


def looks_like_a_credential(text: str) -> bool:
    """Whether ``text`` has the shape of a credential, whatever name it goes under.

    For places that refuse literal credentials (the Dask worker plugin's
    ``env``, ``lazy()``'s arguments): a name is a weak signal (``APP_SETTING``
    may hold a GitHub token), so the value's shape counts too. A URL with a
    password or a user part (``https://key@sentry``), a credential in a URL's
    query (``?access_token=``, a signed S3/GCS URL, an Azure SAS ``sig=``), a
    chat webhook URL (the path is the secret), a PEM block, a JWT, an
    ``Authorization`` value (``Bearer ...``, ``Basic ...``) and the token
    formats that announce themselves (``ghp_``, ``glpat-``, ``xoxb-``,
    ``sk_live_``, ``AKIA...``, ``hvs.`` and friends). Never raises, never
    quotes: callers name the setting, not the value.
    """
    global _shapes
    if _shapes is None:
        _shapes = re.compile(
            r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*@"  # a user part (and maybe a password)
            rf"|(?:^|[?&;])(?:{_QUERY_CREDENTIALS})=[^&\s]"
            r"|hooks\.slack\.com/|/api/webhooks/|webhook\.office\.com/|outlook\.office\.com/webhook"
            r"|-----BEGIN [A-Z ]*(?:PRIVATE KEY|CERTIFICATE|PGP)"
            r"|\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"
            r"|^\s*(?:Bearer|Basic|Token|Digest|Negotiate)\s+\S{8,}"
            rf"|(?<![A-Za-z0-9])(?:{_ANNOUNCED_FORMATS})",
            re.IGNORECASE,
        )
    return _shapes.search(text) is not None
