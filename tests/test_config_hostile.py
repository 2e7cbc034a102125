"""Hostile config files: each is a ``ConfigError`` (exit 2, one line), never a crash or a hang.

Deep nesting used to end in a ``RecursionError`` traceback (exit 1) from the
TOML parser or from the walks over the parsed data (``${VAR}`` expansion,
``authchain config``'s output, the literal-secret check); invalid UTF-8 in a
``UnicodeDecodeError``; a FIFO or ``/dev/zero`` named as the config blocked
or read forever. Every case is checked through ``Chain.from_config`` and
through the CLI as a real subprocess, with a fresh canary planted in the
file wherever the input allows, to show the message does not quote it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from authchain import Chain, ConfigError
from authchain.config import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH

DEEP = 10_000


def canary() -> str:
    return f"HOSTILE{secrets.token_hex(10)}"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# Each builder gets a folder and a canary and returns the path to name as the config.
Builder = Callable[[Path, str], Path]


def deep_arrays(folder: Path, mark: str) -> Path:
    return write(folder / "authchain.toml", f'x = "{mark}"\ny = '.encode() + b"[" * DEEP + b"]" * DEEP)


def deep_inline_tables(folder: Path, mark: str) -> Path:
    body = b"{a = " * DEEP + f'"{mark}"'.encode() + b"}" * DEEP
    return write(folder / "authchain.toml", b"y = " + body + b"\n")


def deep_dotted_secret(folder: Path, mark: str) -> Path:
    # Dotted keys nest without recursion in the parser: the walks after it must not recurse either.
    key = ".".join(["a"] * 5000)
    return write(folder / "authchain.toml", f'[secrets]\n{key} = "env://{mark}"\n'.encode())


def deep_dotted_client(folder: Path, mark: str) -> Path:
    key = ".".join(["b"] * 5000)
    text = f'[sources.e]\ntype = "env"\n[clients.aws]\n{key} = "{mark}"\n'
    return write(folder / "authchain.toml", text.encode())


def deep_source_option(folder: Path, mark: str) -> Path:
    # Deep enough to pass the parser, too deep for the limit.
    depth = MAX_CONFIG_DEPTH + 5
    value = "[" * depth + f'"{mark}"' + "]" * depth
    return write(folder / "authchain.toml", f'[sources.e]\ntype = "env"\nprefix = {value}\n'.encode())


def deep_in_a_profile(folder: Path, mark: str) -> Path:
    key = ".".join(["c"] * 3000)
    return write(folder / "authchain.toml", f'[profiles.p.clients.vault]\n{key} = "{mark}"\n'.encode())


def deep_in_pyproject(folder: Path, mark: str) -> Path:
    key = ".".join(["d"] * 3000)
    return write(folder / "pyproject.toml", f'[tool.authchain.secrets]\n{key} = "env://{mark}"\n'.encode())


def large(mark: str) -> bytes:
    filler = b"# " + b"x" * 98 + b"\n"
    return f'cache_ttl = 5\nmark = "{mark}"\n'.encode() + filler * (MAX_CONFIG_BYTES // len(filler) + 1)


def too_large(folder: Path, mark: str) -> Path:
    return write(folder / "authchain.toml", large(mark))


def symlink_to_a_large_file(folder: Path, mark: str) -> Path:
    target = write(folder / "big.toml", large(mark))
    link = folder / "authchain.toml"
    link.symlink_to(target)
    return link


def symlink_to_dev_zero(folder: Path, mark: str) -> Path:
    link = folder / "authchain.toml"
    link.symlink_to("/dev/zero")
    return link


def fifo(folder: Path, mark: str) -> Path:
    path = folder / "authchain.toml"
    os.mkfifo(path)
    return path


def directory(folder: Path, mark: str) -> Path:
    path = folder / "authchain.toml"
    path.mkdir()
    return path


def invalid_utf8(folder: Path, mark: str) -> Path:
    return write(folder / "authchain.toml", f'[secrets]\nA = "env://{mark}'.encode() + b'\xff\xfe"\n')


def nul_byte(folder: Path, mark: str) -> Path:
    return write(folder / "authchain.toml", f'[secrets]\nA = "env://{mark}'.encode() + b'\x00"\n')


def duplicate_key(folder: Path, mark: str) -> Path:
    return write(folder / "authchain.toml", f'[secrets]\nA = "env://{mark}"\nA = "env://B"\n'.encode())


def duplicate_table(folder: Path, mark: str) -> Path:
    text = f'[sources.e]\ntype = "env"\nprefix = "{mark}"\n[sources.e]\ntype = "env"\n'
    return write(folder / "authchain.toml", text.encode())


def control_character_key(folder: Path, mark: str) -> Path:
    # An escape sequence in a key would reach every message (and terminal) naming it.
    text = f'[secrets]\n"A\\u001b[2J{mark}" = "env://B"\n'
    return write(folder / "authchain.toml", text.encode())


def empty_secret_name(folder: Path, mark: str) -> Path:
    return write(folder / "authchain.toml", f'[secrets]\n"" = "env://{mark}"\n'.encode())


def padded_source_name(folder: Path, mark: str) -> Path:
    return write(folder / "authchain.toml", f'[sources." e "]\ntype = "env"\nprefix = "{mark}"\n'.encode())


def integer_past_the_parser(folder: Path, mark: str) -> Path:
    # More digits than Python converts from text (a ValueError inside the parser).
    return write(folder / "authchain.toml", f'mark = "{mark}"\ncache_ttl = {"9" * 5000}\n'.encode())


def integer_past_a_float(folder: Path, mark: str) -> Path:
    # Parses, but float() of it overflowed in validation.
    return write(folder / "authchain.toml", f'mark = "{mark}"\ncache_ttl = {"9" * 400}\n'.encode())


def integer_past_64_bits(folder: Path, mark: str) -> Path:
    return write(folder / "authchain.toml", f'mark = "{mark}"\nretries = {2**64}\n'.encode())


def nested_profiles(folder: Path, mark: str) -> Path:
    # Profiles cannot extend or nest: one inside another is refused, not followed.
    return write(folder / "authchain.toml", f'[profiles.p.profiles.q]\nmark = "{mark}"\n'.encode())


CASES: dict[str, Builder] = {
    builder.__name__: builder
    for builder in (
        deep_arrays,
        deep_inline_tables,
        deep_dotted_secret,
        deep_dotted_client,
        deep_source_option,
        deep_in_a_profile,
        deep_in_pyproject,
        too_large,
        symlink_to_a_large_file,
        symlink_to_dev_zero,
        fifo,
        directory,
        invalid_utf8,
        nul_byte,
        duplicate_key,
        duplicate_table,
        control_character_key,
        empty_secret_name,
        padded_source_name,
        integer_past_the_parser,
        integer_past_a_float,
        integer_past_64_bits,
        nested_profiles,
    )
}
PROFILE = {"deep_in_a_profile": "p", "nested_profiles": "p"}
NEEDS = {
    "symlink_to_dev_zero": Path("/dev/zero").exists(),
    "fifo": hasattr(os, "mkfifo"),
    "symlink_to_a_large_file": hasattr(os, "symlink"),
}


def build(name: str, tmp_path: Path) -> tuple[Path, str]:
    if not NEEDS.get(name, True):
        pytest.skip(f"{name} cannot be made on this platform")
    folder = tmp_path / "project"
    folder.mkdir()
    mark = canary()
    return CASES[name](folder, mark), mark


@pytest.mark.parametrize("case", sorted(CASES))
def test_chain_from_config_raises_config_error(case: str, tmp_path: Path) -> None:
    path, mark = build(case, tmp_path)
    with pytest.raises(ConfigError) as raised:
        Chain.from_config(path, profile=PROFILE.get(case), environ={})
    message = str(raised.value)
    assert mark not in message
    assert "\x1b" not in message
    assert len(message) < 600


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_config_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    path, mark = build(case, tmp_path)
    args = [sys.executable, "-m", "authchain.cli", "config", "--config", str(path)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHCHAIN_")}
    if case in PROFILE:
        environment["AUTHCHAIN_PROFILE"] = PROFILE[case]
    # A FIFO that blocked the open would end in this timeout, and fail the test.
    result = subprocess.run(
        args, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 2, result.stderr[-1500:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-1500:]
    assert lines[0].startswith("authchain: error: ")
    assert "Traceback" not in result.stderr
    assert "RecursionError" not in result.stderr
    assert mark not in result.stderr
    assert mark not in result.stdout
    assert "\x1b" not in result.stderr


# -- the limits are where the docs say, and ordinary files are unaffected --------------------


def test_a_file_just_under_the_size_limit_is_read(tmp_path: Path) -> None:
    head = b"cache_ttl = 7\n"
    filler = b"#" * (MAX_CONFIG_BYTES - len(head) - 1) + b"\n"
    path = write(tmp_path / "authchain.toml", head + filler)
    assert path.stat().st_size == MAX_CONFIG_BYTES
    assert Chain.from_config(path, environ={}).cache_ttl == 7


def test_nesting_at_the_limit_is_accepted(tmp_path: Path) -> None:
    # sources.e.prefix is 3 levels; the list inside it may take the rest.
    depth = MAX_CONFIG_DEPTH - 3
    value = "[" * depth + '"P_"' + "]" * depth
    path = write(tmp_path / "authchain.toml", f'[sources.e]\ntype = "env"\nprefix = {value}\n'.encode())
    with pytest.raises(ConfigError, match="must be a string"):  # the type check speaks, not the depth
        Chain.from_config(path, environ={})


def test_a_pyproject_whose_other_tools_nest_deep_is_fine(tmp_path: Path) -> None:
    other = ".".join(["x"] * (MAX_CONFIG_DEPTH + 20))
    text = f"[tool.other]\n{other} = 1\n[tool.authchain]\ncache_ttl = 9\n"
    path = write(tmp_path / "pyproject.toml", text.encode())
    assert Chain.from_config(path, environ={}).cache_ttl == 9


def test_64_bit_integers_are_still_integers(tmp_path: Path) -> None:
    path = write(tmp_path / "authchain.toml", f"retries = {2**63 - 1}\nmax_workers = 3\n".encode())
    # Parsed as the integer it is: what refuses it is the setting's range, not the parser.
    with pytest.raises(ConfigError, match=r"retries must be >= 0 and <= 100$"):
        Chain.from_config(path, environ={})
    path = write(tmp_path / "authchain.toml", b"retries = 100\nmax_workers = 3\n")
    chain = Chain.from_config(path, environ={})
    assert chain.policy.retries == 100
    assert chain.max_workers == 3


def test_a_fifo_named_by_authchain_config_does_not_block(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "authchain.toml"
    os.mkfifo(path)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHCHAIN_")}
    environment["AUTHCHAIN_CONFIG"] = str(path)
    result = subprocess.run(
        [sys.executable, "-m", "authchain.cli", "config"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-1500:]
    assert len(result.stderr.splitlines()) == 1
