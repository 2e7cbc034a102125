"""FilesSource against real directories: the contract, names, newlines, limits, symlinks, modes, config."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from pathlib import Path

import pytest

from authchain import BackendError, Chain, ConfigError, SecretNotFound, SecretRef
from authchain.backends.env.source import EnvSource
from authchain.backends.files.source import FilesSource
from authchain.errors import SourceUnavailableError
from authchain.sources.base import Found, NotFound
from authchain.testing import canary
from authchain.testing.contract import Seed, SourceContractTests, assert_not_leaked


def write(path: Path, data: str | bytes, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def value_of(source: FilesSource, name: str) -> str:
    result = source.get(source.key_for(name))
    assert isinstance(result, Found), f"{name} should be found"
    value = result.value.get_secret_value()
    assert isinstance(value, str)
    return value


class TestFilesContract(SourceContractTests):
    @pytest.fixture
    def source(self, tmp_path: Path) -> FilesSource:
        (tmp_path / "secrets").mkdir()
        return FilesSource(path=tmp_path / "secrets")

    @pytest.fixture
    def seed(self, source: FilesSource) -> Seed:
        def put(name: str, value: str) -> None:
            write(source.path[0] / str(source.key_for(name)), value + "\n")

        return put


class TestComposeSpellingContract(TestFilesContract):
    """``name_transform = "lower"`` with a prefix: ``DB_PASSWORD`` → ``app_db_password``."""

    @pytest.fixture
    def source(self, tmp_path: Path) -> FilesSource:
        (tmp_path / "secrets").mkdir()
        return FilesSource(path=tmp_path / "secrets", name_transform="lower", prefix="app_", name="compose")


class TestKubernetesVolumeContract(SourceContractTests):
    """A Secret volume as the kubelet lays it out: NAME → ..data/NAME → ..<timestamp>/NAME."""

    @pytest.fixture
    def source(self, tmp_path: Path) -> FilesSource:
        volume = tmp_path / "volume"
        (volume / "..2026_12_02_10_00_00.000000001").mkdir(parents=True)
        os.symlink("..2026_12_02_10_00_00.000000001", volume / "..data")
        return FilesSource(path=volume, name_transform="kebab")

    @pytest.fixture
    def seed(self, source: FilesSource) -> Seed:
        def put(name: str, value: str) -> None:
            key = str(source.key_for(name))
            write(source.path[0] / "..data" / key, value)  # kubectl --from-literal: no newline
            os.symlink(f"..data/{key}", source.path[0] / key)

        return put


# -- names ---------------------------------------------------------------------------------


def test_name_transforms_and_prefix(tmp_path: Path) -> None:
    assert FilesSource(path=tmp_path).key_for("DB_PASSWORD") == "DB_PASSWORD"
    assert FilesSource(path=tmp_path, name_transform="lower").key_for("DB_PASSWORD") == "db_password"
    assert FilesSource(path=tmp_path, name_transform="kebab").key_for("DB_PASSWORD") == "db-password"
    assert FilesSource(path=tmp_path, prefix="app_", name_transform="lower").key_for("DB") == "app_db"
    with pytest.raises(ConfigError, match="name_transform"):
        FilesSource(path=tmp_path, name_transform="upper")


def test_a_reference_names_the_file_exactly(tmp_path: Path) -> None:
    value = canary()
    write(tmp_path / "db-password", value)
    source = FilesSource(path=tmp_path, prefix="app_", name_transform="lower")
    with Chain([source], cache_ttl=0) as chain:
        assert chain.resolve("files://db-password").get_secret_value() == value


def test_a_reference_picks_a_json_field(tmp_path: Path) -> None:
    password = canary()
    write(tmp_path / "db.json", f'{{"user": "app", "password": "{password}"}}\n')
    with Chain([FilesSource(path=tmp_path)], cache_ttl=0) as chain:
        assert chain.resolve("files://db.json#password").get_secret_value() == password


@pytest.mark.parametrize(
    "text",
    ["files:///etc/passwd", "files://../outside", "files://a/../../b", "files://..data/x", "files://a//b"],
)
def test_references_cannot_leave_the_directories(text: str) -> None:
    with pytest.raises(ConfigError, match="malformed files:// reference"):
        SecretRef.parse(text)


def test_subfolders_inside_the_directory_are_allowed(tmp_path: Path) -> None:
    value = canary()
    write(tmp_path / "db" / "password", value)
    assert SecretRef.parse("files://db/password").location == "db/password"
    with Chain([FilesSource(path=tmp_path)], cache_ttl=0) as chain:
        assert chain.resolve("files://db/password").get_secret_value() == value


def test_a_bare_name_that_would_leave_the_directory_is_not_read(tmp_path: Path) -> None:
    write(tmp_path / "outside", canary())
    source = FilesSource(path=tmp_path / "secrets")
    (tmp_path / "secrets").mkdir()
    result = source.get(source.key_for("../outside"))
    assert isinstance(result, NotFound)
    assert "not a file name this source reads" in result.reason


# -- contents ------------------------------------------------------------------------------


def test_exactly_one_trailing_newline_is_dropped(tmp_path: Path) -> None:
    write(tmp_path / "LF", "pass word \n")
    write(tmp_path / "CRLF", "pass word\r\n")
    write(tmp_path / "TWO", "pass word\n\n")
    write(tmp_path / "NONE", " pass word ")
    write(tmp_path / "PEM", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    source = FilesSource(path=tmp_path)
    assert value_of(source, "LF") == "pass word "
    assert value_of(source, "CRLF") == "pass word"
    assert value_of(source, "TWO") == "pass word\n"
    assert value_of(source, "NONE") == " pass word "
    assert value_of(source, "PEM") == "-----BEGIN KEY-----\nabc\n-----END KEY-----"
    assert value_of(FilesSource(path=tmp_path, strip_newline=False), "LF") == "pass word \n"


def test_an_empty_file_is_an_empty_value(tmp_path: Path) -> None:
    write(tmp_path / "EMPTY", "")
    assert value_of(FilesSource(path=tmp_path), "EMPTY") == ""


def test_the_size_limit(tmp_path: Path) -> None:
    write(tmp_path / "FITS", "x" * 64)
    write(tmp_path / "BIG", "x" * 65)
    source = FilesSource(path=tmp_path, max_bytes=64)
    assert value_of(source, "FITS") == "x" * 64
    with pytest.raises(BackendError, match=r"larger than max_bytes \(64\)") as caught:
        source.get(source.key_for("BIG"))
    assert not caught.value.retryable
    with pytest.raises(ConfigError, match="max_bytes"):
        FilesSource(path=tmp_path, max_bytes=0)


def test_text_that_is_not_utf8_is_an_error_without_the_bytes(tmp_path: Path) -> None:
    write(tmp_path / "BINARY", b"\xff\xfe" + canary().encode())
    source = FilesSource(path=tmp_path)
    with pytest.raises(BackendError, match="is not utf-8 text") as caught:
        source.get(source.key_for("BINARY"))
    assert caught.value.__context__ is None
    assert value_of(FilesSource(path=tmp_path, encoding="latin-1"), "BINARY").startswith("ÿþ")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "PIPE")
    source = FilesSource(path=tmp_path)
    with pytest.raises(BackendError, match="is not a regular file"):
        source.get(source.key_for("PIPE"))


def test_a_folder_named_like_the_secret_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "DB_PASSWORD").mkdir()
    source = FilesSource(path=tmp_path)
    with pytest.raises(BackendError, match="is not a regular file"):
        source.get(source.key_for("DB_PASSWORD"))


# -- several directories --------------------------------------------------------------------


def test_directories_are_asked_in_order(tmp_path: Path) -> None:
    first, second = canary(), canary()
    write(tmp_path / "one" / "BOTH", first)
    write(tmp_path / "two" / "BOTH", second)
    write(tmp_path / "two" / "ONLY_TWO", second)
    source = FilesSource(path=[tmp_path / "one", tmp_path / "two"])
    assert value_of(source, "BOTH") == first
    assert value_of(source, "ONLY_TWO") == second
    result = source.get(source.key_for("NEITHER"))
    assert result == NotFound(f"no file NEITHER in {tmp_path / 'one'}, {tmp_path / 'two'}")


def test_a_missing_directory_is_named_in_not_found(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    source = FilesSource(path=[tmp_path / "here", tmp_path / "gone"])
    result = source.get(source.key_for("X"))
    assert isinstance(result, NotFound)
    assert f"{tmp_path / 'gone'} does not exist" in result.reason


def test_a_path_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "not-a-dir", "x")
    source = FilesSource(path=tmp_path / "not-a-dir")
    with pytest.raises(BackendError, match="is not a directory"):
        source.get(source.key_for("X"))
    assert source.check().status == "misconfigured"


# -- symlinks ------------------------------------------------------------------------------


def test_a_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    value = canary()
    write(tmp_path / "secrets" / "real-name", value)
    os.symlink("real-name", tmp_path / "secrets" / "ALIAS")
    assert value_of(FilesSource(path=tmp_path / "secrets"), "ALIAS") == value


def test_the_directory_itself_may_be_a_symlink(tmp_path: Path) -> None:
    value = canary()
    write(tmp_path / "real" / "TOKEN", value)
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert value_of(FilesSource(path=tmp_path / "link"), "TOKEN") == value


@pytest.mark.parametrize("how", ["file", "folder", "chain"])
def test_a_symlink_leading_outside_is_refused(tmp_path: Path, how: str) -> None:
    outside = canary()
    write(tmp_path / "home" / ".aws" / "credentials", outside)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    if how == "file":
        os.symlink(tmp_path / "home" / ".aws" / "credentials", secrets / "AWS")
        name = "AWS"
    elif how == "folder":
        os.symlink(tmp_path / "home" / ".aws", secrets / "aws")
        name = "aws/credentials"
    else:  # inside → inside → outside
        os.symlink("hop", secrets / "AWS")
        os.symlink("../home/.aws/credentials", secrets / "hop")
        name = "AWS"
    source = FilesSource(path=secrets)
    with pytest.raises(BackendError, match="symlink leading outside") as caught:
        source.get(name)
    assert not caught.value.retryable
    assert_not_leaked(outside, str(caught.value), "the refusal")
    with Chain([source], cache_ttl=0) as chain, pytest.raises(BackendError):
        chain.resolve(f"files://{name}")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="the opened file is known through /proc")
def test_a_folder_turned_into_an_outside_symlink_after_the_check_is_refused(tmp_path: Path) -> None:
    outside = canary()
    write(tmp_path / "home" / "db" / "password", outside)
    secrets = tmp_path / "secrets"
    write(secrets / "db" / "password", canary())

    class SwapAfterTheCheck(FilesSource):
        def _read_file(self, real: str, entry: str, root: str) -> tuple[bytes, os.stat_result] | None:
            shutil.rmtree(secrets / "db")  # someone who may write here swaps the folder
            os.symlink(tmp_path / "home" / "db", secrets / "db")
            return super()._read_file(real, entry, root)

    with pytest.raises(BackendError, match="symlink leading outside") as caught:
        SwapAfterTheCheck(path=secrets).get("db/password")
    assert_not_leaked(outside, str(caught.value), "the refusal")


def test_a_dangling_symlink_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    os.symlink("nowhere", tmp_path / "s" / "GONE")
    source = FilesSource(path=tmp_path / "s")
    with pytest.raises(BackendError, match="symlink to nothing"):
        source.get("GONE")


# -- permissions ---------------------------------------------------------------------------


def test_a_group_or_world_readable_file_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    value = canary()
    write(tmp_path / "OPEN", value, mode=0o644)
    write(tmp_path / "GROUP", value, mode=0o640)
    write(tmp_path / "CLOSED", value, mode=0o600)
    source = FilesSource(path=tmp_path)
    with caplog.at_level(logging.WARNING, logger="authchain.backends.files.source"):
        for _ in range(3):
            for name in ("OPEN", "GROUP", "CLOSED"):
                assert value_of(source, name) == value
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert any("OPEN is readable by group and others (mode 644)" in text for text in messages)
    assert any("GROUP is readable by its group (mode 640)" in text for text in messages)
    assert all("chmod 600" in text for text in messages)
    for text in messages:
        assert_not_leaked(value, text, "the warning")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_no_warning_where_someone_else_owns_the_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # /run/secrets and Kubernetes volumes belong to the platform (Docker mounts 0444):
    # the user could not chmod them, so a warning would only be noise.
    platform = tmp_path / "platform"
    write(platform / "TOKEN", canary(), mode=0o444)
    os.chown(platform, 4242, 4242)
    with caplog.at_level(logging.WARNING, logger="authchain.backends.files.source"):
        value_of(FilesSource(path=platform), "TOKEN")
    assert caplog.records == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_access_denied(tmp_path: Path) -> None:
    write(tmp_path / "LOCKED", canary(), mode=0o000)
    source = FilesSource(path=tmp_path)
    with pytest.raises(BackendError) as caught:
        source.get("LOCKED")
    assert caught.value.access_denied


# -- check, settings, config ---------------------------------------------------------------


def test_check(tmp_path: Path) -> None:
    write(tmp_path / "a" / "ONE", "x")
    write(tmp_path / "a" / "TWO", "x")
    ok = FilesSource(path=[tmp_path / "a", tmp_path / "b"]).check()
    assert ok.status == "ok"
    assert ok.detail == f"reads {tmp_path / 'a'} (2 files); does not exist: {tmp_path / 'b'}"
    nowhere = FilesSource(path=tmp_path / "b").check()
    assert nowhere.status == "misconfigured"
    assert "no configured directory exists" in nowhere.detail


def test_no_directory_at_all_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("authchain.backends.files.source.DOCKER_SECRETS", str(tmp_path / "absent"))
    source = FilesSource(environ={})
    assert source.path == ()
    assert source.check().status == "unavailable"
    with pytest.raises(SourceUnavailableError):
        source.get("X")
    value = canary()
    with Chain([source, EnvSource(environ={"X": value})], cache_ttl=0) as chain:
        assert chain.resolve("X").get_secret_value() == value
        with pytest.raises(SecretNotFound, match="unavailable"):
            chain.resolve("files://X")


def test_without_path_the_platform_folders_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    docker = tmp_path / "run-secrets"
    docker.mkdir()
    monkeypatch.setattr("authchain.backends.files.source.DOCKER_SECRETS", str(docker))
    systemd = tmp_path / "credentials"
    systemd.mkdir()
    assert FilesSource(environ={"CREDENTIALS_DIRECTORY": str(systemd)}).path == (systemd, docker)
    assert FilesSource(environ={"CREDENTIALS_DIRECTORY": "relative/dir"}).path == (docker,)


def test_settings_and_pickling_keep_the_directories_not_the_environment(tmp_path: Path) -> None:
    source = FilesSource(environ={"CREDENTIALS_DIRECTORY": str(tmp_path), "OTHER": canary()})
    assert source.settings()["path"][0] == str(tmp_path)
    clone = pickle.loads(pickle.dumps(source))  # noqa: S301 - our own bytes
    assert clone.path == source.path
    assert clone._environ is None


def test_config_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    value = canary()
    write(tmp_path / "project" / "secrets" / "db_password", value + "\n")
    write(tmp_path / "project" / "more" / "api_key", value)
    config = tmp_path / "project" / "authchain.toml"
    config.write_text(
        '[sources.mounted]\ntype = "files"\npath = ["secrets", "more"]\nname_transform = "lower"\n'
        '[sources.one]\ntype = "files"\npath = "secrets"\n',
        encoding="utf-8",
    )
    with Chain.from_config(config) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value
        assert chain.resolve("API_KEY").get_secret_value() == value
        assert chain.source("one").path == (tmp_path / "project" / "secrets",)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("path = []", "lists no directory"),
        ("path = 3", "must be a list of strings"),
        ('name_transform = "upper"', "must be one of"),
        ("max_bytes = 0", "must be >= 1"),
        ('prefx = "a"', "did you mean 'prefix'"),
    ],
)
def test_config_errors(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text(f'[sources.f]\ntype = "files"\n{table}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        Chain.from_config(config)
