"""``authchain run`` masks the child's output however the child cuts its writes (issue 13, items 1-2).

Every test plants fresh values in a ``.env`` of its own, hands them to a real
child through ``VAR=dotenv://.env#NAME`` and checks the bytes that come out
of ``authchain run``: the value (and its encoded forms) never appears, the
text around it does, byte for byte.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from urllib.parse import quote

import pytest

from authchain._run import pump
from authchain.masking import Masker
from tests.cli_run._helpers import RUN, child, clean_environment, run

# The child's writer: WRITES is a JSON list of [stream, text, pause-after] items,
# each written with one os.write and followed by the pause (seconds).
WRITER = """
import json, os, sys, time
for stream, text, pause in json.loads(os.environ["WRITES"]):
    os.write(1 if stream == "out" else 2, text.encode("utf-8"))
    time.sleep(pause)
sys.exit(int(os.environ.get("CODE", "0")))
"""


def project(tmp_path: Path, **values: str) -> Path:
    """A project folder whose .env holds ``values``."""
    lines = [f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in values.items()]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def forms(value: str) -> dict[str, str]:
    """The forms a value leaks in that the masker covers, each checked on its own."""
    raw = value.encode()
    return {
        "raw": value,
        "base64": base64.b64encode(raw).decode(),
        "urlsafe-base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "url": quote(value, safe=""),
        "json": json.dumps(value)[1:-1],
    }


def run_writes(
    folder: Path, writes: list[tuple[str, str, float]], **env: str
) -> subprocess.CompletedProcess[bytes]:
    environment = {"SECRET_VALUE": "dotenv://.env#SECRET", "WRITES": json.dumps(writes), **env}
    return run(folder, *child(WRITER), env=environment)


def split_cases(text: str) -> dict[str, list[tuple[str, float]]]:
    """The ways a child may cut ``text``: (piece, pause after it) lists."""
    middle = len(text) // 2
    return {
        "one write": [(text, 0.0)],
        "two writes 300 ms apart": [(text[:middle], 0.3), (text[middle:], 0.0)],
        "one character at a time": [(char, 0.002) for char in text],
    }


@pytest.mark.parametrize("form", ["raw", "base64", "urlsafe-base64", "url", "json"])
@pytest.mark.parametrize("stream", ["out", "err"])
def test_a_value_split_any_way_never_comes_out(tmp_path: Path, form: str, stream: str) -> None:
    value = secrets.token_hex(16) + "/+é"  # characters that differ between the forms
    folder = project(tmp_path, SECRET=value)
    shown = forms(value)[form]
    for case, pieces in split_cases(f"before {shown} after\n").items():
        result = run_writes(folder, [(stream, piece, pause) for piece, pause in pieces])
        assert result.returncode == 0, result.stderr
        output = result.stdout if stream == "out" else result.stderr
        assert output == b"before *** after\n", (case, output)
        for leaked in forms(value).values():
            assert leaked.encode() not in result.stdout + result.stderr, case


def test_block_buffered_output_with_a_boundary_inside_the_value(tmp_path: Path) -> None:
    """8 KiB blocks (C stdio to a pipe), the value cut by the block edge, a pause between blocks."""
    value = secrets.token_hex(20)
    folder = project(tmp_path, SECRET=value)
    for cut in (1, len(value) // 2, len(value) - 1):
        text = "x" * (8192 - cut) + value + "y" * 100
        blocks = [text[:8192], text[8192:]]
        result = run_writes(folder, [("out", block, 0.3) for block in blocks])
        assert result.returncode == 0, result.stderr
        assert result.stdout == ("x" * (8192 - cut) + "***" + "y" * 100).encode(), cut


def test_values_with_spaces_newlines_and_non_ascii_split_char_by_char(tmp_path: Path) -> None:
    """The held tail does not stop at a space or a newline when the value itself has them."""
    spaced = f"correct horse {secrets.token_hex(4)} staple"
    multiline = f"-----BEGIN KEY-----\n{secrets.token_hex(12)}\n-----END KEY-----"
    accented = f"pässwörd-{secrets.token_hex(6)}"
    folder = project(tmp_path, SECRET=spaced, OTHER=multiline, THIRD=accented)
    env = {"OTHER_VALUE": "dotenv://.env#OTHER", "THIRD_VALUE": "dotenv://.env#THIRD"}
    for value in (spaced, multiline, accented):
        text = f"[{value}]\n"
        result = run_writes(folder, [("out", char, 0.001) for char in text], **env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"[***]\n"


def test_a_prompt_without_newline_shows_before_the_child_reads(tmp_path: Path) -> None:
    """No idle timer any more: all but the held tail is written at once; a trailing space holds nothing."""
    value = secrets.token_hex(16)
    folder = project(tmp_path, SECRET=value)
    code = (
        "import sys; sys.stdout.write('Password for alice: '); sys.stdout.flush(); "
        "line = sys.stdin.readline(); print('got', len(line.strip()))"
    )
    process = subprocess.Popen(
        [*RUN, *child(code)],
        cwd=folder,
        env=clean_environment({"SECRET_VALUE": "dotenv://.env#SECRET"}),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while not seen.endswith(b"Password for alice: "):
            assert time.monotonic() < deadline, seen
            seen += os.read(process.stdout.fileno(), 100)
        process.stdin.write(b"hunter\n")
        process.stdin.close()
        rest = process.stdout.read()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert rest == b"got 6\n"


def test_exit_code_and_no_masking_still_work(tmp_path: Path) -> None:
    value = secrets.token_hex(16)
    folder = project(tmp_path, SECRET=value)
    masked = run_writes(folder, [("out", f"v={value}\n", 0.0)], CODE="7")
    assert masked.returncode == 7
    assert masked.stdout == b"v=***\n"
    plain = run(
        folder,
        "--no-masking",
        *child(WRITER),
        env={"SECRET_VALUE": "dotenv://.env#SECRET", "WRITES": json.dumps([["out", f"v={value}\n", 0]])},
    )
    assert plain.returncode == 0
    assert plain.stdout == f"v={value}\n".encode()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_reaches_the_child_and_its_output_is_still_masked(tmp_path: Path) -> None:
    value = secrets.token_hex(16)
    folder = project(tmp_path, SECRET=value)
    code = (
        "import os, signal, sys, time\n"
        "def bye(signum, frame):\n"
        "    sys.stdout.write('term ' + os.environ['SECRET_VALUE'] + '\\n')\n"
        "    sys.stdout.flush()\n"
        "    sys.exit(5)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [*RUN, *child(code)],
        cwd=folder,
        env=clean_environment({"SECRET_VALUE": "dotenv://.env#SECRET"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline() == b"ready\n"
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 5
    assert out == b"term ***\n"


# -- the streaming masker itself: any cut gives what masking the whole gives -------------


def _stream(masker: Masker, chunks: list[bytes]) -> bytes:
    out, held = [], b""
    for chunk in chunks:
        data = held + chunk
        masked, consumed = masker.mask_stream(data)
        assert len(data) - consumed <= max(masker.longest_form() - 1, 0)
        out.append(masked)
        held = data[consumed:]
    out.append(masker.mask_stream(held, final=True)[0])
    return b"".join(out)


def _exhaustive(masker: Masker, data: bytes) -> bytes:
    """The reference: every position fingerprinted, no pre-filter (the text scanner on Latin-1)."""
    return masker._scan(data.decode("latin-1"), lambda piece: piece.encode("latin-1")).encode("latin-1")


@pytest.mark.parametrize("sizes", [(6, 24), (12, 40)], ids=["short values", "long values (sampled)"])
def test_mask_stream_matches_masking_the_whole_output_for_any_cut(sizes: tuple[int, int]) -> None:
    rng = secrets.SystemRandom()
    for _ in range(150):
        masker = Masker()
        # token_urlsafe(6) is 8 characters: the shortest value the masker masks (MIN_LENGTH)
        values = [secrets.token_urlsafe(rng.randint(*sizes)) for _ in range(rng.randint(1, 3))]
        values.append(f"with space é {secrets.token_hex(sizes[0])}")
        for value in values:
            masker.add(value)
        parts = []
        for _ in range(rng.randint(1, 12)):
            pick = rng.random()
            if pick < 0.35:
                parts.append(rng.choice(values).encode())
            elif pick < 0.55:
                parts.append(rng.choice(values).encode()[: rng.randint(1, 8)])  # a prefix that is not a value
            elif pick < 0.65:
                parts.append(os.urandom(rng.randint(0, 40)))
            elif pick < 0.75:  # HTTP Basic style: the value at any offset inside longer base64
                inner = (
                    os.urandom(rng.randint(0, 5))
                    + rng.choice(values).encode()
                    + os.urandom(rng.randint(0, 5))
                )
                parts.append(base64.b64encode(inner))
            else:
                parts.append(b"log line " * rng.randint(0, 3) + b"\n")
        data = b"".join(parts)
        whole = masker.mask_bytes(data)
        assert whole == _exhaustive(masker, data)
        for value in values:
            assert value.encode() not in whole
        bytewise = [data[i : i + 1] for i in range(len(data))]
        cuts = sorted(rng.sample(range(1, len(data)), min(5, max(len(data) - 1, 0)))) if len(data) > 1 else []
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert _stream(masker, bytewise) == whole
        assert _stream(masker, pieces) == whole
        assert _stream(masker, [data]) == whole


def _printed_forms(value: str) -> list[bytes]:
    """Every form the masker promises to cover, as a program would print it: the forms of
    tests/hardening/test_encodings.py (base64 at other offsets left to that file), repr's
    escapes, and UTF-16 as Windows programs write it."""
    from tests.hardening.test_encodings import FORMS

    forms = [encode(value).encode() for name, encode in FORMS.items() if " of " not in name]
    return [*forms, repr(value)[1:-1].encode(), value.encode("utf-16-le")]


def test_mask_stream_hides_every_encoded_form_for_any_cut() -> None:
    """The siblings of the raw value (every form test_encodings.py checks in text: hex,
    URL and form encodings as each language writes them, JSON escapes as PHP, Go and .NET
    write them, base64; repr escapes; UTF-16), for values that start or end with a newline, a
    space or a tab: cut anywhere, even byte by byte, the stream gives what masking the whole
    gives, and no form is left."""
    rng = secrets.SystemRandom()
    edges = ["", "\n", " ", "\t", ' é/+"', "ü\\x", "/=&?", "\r\n x"]
    for _ in range(150):
        masker = Masker()
        values = [
            rng.choice(edges[:4]) + secrets.token_urlsafe(rng.randint(6, 24)) + rng.choice(edges)
            for _ in range(rng.randint(1, 3))
        ]
        for value in values:
            masker.add(value)
        parts = []
        for _ in range(rng.randint(1, 10)):
            pick = rng.random()
            if pick < 0.6:
                parts.append(rng.choice(_printed_forms(rng.choice(values))))
            elif pick < 0.7:
                parts.append(os.urandom(rng.randint(0, 30)))
            else:
                parts.append(b"line text\n")
        data = b"".join(parts)
        whole = masker.mask_bytes(data)
        for value in values:
            for form in _printed_forms(value):
                assert form not in whole
        cuts = sorted(rng.sample(range(1, len(data)), min(6, len(data) - 1))) if len(data) > 1 else []
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert _stream(masker, [data[i : i + 1] for i in range(len(data))]) == whole
        assert _stream(masker, pieces) == whole


def test_pump_streams_output_without_newlines_in_bounded_memory_and_bounded_chunks() -> None:
    """Item 2: 48 MB of binary output; the pump's peak memory stays a few MB and each
    masking call sees one read plus a tail shorter than the longest form (linear work)."""
    masker = Masker()
    value = secrets.token_hex(16)
    masker.add(value)
    calls: list[int] = []
    original = masker.mask_stream

    def counting(data: bytes, *, final: bool = False) -> tuple[bytes, int]:
        calls.append(len(data))
        return original(data, final=final)

    masker.mask_stream = counting  # type: ignore[method-assign]
    block = os.urandom(1 << 16).replace(b"\n", b"_")
    total = 48 * (1 << 20)
    read_end, write_end = os.pipe()
    received = [0]
    planted = b"A" * 10 + value.encode() + b"B" * 10

    class Sink:
        class buffer:  # stands in for sys.stdout.buffer
            @staticmethod
            def write(data: bytes) -> int:
                received[0] += len(data)
                assert value.encode() not in data
                return len(data)

            @staticmethod
            def flush() -> None:
                return None

    def feed() -> None:
        with os.fdopen(write_end, "wb") as writer:
            sent = 0
            while sent < total:
                writer.write(block)
                sent += len(block)
            writer.write(planted)

    feeder = threading.Thread(target=feed)
    tracemalloc.start()
    try:
        feeder.start()
        with os.fdopen(read_end, "rb", buffering=0) as reader:
            pump(reader, Sink(), masker)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        feeder.join(timeout=120)
    assert received[0] == total + len(planted) - len(value) + 3
    assert peak < 8 * (1 << 20), peak
    assert max(calls) <= (1 << 16) + masker.longest_form()
