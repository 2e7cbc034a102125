"""The masker covers the encodings programs print, and leaves short values (and the text around them) alone.

Forms: raw, JSON-escaped, URL-encoded (upper- and lower-case hex escapes),
base64 standard and URL-safe, padded or not, and at each of the three byte
offsets inside a longer base64 string (HTTP Basic's ``user:PW``, which
``curl -v -u`` prints), hex in both cases. Each is checked through
``mask()``, ``mask_bytes()``, a log record, and ``authchain run``'s output of a
child that prints it, with a fresh canary; "masked" means no decoding of
what is left gives the value back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import pytest

from authchain import Chain, masking
from authchain.masking import MIN_LENGTH, Masker
from authchain.testing import MemorySource, canary
from authchain.testing.contract import assert_not_leaked

ROOT = Path(__file__).resolve().parents[2]
AWKWARD = '/p@ss w+rd&x=1?"q"<a>(!*~)\\\u00e9'


def _lower_escapes(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), text)


def _at_offset(encode: Callable[[bytes], bytes], prefix: str, suffix: str = "") -> Callable[[str], str]:
    return lambda v: encode(f"{prefix}{v}{suffix}".encode()).decode()


FORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "json-escaped": lambda v: json.dumps(v)[1:-1],
    "url-encoded, %2F": lambda v: quote(v, safe=""),
    "url-encoded, %2f": lambda v: _lower_escapes(quote(v, safe="")),
    "url-encoded path (/ kept)": lambda v: quote(v),
    "encodeURIComponent (JavaScript: ! * ' ( ) kept)": lambda v: quote(v, safe="!*'()"),
    "form-encoded, ~ escaped (PHP urlencode)": lambda v: quote_plus(v, safe="").replace("~", "%7E"),
    "URLSearchParams (JavaScript: * kept, ~ escaped)": lambda v: quote_plus(v, safe="*").replace("~", "%7E"),
    "form-encoded, %2F": lambda v: quote_plus(v, safe=""),
    "form-encoded, %2f": lambda v: _lower_escapes(quote_plus(v, safe="")),
    "json, / escaped (PHP)": lambda v: json.dumps(v)[1:-1].replace("/", "\\/"),
    "json, upper-case \\u escapes": lambda v: re.sub(
        r"\\u[0-9a-f]{4}", lambda e: "\\u" + e.group()[2:].upper(), json.dumps(v)[1:-1]
    ),
    "json, non-ASCII kept, & < > escaped (Go, Rails)": lambda v: (
        json.dumps(v, ensure_ascii=False)[1:-1]
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
    ),
    "json, .NET's default encoder": lambda v: "".join(
        f"\\u{ord(c):04X}" if c in "&<>'=+`" or not c.isascii() else c
        for c in json.dumps(v, ensure_ascii=False)[1:-1]
    ),
    "hex": lambda v: v.encode().hex(),
    "HEX": lambda v: v.encode().hex().upper(),
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "base64 unpadded": lambda v: base64.b64encode(v.encode()).decode().rstrip("="),
    "urlsafe base64": lambda v: base64.urlsafe_b64encode(v.encode()).decode(),
}
for _name, _encode in {"base64": base64.b64encode, "urlsafe base64": base64.urlsafe_b64encode}.items():
    for _prefix in ("", "u", "us", "user:", "admin:", "x" * 7):
        for _suffix in ("", "!", "\n", "...."):
            FORMS[f"{_name} of {_prefix!r} + value + {_suffix!r}"] = _at_offset(_encode, _prefix, _suffix)


def recovered(value: str, text: str) -> bool:
    """The value in ``text``: raw, unescaped, or inside any decodable base64 or hex run."""
    raw = value.encode()
    candidates = [text, unquote(text), unquote(text.replace("+", " "))]
    with contextlib.suppress(ValueError):
        candidates.append(json.loads(f'"{text}"'))
    if any(value in candidate for candidate in candidates):
        return True
    for run in re.findall(r"[A-Za-z0-9+/_-]{8,}", text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            for start in range(4):
                piece = run[start:]
                try:
                    if raw in decode(piece + "=" * (-len(piece) % 4)):
                        return True
                except ValueError:
                    pass
    for run in re.findall(r"[0-9A-Fa-f]{16,}", text):
        for start in (0, 1):
            piece = run[start:]
            piece = piece[: len(piece) // 2 * 2]
            if raw in bytes.fromhex(piece):
                return True
    return False


def test_the_leak_check_finds_every_form_unmasked() -> None:
    """Else the tests below would prove nothing."""
    value = canary() + AWKWARD
    for form, encode in FORMS.items():
        assert recovered(value, f"<{encode(value)}>"), form


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_is_masked_in_text_and_bytes(form: str) -> None:
    value = canary() + AWKWARD
    masker = Masker()
    masker.add(value)
    shown = f"<{FORMS[form](value)}>"
    masked = masker.mask(shown)
    assert "***" in masked, form
    assert not recovered(value, masked), f"the {form} form was not masked"
    masked_bytes = masker.mask_bytes(shown.encode()).decode()
    assert masked_bytes == masked, f"the {form} form, as bytes"


CHARSETS = ("utf-16-le", "utf-16", "latin-1", "cp1252")  # "utf-16": with a BOM, little-endian here


@pytest.mark.parametrize("charset", CHARSETS)
def test_output_in_other_charsets_is_masked(charset: str) -> None:
    """A program that writes UTF-16 (Windows programs, PowerShell) or Latin-1 bytes
    (``authchain run``'s child, ``%r`` of bytes in a log record)."""
    value = canary() + "-\u00e9t\u00e9"
    masker = Masker()
    masker.add(value)
    shown = f"[{value}]\n".encode(charset)
    masked = masker.mask_bytes(shown)
    assert value.encode(charset).removeprefix(b"\xff\xfe").removeprefix(b"\xfe\xff") not in masked, charset
    assert b"***" in masked
    pending, output = b"", b""
    pieces = (shown[:7], shown[7:19], shown[19:])  # cut inside the value, as a pipe does
    for number, piece in enumerate(pieces, 1):
        pending += piece
        out, consumed = masker.mask_stream(pending, final=number == len(pieces))
        output, pending = output + out, pending[consumed:]
    assert output == masked, f"{charset}, streamed in pieces"


@pytest.mark.parametrize("length", [8, 9, 10, 11, 12, 40])
def test_base64_at_every_offset_for_every_length_mod_three(length: int) -> None:
    value = (canary() * 4)[-length:]
    masker = Masker()
    masker.add(value)
    for prefix in ("", "a", "ab", "abc"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            shown = encode(f"{prefix}{value}tail".encode()).decode()
            assert not recovered(value, masker.mask(shown)), (prefix, length)


def test_values_the_chain_resolves_are_masked_in_every_form_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    value = canary() + AWKWARD
    Chain([MemorySource({"ENCODED_TOKEN": value})]).resolve("ENCODED_TOKEN")
    masking.install_log_masking()
    logger = logging.getLogger("hardening.encodings")
    with caplog.at_level(logging.DEBUG, logger="hardening.encodings"):
        for form, encode in FORMS.items():
            logger.debug("%s: [%s]", form, encode(value))
    assert len(caplog.records) == len(FORMS)
    for record in caplog.records:
        assert not recovered(value, record.getMessage()), record.getMessage()


def test_run_masks_every_form_in_the_childs_output(tmp_path: Path) -> None:
    value = canary("run") + AWKWARD.replace('"', "").replace("\\", "")
    (tmp_path / ".env").write_text(f"APP_ENC_SOURCE='{value}'\n")
    child = (
        "import base64, json, os, sys; from urllib.parse import quote\n"
        "v = os.environ['APP_ENC']; b = v.encode()\n"
        "lines = [v, json.dumps(v), quote(v, safe=''), quote(v, safe='').lower(), b.hex(), b.hex().upper()]\n"
        "for p in ('', 'u', 'us', 'user:'):\n"
        "    lines += [base64.b64encode((p + v + '!').encode()).decode(),\n"
        "              base64.urlsafe_b64encode((p + v).encode()).decode()]\n"
        "sys.stdout.write('\\n'.join(lines) + '\\n')\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHCHAIN_", "APP_"))}
    environment.update(PYTHONPATH=str(ROOT), APP_ENC="dotenv://.env#APP_ENC_SOURCE")
    result = subprocess.run(
        [sys.executable, "-m", "authchain.cli", "run", "--", sys.executable, "-c", child],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 14, "the child printed every form"
    for line in lines:
        assert "***" in line
        assert not recovered(value, line), "a form of the value reached the child's output"


# -- values too short to mask ---------------------------------------------------------


def test_a_short_value_is_not_masked_and_the_text_around_it_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    masker = Masker()
    with caplog.at_level(logging.WARNING, logger="authchain.masking"):
        masker.add("INFO", label="vault")
    assert len(masker) == 0
    assert masker.mask("INFORMATION: INFO") == "INFORMATION: INFO"
    assert masker.mask_bytes(b"INFORMATION") == b"INFORMATION"
    warnings = [record for record in caplog.records if record.name == "authchain.masking"]
    assert len(warnings) == 1
    assert "vault" in warnings[0].getMessage()
    assert f"shorter than {MIN_LENGTH} characters" in warnings[0].getMessage()
    assert "INFO" not in warnings[0].getMessage()


def test_the_warning_names_the_source_once_and_never_the_value(caplog: pytest.LogCaptureFixture) -> None:
    short = canary()[-7:]  # 7 characters: one short of the line
    other = canary()[-5:]
    masker = Masker()
    with caplog.at_level(logging.WARNING, logger="authchain.masking"):
        masker.add(short, label="aws-sm")
        masker.add(short, label="aws-sm")
        masker.add(other, label="aws-sm")
        masker.add(other, label="env")
        masker.add("", label="empty")  # an empty value is not a secret worth a warning
    messages = [record.getMessage() for record in caplog.records if record.name == "authchain.masking"]
    assert len(messages) == 2, messages
    assert "aws-sm" in messages[0]
    assert "env" in messages[1]
    for message in messages:
        assert_not_leaked(short, message, "the short-value warning")
        assert_not_leaked(other, message, "the short-value warning")


def test_a_short_value_resolved_by_the_chain_is_warned_about_by_source_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    short = canary()[-6:]
    source = MemorySource({"PIN": short}, name=f"pins-{canary()[-6:]}")
    with caplog.at_level(logging.WARNING, logger="authchain.masking"):
        assert Chain([source]).resolve("PIN").get_secret_value() == short
    messages = [record.getMessage() for record in caplog.records if record.name == "authchain.masking"]
    assert len(messages) == 1, messages
    assert source.name in messages[0]
    assert_not_leaked(short, messages[0], "the short-value warning")


def test_the_line_is_eight_characters() -> None:
    masker = Masker()
    masker.add("ABCDEFG")
    masker.add("abcdefgh")
    assert masker.mask("ABCDEFGHIJ abcdefgh") == "ABCDEFGHIJ ***"


@pytest.mark.parametrize("length", [8, 9, 10, 24, 25, 26])
def test_base64_at_an_offset_keeps_no_character_that_depends_on_the_value(length: int) -> None:
    """The characters around the masked middle that share bits with the value's first and
    last bytes are masked too: two different values leave exactly the same text."""
    value = (canary() * 4)[-length:]
    other = "~~" + value[2:-2] + "~~"  # differs in the first and last two bytes
    masker = Masker()
    masker.add(value)
    masker.add(other)
    for prefix in ("", "a", "ab", "user:", "admin:"):
        for suffix in ("", "!", "ab", "tail"):
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                shown = [encode(f"{prefix}{v}{suffix}".encode()).decode() for v in (value, other)]
                masked = [masker.mask(f"Basic {text}") for text in shown]
                assert masked[0] == masked[1], (prefix, suffix, masked)
                assert "***" in masked[0]
