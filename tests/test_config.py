"""The TOML config: discovery, profiles, overrides, expansion and every ConfigError with its message."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import pytest

from authchain import Chain, ConfigError, SecretRef
from authchain._registry import registered_types
from authchain.config import CONFIG_FILENAME, find_config_file, load_settings


def generated() -> str:
    return "gen-" + secrets.token_urlsafe(18)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path, *, profile: str | None = None, environ: dict[str, str] | None = None) -> str:
    """Build a chain from ``path`` and return the ConfigError message it raises."""
    with pytest.raises(ConfigError) as info:
        Chain.from_config(path, profile=profile, environ=environ or {})
    assert isinstance(info.value, ValueError)
    return str(info.value)


def default_types() -> list[str]:
    # Prefect's source joins the default chain once its backend is registered.
    return (["prefect"] if "prefect" in registered_types() else []) + ["env", "dotenv"]


@pytest.fixture
def no_config_above(tmp_path: Path) -> None:
    """Discovery walks up past tmp_path; a stray config there would change the answer."""
    for folder in tmp_path.parents:
        if (folder / CONFIG_FILENAME).is_file():
            pytest.skip(f"a stray {folder / CONFIG_FILENAME} would be discovered")


ENV_AND_DOTENV = """
    [sources.env]
    type = "env"

    [sources.dotenv]
    type = "dotenv"
    path = ".env"
"""


# -- discovery ------------------------------------------------------------------


def test_authchain_toml_found_from_a_subdirectory(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = 42\n")
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    settings = load_settings(environ={}, cwd=deep)
    assert settings.path is not None
    assert settings.path.resolve() == config.resolve()
    assert settings.value("cache_ttl") == 42.0
    assert find_config_file(deep, environ={}) == config.resolve()


def test_discovery_uses_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / CONFIG_FILENAME, "cache_ttl = 7\n" + ENV_AND_DOTENV)
    deep = tmp_path / "pkg" / "sub"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    chain = Chain.from_config(environ={})
    assert chain.cache_ttl == 7.0
    assert chain.settings is not None
    assert chain.settings.path is not None
    assert chain.settings.path.resolve() == (tmp_path / CONFIG_FILENAME).resolve()


def test_nearest_config_wins(tmp_path: Path) -> None:
    write(tmp_path / CONFIG_FILENAME, "cache_ttl = 1\n")
    inner = write(tmp_path / "inner" / CONFIG_FILENAME, "cache_ttl = 2\n")
    settings = load_settings(environ={}, cwd=tmp_path / "inner")
    assert settings.path == inner.resolve()
    assert settings.value("cache_ttl") == 2.0


def test_pyproject_tool_authchain(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        """
        [project]
        name = "demo"

        [tool.authchain]
        cache_ttl = 12
        order = ["dotenv", "env"]

        [tool.authchain.sources.env]
        type = "env"
        prefix = "APP_"

        [tool.authchain.sources.dotenv]
        type = "dotenv"
        """,
    )
    sub = tmp_path / "src"
    sub.mkdir()
    settings = load_settings(environ={}, cwd=sub)
    assert settings.path == (tmp_path / "pyproject.toml").resolve()
    assert settings.key_prefix == "tool.authchain."
    chain = Chain.from_config(tmp_path / "pyproject.toml", environ={})
    assert chain.cache_ttl == 12.0
    assert [source.name for source in chain.sources] == ["dotenv", "env"]
    assert chain.source("env").prefix == "APP_"  # type: ignore[attr-defined]


def test_pyproject_without_tool_authchain_is_skipped_during_discovery(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = 3\n")
    write(tmp_path / "proj" / "pyproject.toml", '[project]\nname = "x"\n\n[tool.ruff]\nline-length = 80\n')
    settings = load_settings(environ={}, cwd=tmp_path / "proj")
    assert settings.path == config.resolve()


def test_a_pyproject_that_cannot_name_authchain_is_not_parsed_during_discovery(tmp_path: Path) -> None:
    """Not even invalid TOML stops the search: a project's own pyproject.toml that never
    mentions authchain is none of authchain's business (and parsing it cost every start-up)."""
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = 3\n")
    write(tmp_path / "proj" / "pyproject.toml", '[project\nname = "x"\n')  # invalid TOML
    assert load_settings(environ={}, cwd=tmp_path / "proj").path == config.resolve()
    assert find_config_file(tmp_path / "proj", environ={}) == config.resolve()


