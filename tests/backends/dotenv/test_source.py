"""DotenvSource: the contract, plus file syntax, interpolation, re-reading and errors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from authchain import BackendError, Chain, SecretNotFound
from authchain.backends.dotenv.source import DotenvSource
from authchain.backends.env.source import EnvSource
from authchain.sources.base import Found, NotFound
from authchain.testing import MemorySource, canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def value_of(source: DotenvSource, name: str) -> str:
    result = source.get(source.key_for(name))
    assert isinstance(result, Found), f"{name} should be found"
    value = result.value.get_secret_value()
    assert isinstance(value, str)
    return value


class TestDotenvContract(SourceContractTests):
    @pytest.fixture
    def source(self, tmp_path: Path) -> DotenvSource:
        return DotenvSource(path=write(tmp_path / ".env", "# made-up values\n"))

    @pytest.fixture
    def seed(self, source: DotenvSource) -> Seed:
        def put(name: str, value: str) -> None:
            with source.path.open("a", encoding="utf-8") as file:
                file.write(f"{name}={value}\n")

        return put


class TestPrefixedDotenvContract(SourceContractTests):
    @pytest.fixture
    def source(self, tmp_path: Path) -> DotenvSource:
        return DotenvSource(path=write(tmp_path / "app.env", ""), prefix="APP_", name="dotenv-app")

    @pytest.fixture
    def seed(self, source: DotenvSource) -> Seed:
        def put(name: str, value: str) -> None:
            with source.path.open("a", encoding="utf-8") as file:
                file.write(f"export APP_{name}='{value}'\n")

        return put


class TestMissingFileContract(TestDotenvContract):
    """A source whose file does not exist yet: seeding creates it."""

    @pytest.fixture
    def source(self, tmp_path: Path) -> DotenvSource:
        return DotenvSource(path=tmp_path / "later" / ".env")

    @pytest.fixture
    def seed(self, source: DotenvSource) -> Seed:
        def put(name: str, value: str) -> None:
            source.path.parent.mkdir(exist_ok=True)
            with source.path.open("a", encoding="utf-8") as file:
                file.write(f"{name}={value}\n")

        return put


def test_missing_file_is_not_found_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.env"
    source = DotenvSource(path=path)
    assert source.get(source.key_for("TOKEN")) == NotFound(f"{path} does not exist")
    assert source.check().status == "ok"
    assert "does not exist" in source.check().detail


def test_missing_file_in_a_chain_moves_on(tmp_path: Path) -> None:
    value = canary()
    chain = Chain([DotenvSource(path=tmp_path / "absent.env"), EnvSource(environ={"TOKEN": value})])
    assert chain.resolve("TOKEN").get_secret_value() == value


def test_missing_variable_names_the_file_and_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", "OTHER=x\n")
    source = DotenvSource(path=path, prefix="APP_")
    assert source.get(source.key_for("TOKEN")) == NotFound(f"{path} has no APP_TOKEN")
    assert source.describe_key(source.key_for("TOKEN")) == f"APP_TOKEN in {path}"


def test_export_prefix_and_quotes(tmp_path: Path) -> None:
    source = DotenvSource(
        path=write(
            tmp_path / ".env",
            "export EXPORTED=exported-value\n"
            'DOUBLE="two words # not a comment"\n'
            "SINGLE='single quoted'\n"
            "PLAIN=plain # a comment\n"
            'ESCAPED="line one\\nline two"\n',
        )
    )
    assert value_of(source, "EXPORTED") == "exported-value"
    assert value_of(source, "DOUBLE") == "two words # not a comment"
    assert value_of(source, "SINGLE") == "single quoted"
    assert value_of(source, "PLAIN") == "plain"
    assert value_of(source, "ESCAPED") == "line one\nline two"


def test_empty_and_valueless_lines(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", "EMPTY=\nDECLARED\n")
    source = DotenvSource(path=path)
    assert value_of(source, "EMPTY") == ""
    assert source.get(source.key_for("DECLARED")) == NotFound(f"{path} declares DECLARED without a value")


def test_interpolation_is_off_by_default(tmp_path: Path) -> None:
    source = DotenvSource(
        path=write(tmp_path / ".env", "BASE_DIR=root\nPW=abc${HOME}def\nREF=${BASE_DIR}/x\n")
    )
    assert value_of(source, "PW") == "abc${HOME}def"
    assert value_of(source, "REF") == "${BASE_DIR}/x"


def test_interpolation_on_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHCHAIN_TEST_HOME", "/home/example")
    source = DotenvSource(
        path=write(tmp_path / ".env", "BASE_DIR=root\nPW=abc${AUTHCHAIN_TEST_HOME}def\nREF=${BASE_DIR}/x\n"),
        interpolate=True,
    )
    assert value_of(source, "PW") == "abc/home/exampledef"
    assert value_of(source, "REF") == "root/x"


def test_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", "TOKEN=first\n")
    source = DotenvSource(path=path)
    assert value_of(source, "TOKEN") == "first"
    write(path, "TOKEN=second-and-longer\n")
    assert value_of(source, "TOKEN") == "second-and-longer"


def test_same_size_rewrite_is_seen_when_mtime_moves(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", "TOKEN=aaaa\n")
    source = DotenvSource(path=path)
    assert value_of(source, "TOKEN") == "aaaa"
    before = path.stat().st_mtime_ns
    write(path, "TOKEN=bbbb\n")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))
    assert value_of(source, "TOKEN") == "bbbb"


def test_file_appearing_later_is_read(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    source = DotenvSource(path=path)
    assert isinstance(source.get(source.key_for("TOKEN")), NotFound)
    write(path, "TOKEN=now-here\n")
    assert value_of(source, "TOKEN") == "now-here"


def test_unchanged_file_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = DotenvSource(path=write(tmp_path / ".env", "A=1\nB=2\n"))
    parses = []
    original = source._parse

    def counting(path: Path) -> dict[str, str | None]:
        parses.append(path)
        return original(path)

    monkeypatch.setattr(source, "_parse", counting)
    assert [value_of(source, name) for name in ("A", "B", "A")] == ["1", "2", "1"]
    assert len(parses) == 1


def test_directory_instead_of_file_is_a_backend_error(tmp_path: Path) -> None:
    (tmp_path / "dir.env").mkdir()
    source = DotenvSource(path=tmp_path / "dir.env")
    with pytest.raises(BackendError, match=r"dir\.env is not a file"):
        source.get(source.key_for("TOKEN"))
    assert source.check().status == "misconfigured"


def test_path_through_a_file_is_a_backend_error(tmp_path: Path) -> None:
    blocker = write(tmp_path / "blocker", "")
    source = DotenvSource(path=blocker / ".env")
    with pytest.raises(BackendError, match=r"cannot read .*blocker/\.env"):
        source.get(source.key_for("TOKEN"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_backend_error(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", "TOKEN=x\n")
    path.chmod(0)
    try:
        source = DotenvSource(path=path)
        with pytest.raises(BackendError, match="cannot read"):
            source.get(source.key_for("TOKEN"))
    finally:
        path.chmod(0o600)


def test_undecodable_file_is_a_backend_error_without_its_content(tmp_path: Path) -> None:
    value = canary()
    path = tmp_path / ".env"
    path.write_bytes(f"TOKEN={value}\nBAD=\xff\xfe\n".encode("latin-1"))
    source = DotenvSource(path=path)
    with pytest.raises(BackendError, match="not utf-8 text") as caught:
        source.get(source.key_for("TOKEN"))
    assert_not_leaked(value, str(caught.value), "the decode error")
    assert value_of(DotenvSource(path=path, encoding="latin-1"), "TOKEN") == value


def test_backend_error_in_a_chain_names_the_source_and_stops(tmp_path: Path) -> None:
    (tmp_path / "dir.env").mkdir()
    behind = MemorySource({"TOKEN": canary()})
    chain = Chain([DotenvSource(path=tmp_path / "dir.env", name="project-env"), behind])
    with pytest.raises(BackendError) as caught:
        chain.resolve("TOKEN")
    assert caught.value.source == "project-env"
    assert str(caught.value).startswith("project-env (dotenv): ")
    assert behind.calls == 0, "the chain stops at the failing source"


def test_reference_relative_to_the_source_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = canary()
    write(tmp_path / "app" / "other.env", f"KEY={value}\n")
    source = DotenvSource(path=write(tmp_path / "app" / ".env", ""))
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    assert Chain([source]).resolve("dotenv://other.env#KEY").get_secret_value() == value


def test_reference_with_an_absolute_path(tmp_path: Path) -> None:
    value = canary()
    other = write(tmp_path / "elsewhere" / "x.env", f"KEY={value}\n")
    source = DotenvSource(path=tmp_path / "app" / ".env")
    assert Chain([source]).resolve(f"dotenv://{other}#KEY").get_secret_value() == value


def test_reference_without_a_path_reads_the_source_file_without_prefix(tmp_path: Path) -> None:
    plain, prefixed = canary(), canary()
    source = DotenvSource(path=write(tmp_path / ".env", f"KEY={plain}\nAPP_KEY={prefixed}\n"), prefix="APP_")
    chain = Chain([source])
    assert chain.resolve("dotenv://#KEY").get_secret_value() == plain
    assert chain.resolve("KEY").get_secret_value() == prefixed


def test_reference_to_a_missing_variable_names_file_and_variable(tmp_path: Path) -> None:
    other = write(tmp_path / "other.env", "KEY=x\n")
    source = DotenvSource(path=tmp_path / ".env")
    with pytest.raises(SecretNotFound) as caught:
        Chain([source]).resolve("dotenv://other.env#NOPE")
    assert f"dotenv: {other} has no NOPE" in str(caught.value)


def test_relative_path_in_config_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary()
    project = tmp_path / "project"
    write(project / "secrets.env", f"TOKEN={value}\n")
    config = write(project / "authchain.toml", '[sources.dotenv]\ntype = "dotenv"\npath = "secrets.env"\n')
    monkeypatch.chdir(tmp_path)
    chain = Chain.from_config(config, environ={})
    source = chain.source("dotenv")
    assert isinstance(source, DotenvSource)
    assert source.path == project / "secrets.env"
    assert chain.resolve("TOKEN").get_secret_value() == value


def test_default_path_in_config_is_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary()
    project = tmp_path / "project"
    write(project / ".env", f"TOKEN={value}\n")
    config = write(project / "authchain.toml", '[sources.dotenv]\ntype = "dotenv"\n')
    monkeypatch.chdir(tmp_path)  # a different folder, with no .env
    chain = Chain.from_config(config, environ={})
    source = chain.source("dotenv")
    assert isinstance(source, DotenvSource)
    assert source.path == project / ".env"
    assert chain.resolve("TOKEN").get_secret_value() == value


def test_pickle_drops_parsed_values_and_rereads(tmp_path: Path) -> None:
    value = canary()
    source = DotenvSource(path=write(tmp_path / ".env", f"TOKEN={value}\n"))
    assert value_of(source, "TOKEN") == value
    data = pickle.dumps(source)
    assert_not_leaked(value, data, "a pickled DotenvSource")
    clone = pickle.loads(data)  # noqa: S301 - our own bytes
    assert value_of(clone, "TOKEN") == value
