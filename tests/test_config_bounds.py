"""Every numeric setting has an upper bound: a typo (``retries = 1000000000``) is a ConfigError.

The message names the setting and the allowed range and never the value
written (a secret pasted into the wrong key, or a ``${VAR}`` holding one,
must not be printed back). The CLI turns it into exit 2.
"""

from __future__ import annotations

import io
import secrets
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from authchain import Chain, ConfigError
from authchain._registry import builtin_types, load_source_class
from authchain.cli import main
from authchain.config import CONFIG_FILENAME, TOP_LEVEL
from authchain.sources.base import COMMON_OPTIONS, Option


def numeric(options: object) -> list[Option]:
    return [option for option in options if option.kind in (int, float) and not option.choices]  # type: ignore[attr-defined]


def all_numeric_options() -> list[tuple[str, Option]]:
    found = [("top level", option) for option in numeric(TOP_LEVEL.values())]
    found += [("common", option) for option in numeric(COMMON_OPTIONS)]
    for type_name in builtin_types():
        found += [(type_name, option) for option in numeric(load_source_class(type_name).options)]
    return found


NUMERIC = all_numeric_options()
IDS = [f"{where}:{option.name}" for where, option in NUMERIC]


def huge(option: Option) -> int:
    """A value past the bound whose digits the message cannot show by quoting the bound."""
    assert option.maximum is not None
    return int(option.maximum) * 1000 + 987


@pytest.mark.parametrize(("where", "option"), NUMERIC, ids=IDS)
def test_every_numeric_setting_has_a_range(where: str, option: Option) -> None:
    assert option.minimum is not None, f"{where}: {option.name} has no lower bound"
    assert option.maximum is not None, f"{where}: {option.name} has no upper bound"
    assert option.minimum < option.maximum
    if option.default is not None:
        assert option.minimum <= option.default <= option.maximum


@pytest.mark.parametrize(("where", "option"), NUMERIC, ids=IDS)
def test_a_value_past_the_bound_is_refused_with_the_range_and_without_the_value(
    where: str, option: Option
) -> None:
    too_big = huge(option)
    with pytest.raises(ConfigError) as info:
        option.coerce(too_big, "cfg: sources.x")
    message = str(info.value)
    assert f"cfg: sources.x.{option.name} must be >= " in message
    assert f"and <= {option.maximum:,.0f}".replace(",", "") in message
    assert str(too_big) not in message
    # The bound itself is allowed, and so is the lower one.
    assert option.coerce(option.maximum, "cfg") == option.maximum
    assert option.coerce(option.minimum, "cfg") == option.minimum


@pytest.mark.parametrize(
    "line",
    ["retries = 1000000000", "max_workers = 100000000", "async_workers = 100000000", "deadline = 1e9"],
)
def test_absurd_top_level_values_in_a_file_are_config_errors(tmp_path: Path, line: str) -> None:
    config = tmp_path / CONFIG_FILENAME
    config.write_text(line + "\n")
    with pytest.raises(ConfigError) as info:
        Chain.from_config(config, environ={})
    key = line.split(" = ")[0]
    assert f"{key} must be >= " in str(info.value)
    assert str(config) in str(info.value)


def test_a_source_setting_past_its_bound_names_the_source(tmp_path: Path) -> None:
    config = tmp_path / CONFIG_FILENAME
    config.write_text('[sources.secrets]\ntype = "files"\npath = ["."]\nmax_bytes = 100000000000\n')
    with pytest.raises(ConfigError) as info:
        Chain.from_config(config, environ={})
    assert "sources.secrets.max_bytes must be >= 1 and <= " in str(info.value)
    assert "100000000000" not in str(info.value)


def test_a_variable_holding_a_big_number_is_not_printed(tmp_path: Path) -> None:
    planted = str(10**12 + secrets.randbelow(10**11))
    config = tmp_path / CONFIG_FILENAME
    config.write_text('retries = "${RETRIES}"\n')
    with pytest.raises(ConfigError) as info:
        Chain.from_config(config, environ={"RETRIES": planted})
    assert "retries must be >= 0 and <= " in str(info.value)
    assert planted not in str(info.value)


def test_an_environment_override_past_the_bound_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILENAME).write_text("")
    planted = str(10**9 + secrets.randbelow(10**8))
    with pytest.raises(ConfigError) as info:
        Chain.from_config(tmp_path / CONFIG_FILENAME, environ={"AUTHCHAIN_MAX_WORKERS": planted})
    assert "AUTHCHAIN_MAX_WORKERS" in str(info.value)
    assert "must be >= 1 and <= " in str(info.value)
    assert planted not in str(info.value)


def test_the_cli_exits_2_naming_the_setting_and_the_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("AUTHCHAIN_CONFIG", "AUTHCHAIN_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / CONFIG_FILENAME
    config.write_text("retries = 1000000000\n")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--config", str(config), "resolve", "DB_PASSWORD"])
    assert code == 2
    assert "retries must be >= 0 and <= " in err.getvalue()
    assert "1000000000" not in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_python_api_chain_refuses_absurd_pools() -> None:
    with pytest.raises(ConfigError, match=r"max_workers must be >= 1 and <= "):
        Chain([], max_workers=100_000_000)
    with pytest.raises(ConfigError, match=r"async_workers must be >= 1 and <= "):
        Chain([], async_workers=100_000_000)
    with pytest.raises(ConfigError, match=r"retries must be >= 0 and <= "):
        Chain([], retries=1_000_000_000)