def test_a_pyproject_that_spells_authchain_with_an_escape_is_found(tmp_path: Path) -> None:
    pyproject = write(tmp_path / "pyproject.toml", '[tool."\\u0061uthchain"]\ncache_ttl = 4\n')
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.path == pyproject.resolve()
    assert settings.value("cache_ttl") == 4.0


def test_a_pyproject_that_mentions_authchain_is_still_checked(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project\ndependencies = ["authchain"]\n')  # invalid TOML
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(environ={}, cwd=tmp_path)


def test_authchain_toml_wins_over_pyproject_in_the_same_folder(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = 3\n")
    write(tmp_path / "pyproject.toml", "[tool.authchain]\ncache_ttl = 4\n")
    assert load_settings(environ={}, cwd=tmp_path).path == config.resolve()


def test_authchain_config_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / CONFIG_FILENAME, "cache_ttl = 1\n")
    named = write(tmp_path / "elsewhere" / "custom.toml", "cache_ttl = 99\n")
    settings = load_settings(environ={"AUTHCHAIN_CONFIG": str(named)}, cwd=tmp_path)
    assert settings.path == named
    assert settings.value("cache_ttl") == 99.0
    chain = Chain.from_config(environ={"AUTHCHAIN_CONFIG": str(named)})
    assert chain.cache_ttl == 99.0


def test_authchain_config_naming_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"AUTHCHAIN_CONFIG": str(missing)}, cwd=tmp_path)
    assert "AUTHCHAIN_CONFIG" in str(info.value)
    assert str(missing) in str(info.value)
    assert "not a file" in str(info.value)


def test_no_config_file_gives_default_settings(tmp_path: Path, no_config_above: None) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.path is None
    assert settings.sources is None
    assert settings.value("cache_ttl") == 300.0


def test_profile_without_a_config_file_is_an_error(tmp_path: Path, no_config_above: None) -> None:
    with pytest.raises(ConfigError, match=r"profile 'dev' was requested but no authchain\.toml was found"):
        load_settings(environ={"AUTHCHAIN_PROFILE": "dev"}, cwd=tmp_path)


# -- default chain and canonical order ------------------------------------------------


def test_config_without_sources_keeps_the_default_chain(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = 5\n")
    chain = Chain.from_config(config, environ={})
    assert [source.type for source in chain.sources] == default_types()
    # The default chain's .env is ./.env (the working directory), as DESIGN says.
    assert chain.source("dotenv").path == Path.cwd() / ".env"  # type: ignore[attr-defined]
    assert chain.cache_ttl == 5.0


def test_default_chain_reads_env_then_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name_both, name_file = (
        f"AC_TEST_{secrets.token_hex(4).upper()}",
        f"AC_TEST_{secrets.token_hex(4).upper()}",
    )
    from_env, from_file, file_only = generated(), generated(), generated()
    write(tmp_path / ".env", f"{name_both}={from_file}\n{name_file}={file_only}\n")
    config = write(tmp_path / CONFIG_FILENAME, "retries = 0\n")
    monkeypatch.setenv(name_both, from_env)
    monkeypatch.chdir(tmp_path)
    chain = Chain.from_config(config, environ={})
    assert chain.resolve(name_both).get_secret_value() == from_env
    assert chain.resolve(name_file).get_secret_value() == file_only


def test_sources_replace_the_default_chain_in_canonical_order(tmp_path: Path) -> None:
    config = write(
        tmp_path / CONFIG_FILENAME,
        """
        [sources.file]
        type = "dotenv"

        [sources.environment]
        type = "env"
        prefix = "APP_"
        """,
    )
    chain = Chain.from_config(config, environ={})
    # env (rank 300) before dotenv (rank 400), though dotenv is defined first
    assert [(source.name, source.type) for source in chain.sources] == [
        ("environment", "env"),
        ("file", "dotenv"),
    ]


def test_canonical_order_puts_stores_first_and_keeps_file_order_within_a_type(tmp_path: Path) -> None:
    config = write(
        tmp_path / CONFIG_FILENAME,
        """
        [sources.dot-b]
        type = "dotenv"
        path = "b.env"

        [sources.env]
        type = "env"

        [sources.dot-a]
        type = "dotenv"
        path = "a.env"

        [sources.mem]
        type = "memory"
        """,
    )
    chain = Chain.from_config(config, environ={})
    assert [source.name for source in chain.sources] == ["mem", "env", "dot-b", "dot-a"]


def test_order_overrides_the_canonical_order(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, 'order = ["dotenv", "env"]\n' + ENV_AND_DOTENV)
    chain = Chain.from_config(config, environ={})
    assert [source.name for source in chain.sources] == ["dotenv", "env"]


def test_order_may_leave_sources_out_and_may_start_with_explicit(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, 'order = ["explicit", "dotenv"]\n' + ENV_AND_DOTENV)
    chain = Chain.from_config(config, environ={})
    assert [source.name for source in chain.sources] == ["dotenv"]


def test_order_with_the_default_chain(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, 'order = ["dotenv", "env"]\n')
    chain = Chain.from_config(config, environ={})
    assert [source.name for source in chain.sources] == ["dotenv", "env"]


def test_dotenv_path_is_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    value = generated()
    write(project / "conf" / "app.env", f"API_TOKEN={value}\n")
    config = write(
        project / CONFIG_FILENAME,
        """
        [sources.dotenv]
        type = "dotenv"
        path = "conf/app.env"
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    chain = Chain.from_config(config, environ={})
    assert chain.source("dotenv").path == project / "conf" / "app.env"  # type: ignore[attr-defined]
    assert chain.resolve("API_TOKEN").get_secret_value() == value


def test_absolute_dotenv_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "x.env"
    config = write(
        tmp_path / "cfg" / CONFIG_FILENAME,
        f"""
        [sources.dotenv]
        type = "dotenv"
        path = "{target.as_posix()}"
        """,
    )
    chain = Chain.from_config(config, environ={})
    assert chain.source("dotenv").path == target  # type: ignore[attr-defined]


# -- [secrets] pins -----------------------------------------------------------------


def test_secrets_pin_a_name_to_a_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pinned, shadow = generated(), generated()
    write(tmp_path / "pins.env", f"REAL_DB_PASSWORD={pinned}\n")
    config = write(
        tmp_path / CONFIG_FILENAME,
        ENV_AND_DOTENV
        + """
        [secrets]
        DB_PASSWORD = "dotenv://pins.env#REAL_DB_PASSWORD"
        """,
    )
    # the environment has DB_PASSWORD too, but the pin sends the lookup elsewhere
    monkeypatch.setenv("DB_PASSWORD", shadow)
    chain = Chain.from_config(config, environ={})
    assert chain.settings is not None
    assert chain.settings.secrets == {"DB_PASSWORD": SecretRef.parse("dotenv://pins.env#REAL_DB_PASSWORD")}
    assert chain.resolve("DB_PASSWORD").get_secret_value() == pinned
    explanation = chain.explain("DB_PASSWORD")
    assert explanation.pinned_to == "dotenv://pins.env#REAL_DB_PASSWORD"
    assert explanation.winner is not None
    assert explanation.winner.source == "dotenv"
    assert [a.source for a in explanation.attempts] == ["explicit", "dotenv"]


def test_secrets_pin_to_env_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = f"AC_PIN_{secrets.token_hex(4).upper()}"
    value = generated()
    monkeypatch.setenv(other, value)
    config = write(
        tmp_path / CONFIG_FILENAME,
        f"""
        [secrets]
        API_KEY = "env://{other}"
        """,
    )
    chain = Chain.from_config(config, environ={})
    assert chain.resolve("API_KEY").get_secret_value() == value


def test_malformed_pin_reference(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[secrets]\nDB_PASSWORD = "vault://secret"\n')
    message = config_error(config)
    assert str(config) in message
    assert "secrets.DB_PASSWORD" in message
    assert "malformed vault:// reference" in message
    assert "vault://MOUNT/PATH" in message


def test_pin_that_is_not_a_string(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "[secrets]\nDB_PASSWORD = 5\n")
    message = config_error(config)
    assert "secrets.DB_PASSWORD must be a reference string" in message


def test_pin_holding_a_literal_secret_is_rejected_without_echoing_it(tmp_path: Path) -> None:
    value = generated()
    config = write(tmp_path / CONFIG_FILENAME, f'[secrets]\nDB_PASSWORD = "{value}"\n')
    message = config_error(config)
    assert "secrets.DB_PASSWORD" in message
    assert "reference" in message
    assert value not in message


def test_pin_expanding_to_a_non_reference_does_not_echo_the_environment(tmp_path: Path) -> None:
    value = generated()
    config = write(tmp_path / CONFIG_FILENAME, '[secrets]\nDB_PASSWORD = "${DB_PASSWORD}"\n')
    message = config_error(config, environ={"DB_PASSWORD": value})
    assert "secrets.DB_PASSWORD" in message
    assert value not in message


def test_pin_reference_with_expansion(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[secrets]\nDB = "vault://${MOUNT:-kv}/${APP}/db#password"\n')
    settings = load_settings(config, environ={"APP": "billing"}, cwd=tmp_path)
    assert settings.secrets["DB"] == SecretRef.parse("vault://kv/billing/db#password")


# -- profiles ---------------------------------------------------------------------

PROFILED = """
    cache_ttl = 100
    order = ["env", "dotenv"]

    [sources.env]
    type = "env"
    prefix = "BASE_"
    ignore_empty = true

    [sources.dotenv]
    type = "dotenv"
    path = "base.env"

    [secrets]
    A = "env://BASE_A"
    B = "env://BASE_B"

    [profiles.dev]
    order = ["dotenv", "env"]
    cache_ttl = 0

    [profiles.dev.sources.env]
    prefix = "DEV_"

    [profiles.dev.sources.mem]
    type = "memory"

    [profiles.dev.secrets]
    B = "env://DEV_B"
    C = "env://DEV_C"

    [profiles.ci]
    retries = 0
"""


def test_profile_overrides_the_base(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, PROFILED)
    chain = Chain.from_config(config, profile="dev", environ={})
    # order is replaced, not merged
    assert [source.name for source in chain.sources] == ["dotenv", "env"]
    assert chain.cache_ttl == 0.0
    env = chain.source("env")
    # sources merge key by key: prefix from the profile, ignore_empty from the base
    assert env.prefix == "DEV_"  # type: ignore[attr-defined]
    assert env.ignore_empty is True  # type: ignore[attr-defined]
    assert chain.source("dotenv").path == tmp_path / "base.env"  # type: ignore[attr-defined]
    settings = chain.settings
    assert settings is not None
    assert settings.profile == "dev"
    assert settings.sources is not None
    assert set(settings.sources) == {"env", "dotenv", "mem"}
    # secrets merge name by name
    assert {name: str(ref) for name, ref in settings.secrets.items()} == {
        "A": "env://BASE_A",
        "B": "env://DEV_B",
        "C": "env://DEV_C",
    }
    layer = f"{config} [profiles.dev]"
    assert settings.origins["order"] == layer
    assert settings.origins["cache_ttl"] == layer
    assert settings.origins["sources.env.prefix"] == layer
    assert settings.origins["sources.env.ignore_empty"] == str(config)
    assert settings.origins["secrets.A"] == str(config)
    assert settings.origins["secrets.B"] == layer


def test_without_a_profile_the_base_applies(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, PROFILED)
    chain = Chain.from_config(config, environ={})
    assert [source.name for source in chain.sources] == ["env", "dotenv"]
    assert chain.cache_ttl == 100.0
    assert chain.source("env").prefix == "BASE_"  # type: ignore[attr-defined]
    assert chain.settings is not None
    assert sorted(chain.settings.secrets) == ["A", "B"]


def test_authchain_profile_picks_the_profile(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, PROFILED)
    settings = load_settings(config, environ={"AUTHCHAIN_PROFILE": "ci"}, cwd=tmp_path)
    assert settings.profile == "ci"
    assert settings.value("retries") == 0
    chain = Chain.from_config(config, environ={"AUTHCHAIN_PROFILE": "dev"})
    assert chain.cache_ttl == 0.0


def test_profile_argument_wins_over_authchain_profile(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, PROFILED)
    settings = load_settings(config, profile="ci", environ={"AUTHCHAIN_PROFILE": "dev"}, cwd=tmp_path)
    assert settings.profile == "ci"
    assert settings.value("cache_ttl") == 100.0


def test_unknown_profile_lists_the_profiles(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, PROFILED)
    message = config_error(config, profile="prod")
    assert str(config) in message
    assert "unknown profile 'prod'" in message
    assert "ci, dev" in message


def test_unknown_profile_when_none_are_defined(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = 1\n")
    message = config_error(config, environ={"AUTHCHAIN_PROFILE": "dev"})
    assert "unknown profile 'dev'" in message
    assert "none defined" in message


def test_profile_with_an_unknown_key(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "[profiles.dev]\ncache_tl = 1\n")
    message = config_error(config, profile="dev")
    assert f"{config} [profiles.dev]" in message
    assert "unknown key cache_tl" in message
    assert "did you mean 'cache_ttl'" in message


def test_profiles_cannot_nest(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "[profiles.dev.profiles.x]\ncache_ttl = 1\n")
    message = config_error(config, profile="dev")
    assert "unknown key profiles" in message


def test_a_profile_that_is_not_a_table(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "[profiles]\ndev = 1\n")
    message = config_error(config)
    assert str(config) in message
    assert "profiles.dev must be a table" in message


# -- ${VAR} expansion ---------------------------------------------------------------


def test_expansion_in_source_settings(tmp_path: Path) -> None:
    config = write(
        tmp_path / CONFIG_FILENAME,
        """
        [sources.env]
        type = "env"
        prefix = "${APP}_"

        [sources.dotenv]
        type = "dotenv"
        path = "${ENV_DIR:-conf}/${STAGE:-dev}.env"
        prefix = "${UNSET_PREFIX:-}"
        """,
    )
    chain = Chain.from_config(config, environ={"APP": "BILLING", "STAGE": "prod"})
    assert chain.source("env").prefix == "BILLING_"  # type: ignore[attr-defined]
    dotenv = chain.source("dotenv")
    assert dotenv.path == tmp_path / "conf" / "prod.env"  # type: ignore[attr-defined]
    assert dotenv.prefix == ""  # type: ignore[attr-defined]


def test_default_applies_when_the_variable_is_empty(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.env]\ntype = "env"\nprefix = "${P:-X_}"\n')
    chain = Chain.from_config(config, environ={"P": ""})
    assert chain.source("env").prefix == "X_"  # type: ignore[attr-defined]


def test_empty_variable_without_default_expands_to_empty(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.env]\ntype = "env"\nprefix = "${P}"\n')
    chain = Chain.from_config(config, environ={"P": ""})
    assert chain.source("env").prefix == ""  # type: ignore[attr-defined]


def test_expansion_in_numeric_top_level_settings(tmp_path: Path) -> None:
    config = write(
        tmp_path / CONFIG_FILENAME,
        """
        cache_ttl = "${TTL}"
        retries = "${RETRIES:-4}"
        max_workers = "${WORKERS}"
        async_workers = "${WORKERS}"
        """,
    )
    chain = Chain.from_config(config, environ={"TTL": "12.5", "WORKERS": "3"})
    assert chain.cache_ttl == 12.5
    assert chain.policy.retries == 4
    assert chain.max_workers == 3
    assert chain.async_workers == 3


def test_dollar_dollar_is_a_literal_dollar(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.env]\ntype = "env"\nprefix = "A$$B_$${X}"\n')
    chain = Chain.from_config(config, environ={"X": "not-used"})
    assert chain.source("env").prefix == "A$B_${X}"  # type: ignore[attr-defined]


def test_unset_variable_names_the_variable_and_the_key(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.env]\ntype = "env"\nprefix = "${APP_PREFIX}"\n')
    message = config_error(config)
    assert str(config) in message
    assert "sources.env.prefix" in message
    assert "${APP_PREFIX}" in message
    assert "APP_PREFIX is not set" in message


def test_unset_variable_in_a_top_level_setting(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, 'cache_ttl = "${TTL_SECONDS}"\n')
    message = config_error(config)
    assert f"{config}: cache_ttl" in message
    assert "TTL_SECONDS is not set" in message


def test_unset_variable_in_a_pin(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[secrets]\nDB = "vault://kv/${APP}#pw"\n')
    message = config_error(config)
    assert "secrets.DB" in message
    assert "APP is not set" in message


def test_malformed_expansion(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.env]\ntype = "env"\nprefix = "${not closed"\n')
    message = config_error(config)
    assert "sources.env.prefix" in message
    assert "malformed ${...}" in message


def test_sources_left_out_of_order_are_not_expanded(tmp_path: Path) -> None:
    config = write(
        tmp_path / CONFIG_FILENAME,
        """
        order = ["env"]

        [sources.env]
        type = "env"

        [sources.dotenv]
        type = "dotenv"
        path = "${NOT_SET_ANYWHERE}"
        """,
    )
    chain = Chain.from_config(config, environ={})
    assert [source.name for source in chain.sources] == ["env"]


# -- AUTHCHAIN_* overrides --------------------------------------------------------------


def test_environment_overrides_with_origins(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = 100\nretries = 1\n" + ENV_AND_DOTENV)
    environ = {"AUTHCHAIN_CACHE_TTL": "30", "AUTHCHAIN_ORDER": " dotenv , env ,"}
    settings = load_settings(config, environ=environ, cwd=tmp_path)
    assert settings.value("cache_ttl") == 30.0
    assert settings.value("order") == ["dotenv", "env"]
    assert settings.value("retries") == 1
    assert settings.origins["cache_ttl"] == "AUTHCHAIN_CACHE_TTL"
    assert settings.origins["order"] == "AUTHCHAIN_ORDER"
    assert settings.origins["retries"] == str(config)
    chain = Chain.from_config(config, environ=environ)
    assert chain.cache_ttl == 30.0
    assert [source.name for source in chain.sources] == ["dotenv", "env"]


def test_environment_overrides_without_a_config_file(tmp_path: Path, no_config_above: None) -> None:
    settings = load_settings(environ={"AUTHCHAIN_CACHE_TTL": "0", "AUTHCHAIN_ORDER": "dotenv"}, cwd=tmp_path)
    assert settings.path is None
    assert settings.value("cache_ttl") == 0.0
    assert settings.value("order") == ["dotenv"]
    assert settings.origins == {"cache_ttl": "AUTHCHAIN_CACHE_TTL", "order": "AUTHCHAIN_ORDER"}


def test_environment_override_with_a_bad_value_names_the_variable(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = 100\n")
    message = config_error(config, environ={"AUTHCHAIN_CACHE_TTL": "soon"})
    assert "AUTHCHAIN_CACHE_TTL" in message
    assert "cache_ttl must be a number" in message


def test_environment_order_naming_an_undefined_source(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, ENV_AND_DOTENV)
    message = config_error(config, environ={"AUTHCHAIN_ORDER": "env,vault"})
    assert "AUTHCHAIN_ORDER" in message
    assert "order names 'vault', which is not a defined source" in message


# -- ConfigError cases ---------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_tll = 5\n")
    message = config_error(config)
    assert str(config) in message
    assert "unknown key cache_tll" in message
    assert "did you mean 'cache_ttl'" in message
    assert "known keys:" in message
    for key in ("cache_ttl", "order", "sources", "secrets", "profiles", "retries"):
        assert key in message


def test_unknown_key_in_pyproject_uses_the_full_key(tmp_path: Path) -> None:
    config = write(tmp_path / "pyproject.toml", "[tool.authchain]\nordr = []\n")
    message = config_error(config)
    assert "unknown key tool.authchain.ordr" in message
    assert "did you mean 'order'" in message


def test_unknown_top_level_key_does_not_echo_its_value(tmp_path: Path) -> None:
    value = generated()
    config = write(tmp_path / CONFIG_FILENAME, f'api_token = "{value}"\n')
    message = config_error(config)
    assert "unknown key api_token" in message
    assert value not in message


def test_unknown_source_setting(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.env]\ntype = "env"\nprefx = "APP_"\n')
    message = config_error(config)
    assert str(config) in message
    assert "sources.env has unknown setting 'prefx' for type 'env'" in message
    assert "did you mean 'prefix'" in message
    assert "known settings:" in message
    assert "case_sensitive" in message


def test_unknown_source_type(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.store]\ntype = "nosuch-store"\n')
    message = config_error(config)
    assert str(config) in message
    assert "sources.store" in message
    assert "unknown source type 'nosuch-store'" in message
    assert "env" in message
    assert "dotenv" in message


def test_missing_type(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.env]\nprefix = "APP_"\n')
    message = config_error(config)
    assert str(config) in message
    assert 'sources.env needs type = "..."' in message
    assert "env" in message
    assert "dotenv" in message


def test_type_that_is_not_a_string(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "[sources.env]\ntype = 5\n")
    assert 'sources.env needs type = "..."' in config_error(config)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('cache_ttl = "abc"', "cache_ttl must be a number, got a string"),
        ("retries = 1.5", "retries must be an integer, got a number"),
        ('retries = "two"', "retries must be an integer, got a string"),
        ("retries = true", "retries must be an integer, got a boolean"),
        ('order = "env"', "order must be a list of strings, got a string"),
        ("order = [1, 2]", "order must be a list of strings, got a list"),
        ("cache_ttl = -1", "cache_ttl must be >= 0"),
        ("max_workers = 0", "max_workers must be >= 1"),
        ("async_workers = 0", "async_workers must be >= 1"),
        ("backoff = [1]", "backoff must be a number, got a list"),
    ],
)
def test_wrong_top_level_value_types(tmp_path: Path, line: str, expected: str) -> None:
    config = write(tmp_path / CONFIG_FILENAME, line + "\n")
    message = config_error(config)
    assert str(config) in message
    assert expected in message


def test_wrong_type_in_pyproject_uses_the_full_key(tmp_path: Path) -> None:
    config = write(tmp_path / "pyproject.toml", '[tool.authchain]\ncache_ttl = "abc"\n')
    assert "tool.authchain.cache_ttl must be a number" in config_error(config)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("prefix = 5", "sources.env.prefix must be a string, got an integer"),
        ('case_sensitive = "maybe"', "sources.env.case_sensitive must be true or false"),
        ('on_error = "ignore"', "sources.env.on_error must be one of 'raise', 'skip'"),
        ("retries = -1", "sources.env.retries must be >= 0"),
        ('backoff = "slow"', "sources.env.backoff must be a number"),
        ("backoff = nan", "sources.env.backoff must be a finite number"),
        ("backoff = inf", "sources.env.backoff must be a finite number"),
        ('retries = "--5"', "sources.env.retries must be an integer, got a string"),
    ],
)
def test_wrong_source_setting_types(tmp_path: Path, setting: str, expected: str) -> None:
    config = write(tmp_path / CONFIG_FILENAME, f'[sources.env]\ntype = "env"\n{setting}\n')
    message = config_error(config)
    assert str(config) in message
    assert expected in message


def test_source_table_that_is_not_a_table(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources]\nenv = "env"\n')
    message = config_error(config)
    assert str(config) in message
    assert "sources.env must be a table" in message


@pytest.mark.parametrize("key", ["sources", "secrets", "profiles"])
def test_tables_that_are_not_tables(tmp_path: Path, key: str) -> None:
    config = write(tmp_path / CONFIG_FILENAME, f'{key} = "x"\n')
    assert f"{key} must be a table" in config_error(config)


def test_order_naming_an_undefined_source(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, 'order = ["env", "dotenvv"]\n' + ENV_AND_DOTENV)
    message = config_error(config)
    assert str(config) in message
    assert "order names 'dotenvv', which is not a defined source" in message
    assert "did you mean 'dotenv'" in message
    assert "defined sources: env, dotenv" in message


def test_order_naming_an_undefined_source_with_the_default_chain(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, 'order = ["env", "vault"]\n')
    message = config_error(config)
    assert "order names 'vault', which is not a defined source" in message


def test_order_with_a_duplicate(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, 'order = ["env", "dotenv", "env"]\n' + ENV_AND_DOTENV)
    message = config_error(config)
    assert str(config) in message
    assert "order lists 'env' twice" in message


def test_order_with_explicit_not_first(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, 'order = ["env", "explicit"]\n' + ENV_AND_DOTENV)
    message = config_error(config)
    assert str(config) in message
    assert "'explicit' is always asked first" in message


def test_invalid_toml(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "cache_ttl = [\n")
    message = config_error(config)
    assert str(config) in message
    assert "invalid TOML" in message


def test_invalid_toml_does_not_echo_the_line(tmp_path: Path) -> None:
    value = generated()
    config = write(tmp_path / CONFIG_FILENAME, f'[sources.env]\ntoken = "{value}\n')
    message = config_error(config)
    assert "invalid TOML" in message
    assert value not in message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / CONFIG_FILENAME
    message = config_error(missing)
    assert str(missing) in message
    assert "does not exist" in message


def test_pyproject_without_tool_authchain(tmp_path: Path) -> None:
    config = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    message = config_error(config)
    assert str(config) in message
    assert "has no [tool.authchain] table" in message


def test_empty_sources_table(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, "[sources]\n")
    message = config_error(config)
    assert str(config) in message
    assert "sources is empty" in message
    assert "define at least one source" in message


def test_messages_name_the_profile_layer_for_profile_sources(tmp_path: Path) -> None:
    config = write(
        tmp_path / CONFIG_FILENAME,
        '[sources.env]\ntype = "env"\n\n[profiles.dev.sources.extra]\ntype = "nosuch"\n',
    )
    message = config_error(config, profile="dev")
    assert f"{config} [profiles.dev]" in message
    assert "sources.extra" in message
    assert "unknown source type 'nosuch'" in message


# -- literal secrets -----------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["token", "password", "api_key", "client_secret", "secret_access_key", "vault_token", "Password"]
)
def test_literal_secret_is_rejected_without_echoing_it(tmp_path: Path, key: str) -> None:
    value = generated()
    config = write(tmp_path / CONFIG_FILENAME, f'[sources.mem]\ntype = "memory"\n{key} = "{value}"\n')
    message = config_error(config)
    assert value not in message
    assert str(config) in message
    assert f"sources.mem.{key} looks like a literal secret" in message
    assert "use a reference" in message
    assert f"env://{key.upper()}" in message


def test_literal_secret_in_a_nested_table(tmp_path: Path) -> None:
    value = generated()
    config = write(
        tmp_path / CONFIG_FILENAME,
        f'[sources.mem]\ntype = "memory"\n\n[sources.mem.auth]\npassword = "{value}"\n',
    )
    message = config_error(config)
    assert "sources.mem.auth.password looks like a literal secret" in message
    assert value not in message


def test_literal_secret_in_a_profile_source(tmp_path: Path) -> None:
    value = generated()
    config = write(
        tmp_path / CONFIG_FILENAME,
        f'[sources.mem]\ntype = "memory"\n\n[profiles.dev.sources.mem]\ntoken = "{value}"\n',
    )
    message = config_error(config, profile="dev")
    assert "looks like a literal secret" in message
    assert value not in message


@pytest.mark.parametrize(
    "setting",
    [
        'token = "env://X"',
        'token = "vault://secret/app#token"',
        'token = "${X}"',
        'token = "${X:-Y}"',
        'credentials = "AWS_CREDENTIALS"',
        'password = "DB_PASSWORD"',
    ],
)
def test_indirect_values_pass_the_literal_secret_check(tmp_path: Path, setting: str) -> None:
    # memory declares no such setting, so the next check (unknown setting) is what fails:
    # proof the literal-secret check, which runs first, let the value through.
    config = write(tmp_path / CONFIG_FILENAME, f'[sources.mem]\ntype = "memory"\n{setting}\n')
    message = config_error(config)
    assert "looks like a literal secret" not in message
    assert "has unknown setting" in message
    assert "for type 'memory'" in message


@pytest.mark.parametrize(
    "setting",
    ['token = "vault://secret"', 'token = "prefix-${X}"', 'password = "Db_Password"', 'secret = "env://"'],
)
def test_malformed_or_partial_indirection_is_still_a_literal_secret(tmp_path: Path, setting: str) -> None:
    config = write(tmp_path / CONFIG_FILENAME, f'[sources.mem]\ntype = "memory"\n{setting}\n')
    assert "looks like a literal secret" in config_error(config)


def test_non_secret_keys_are_not_checked(tmp_path: Path) -> None:
    config = write(tmp_path / CONFIG_FILENAME, '[sources.env]\ntype = "env"\nprefix = "tokenish-value_"\n')
    chain = Chain.from_config(config, environ={})
    assert chain.source("env").prefix == "tokenish-value_"  # type: ignore[attr-defined]


def test_the_default_chain_is_what_authchains_own_backends_declare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config names no backend: each built-in package's ``default_sources`` says whether and
    how it joins, and only authchain's own types are asked (an installed plugin is not)."""
    from authchain import _registry
    from authchain.config import default_source_definitions

    own = {
        "dotenv": "authchain.backends.dotenv.source:DotenvSource",
        "env": "authchain.backends.env.source:EnvSource",
        "vault": "authchain.backends.vault.source:VaultSource",  # declares no default source
    }
    monkeypatch.setattr(_registry, "_own_entry_points", lambda: own)
    monkeypatch.setattr(
        _registry, "_entry_points", lambda: {"plugin": "authchain.backends.prefect.source:PrefectSource"}
    )
    assert default_source_definitions(tmp_path, {}) == {
        "env": {"type": "env"},
        "dotenv": {"type": "dotenv", "path": str(tmp_path / ".env")},
    }
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    with_files = {**own, "files": "authchain.backends.files.source:FilesSource"}
    monkeypatch.setattr(_registry, "_own_entry_points", lambda: with_files)
    definitions = default_source_definitions(tmp_path, {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert list(definitions) == ["files", "env", "dotenv"]  # chain order: by rank
    assert definitions["files"]["path"][0] == str(credentials)
