"""Nothing quoted back (issue 13, items 14, 16 and 17).

- Text that may be a secret is never echoed: an unparsable reference, a
  literal where a reference was expected, a URL's password (item 14). A fresh
  canary is planted in every input position of a reference (Hypothesis adds
  junk around it) and looked for in ``str(error)``, ``explain`` and the CLI's
  ``explain``, ``check`` and ``config`` output (a real ``python -m
  authchain.cli`` process).
- ``lazy()`` refuses credential values given positionally; the Dask plugin's
  ``env`` takes references for credentials and quotes no value (item 16).
- ``memory`` is a testing source type, not a production one (item 17).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authchain import Chain, ConfigError, SecretRef, masking
from authchain.backends.env.source import EnvSource
from authchain.config import describe, load_settings
from authchain.errors import BackendError
from authchain.masking import Masker
from authchain.refs import KNOWN_SCHEMES, is_reference
from authchain.values import Attempt, Explanation, SecretValue
from tests import _offline

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _private_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated text must not land in the process-wide masker (see test_fuzz)."""
    monkeypatch.setattr(masking, "default_masker", Masker())


def fresh() -> str:
    return f"q{secrets.token_hex(10)}"


def assert_absent(value: str, text: str, where: str) -> None:
    if value in text:
        pytest.fail(f"the planted value is quoted in {where}", pytrace=False)


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string for this alphabet


# -- references: a canary in every position --------------------------------------------------------

TEMPLATES = [
    "{c}",  # a value passed where a reference was expected
    "{c}!",
    "{c}://x",  # the scheme
    "env://{c}!",  # the location
    "env://{c} x",
    "vault://admin:{c}@cache",  # a password in a URL-shaped reference
    "vault://secret/{c}!/x",
    "vault://secret/app#{c}&",  # the fragment
    "vault://secret/app?{c}=1",  # a parameter name
    "vault://secret/app?kv={c}",  # a parameter value
    "vault://secret/app?version={c}",
    "vault://secret/app?{c}",  # a parameter without '='
    "aws-sm://{c}!",
    "aws-sm://s?region={c}",
    "aws-sm://s?stage={c}!",
    "aws-ssm://{c}!",
    "aws-ssm:///p?label={c}!",
    "gcp-sm://projects/{c}_X/secrets/s",
    "gcp-sm://{c}.x",
    "keyring://{c}",
    "prefect://{c}_X",
    "dotenv://.env#{c}!",
    "env://A#{c}?x",
    "memory://{c}#{c}&",
]
JUNK = st.text(alphabet="/_.-:@+=,#?&%~ $!\"'\\\u00e4\x00\n", max_size=4)


def _refused(text: str) -> ConfigError | None:
    try:
        SecretRef.parse(text)
    except ConfigError as error:
        return error
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=st.sampled_from(TEMPLATES), before=JUNK, after=JUNK)
def test_no_reference_error_quotes_any_part_of_the_text(template: str, before: str, after: str) -> None:
    canary = fresh()
    text = template.format(c=f"{before}{canary}{after}")
    error = _refused(text)
    if error is None:
        return  # a valid reference: nothing was refused
    assert_absent(canary, str(error), f"the error for {template!r}")
    assert_absent(canary, repr(error), f"repr of the error for {template!r}")
    with Chain([EnvSource(environ={}, name="env")], cache_ttl=0) as chain:
        try:
            shown = str(chain.explain(text))
        except ConfigError as failure:
            shown = str(failure)
    if is_reference(text):  # a name is what explain is asked about; a reference is not quoted
        assert_absent(canary, shown, f"explain of {template!r}")


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_is_refused_without_quoting(template: str) -> None:
    canary = fresh()
    error = _refused(template.format(c=canary))
    assert error is not None, "each template is malformed"
    assert_absent(canary, str(error), f"the error for {template!r}")


def test_reference_errors_still_say_what_is_wrong() -> None:
    message = str(_refused("vualt://secret/app#x"))
    assert "did you mean 'vault'?" in message
    assert "known schemes: aws-sm, aws-ssm, azure-kv, dotenv, env" in message
    message = str(_refused("vault://secret/app?stage=x"))
    assert "unknown parameter (allowed: kv, version)" in message
    message = str(_refused("vault://secret/a b"))
    assert "position 16" in message
    assert "known schemes" in str(_refused("postgres://user:pw@host/db"))


def test_pydantic_reference_errors_quote_nothing() -> None:
    """The reason pydantic reports is ours and quotes nothing; pydantic itself adds the
    input (``input_value=...``) unless the model sets ``hide_input_in_errors=True``."""
    pydantic = pytest.importorskip("pydantic")
    canary = fresh()

    class Hidden(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        model_config = pydantic.ConfigDict(hide_input_in_errors=True)
        ref: SecretRef

    with pytest.raises(pydantic.ValidationError) as caught:
        Hidden(ref=f"env://{canary}!")
    assert_absent(canary, str(caught.value), "a ValidationError with hidden input")
    assert_absent(canary, caught.value.errors()[0]["msg"], "the reason of the ValidationError")


# -- config: secrets, literals, URL passwords ------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=st.sampled_from(TEMPLATES), before=JUNK, after=JUNK)
def test_config_pins_never_quote_a_malformed_reference(
    tmp_path_factory: pytest.TempPathFactory, template: str, before: str, after: str
) -> None:
    canary = fresh()
    text = template.format(c=f"{before}{canary}{after}")
    folder = tmp_path_factory.mktemp("pins")
    config = folder / "authchain.toml"
    config.write_text(f"[secrets]\nP = {toml_string(text)}\n", encoding="utf-8")
    try:
        load_settings(config, environ={}, cwd=folder)
    except ConfigError as error:
        assert_absent(canary, str(error), f"the config error for {template!r}")


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ("clients.vault", 'jwt = "{c}"'),
        ("clients.vault", 'role_id = "{c}"'),
        ("clients.vault", 'secret_id = "{c}"'),
        ("clients.vault", 'token = "{c}"'),
        ("clients.aws", 'credentials = ["{c}", "{c}"]'),
        ("clients.aws", 'credentials = ["AWS_CREDENTIALS", "{c}"]'),
        ("clients.gcp", 'credentials = ["{c}"]'),
        ("clients.gcp", 'credentials = "{c}"'),
        ("sources.v", 'type = "vault"\njwt = "{c}"'),
        ("sources.v", 'type = "vault"\nrole_id = "{c}"'),
        ("sources.v", 'type = "vault"\ntoken = ["{c}"]'),
    ],
)
def test_literal_credentials_are_refused_in_clients_and_sources(
    tmp_path: Path, table: str, line: str
) -> None:
    canary = fresh()
    config = tmp_path / "authchain.toml"
    config.write_text(f"[{table}]\n{line.format(c=canary)}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="looks like a literal secret") as caught:
        load_settings(config, environ={}, cwd=tmp_path)
    assert_absent(canary, str(caught.value), "the literal-secret error")


@pytest.mark.parametrize(
    "line",
    [
        'jwt = "VAULT_JWT"',
        'role_id = "env://VAULT_ROLE_ID"',
        'role_id = "${VAULT_ROLE_ID}"',
        'jwt = "vault://secret/ci#jwt"',
    ],
)
def test_indirect_client_credentials_are_accepted(tmp_path: Path, line: str) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text(f"[clients.vault]\n{line}\n", encoding="utf-8")
    settings_ = load_settings(config, environ={"VAULT_ROLE_ID": "VAULT_ROLE_ID"}, cwd=tmp_path)
    assert settings_.raw_clients["vault"]
    config.write_text('[clients.aws]\ncredentials = ["AWS_CREDENTIALS", "env://OTHER"]\n', encoding="utf-8")
    load_settings(config, environ={}, cwd=tmp_path)


def _url_config(tmp_path: Path, password: str, port: int = 9) -> Path:
    config = tmp_path / "authchain.toml"
    config.write_text(
        f"""
retries = 0
deadline = 5

[sources.vault]
type = "vault"
url = "http://admin:{password}@127.0.0.1:{port}"
token = "HARDEN_NO_SUCH_TOKEN"
timeout = 2.0

[sources.env]
type = "env"

[clients.vault]
url = "https://ci:{password}@127.0.0.1:{port}"
""",
        encoding="utf-8",
    )
    return config


def test_url_passwords_are_redacted_in_config_check_errors_and_reprs(tmp_path: Path) -> None:
    canary = fresh()
    config = _url_config(tmp_path, canary)
    settings_ = load_settings(config, environ={"HARDEN_NO_SUCH_TOKEN": "x"}, cwd=tmp_path)
    assert_absent(canary, repr(settings_), "repr(Settings)")
    with Chain.from_settings(settings_) as chain:
        shown = json.dumps(describe(chain, settings_))
        assert_absent(canary, shown, "describe() (authchain config)")
        assert "admin:***@127.0.0.1" in shown
        assert "ci:***@127.0.0.1" in shown
        reports = chain.check()
        assert_absent(canary, repr(reports), "check()")
        assert_absent(canary, repr(chain), "repr(Chain)")
        assert_absent(canary, repr(chain.sources), "repr of the sources")
    for error in (
        BackendError(f"cannot reach https://u:{canary}@vault:8200/v1"),
        BackendError(f"cannot reach https://u:{canary}@vault").with_source("v", label="v (vault)"),
        ConfigError(f"bad url 'postgres://app:{canary}@db/x'"),
    ):
        assert_absent(canary, str(error), "an error message")
        assert_absent(canary, repr(error), "an error's repr")
        assert_absent(canary, pickle.loads(pickle.dumps(error)).args[0], "an unpickled error")  # noqa: S301
        assert ":***@" in str(error)
    attempt = Attempt("v", "vault", "error", f"error: http://admin:{canary}@127.0.0.1:9 refused")
    explanation = Explanation("X", (attempt,))
    for where, text in {
        "Attempt.line()": attempt.line(),
        "str(explain)": str(explanation),
        "explain --json": json.dumps(explanation.as_dict()),
    }.items():
        assert_absent(canary, text, where)


# -- the CLI, in a process of its own ------------------------------------------------------------


def cli(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VAULT_", "AUTHCHAIN_", "AWS_", "GOOGLE_"))
    }
    environment.update(_offline.OFFLINE_ENV)  # the AWS_ ones were just dropped
    environment.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path))
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "authchain.cli", *argv],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "template", ["env://{c}!", "vault://admin:{c}@cache", "aws-sm://s?region={c}", "env://A#{c}&"]
)
def test_cli_explain_and_resolve_never_quote_a_malformed_reference(tmp_path: Path, template: str) -> None:
    canary = fresh()
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.env]\ntype = "env"\n', encoding="utf-8")
    for command in ("explain", "resolve"):
        done = cli(tmp_path, command, "--config", str(config), template.format(c=canary))
        assert_absent(canary, done.stdout + done.stderr, f"`authchain {command}` output")
        assert done.returncode == 2, done.stderr[-300:]


@pytest.mark.parametrize(
    "body",
    [
        '[secrets]\nP = "env://{c}!"\n',
        '[secrets]\nP = "vault://admin:{c}@cache"\n',
        '[secrets]\nP = "{c}"\n',
        '[clients.vault]\nrole_id = "{c}"\n',
        '[clients.vault]\njwt = "{c}"\n',
        '[clients.aws]\ncredentials = ["{c}", "x"]\n',
        '[sources.v]\ntype = "vault"\nurl = "http://127.0.0.1:9"\ntoken = "{c}"\n',
    ],
)
def test_cli_config_and_check_never_quote_a_literal(tmp_path: Path, body: str) -> None:
    canary = fresh()
    config = tmp_path / "authchain.toml"
    config.write_text(body.format(c=canary), encoding="utf-8")
    for command in (["config"], ["config", "--json"], ["check"], ["check", "--json"]):
        done = cli(tmp_path, *command, "--config", str(config))
        assert_absent(canary, done.stdout + done.stderr, f"`authchain {' '.join(command)}` output")
        assert done.returncode == 2, done.stderr[-300:]


def test_cli_config_and_check_redact_url_passwords(tmp_path: Path) -> None:
    canary = fresh()
    config = _url_config(tmp_path, canary)
    outputs = {}
    for command in (["config"], ["config", "--json"], ["check"], ["check", "--json"]):
        done = cli(tmp_path, *command, "--config", str(config), env={"HARDEN_NO_SUCH_TOKEN": "x"})
        outputs[" ".join(command)] = done.stdout + done.stderr
        assert_absent(canary, done.stdout + done.stderr, f"`authchain {' '.join(command)}` output")
    assert "admin:***@127.0.0.1" in outputs["config"]
    assert "admin:***@127.0.0.1" in outputs["config --json"]


# -- item 16: lazy() and the Dask plugin ----------------------------------------------------------


def test_lazy_refuses_credentials_given_positionally() -> None:
    from authchain.clients import aws_client, aws_session, gcp_credentials, lazy, vault_client

    canary = fresh()

    def my_factory(api_key: str, region: str = "x") -> None:
        raise AssertionError("never built")

    calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
        (aws_session, ({"ACCESS_KEY": canary, "SECRET_ACCESS_KEY": canary},), {}),
        (aws_session, (SecretValue(canary),), {}),
        (aws_session, (canary,), {}),
        (gcp_credentials, (json.dumps({"type": "service_account", "private_key": canary}),), {}),
        (vault_client, (canary,), {}),  # keyword-only parameters: any positional value is refused
        (aws_client, ("s3", canary), {}),
        (my_factory, (canary,), {}),
        (my_factory, (), {"api_key": canary}),
        (aws_client, ("s3",), {"token": canary}),
        (aws_client, ("s3",), {"aws_session_token": canary}),
        (vault_client, (), {"role_id": canary}),
        (vault_client, (), {"jwt": SecretValue(canary)}),
    ]
    for factory, args, kwargs in calls:
        with pytest.raises(ConfigError) as caught:
            lazy(factory, *args, **kwargs)
        assert_absent(canary, str(caught.value), f"lazy({factory.__name__}, ...)")
        assert_absent(canary, repr(caught.value), f"lazy({factory.__name__}, ...)")


def test_lazy_keeps_documented_calls_and_pickles_no_value() -> None:
    from authchain.clients import aws_client, aws_session, gcp_credentials, lazy, vault_client

    clients = [
        lazy(aws_client, "s3"),
        lazy(aws_client, "s3", region_name="eu-west-1"),
        lazy(aws_session, "aws-sm://prod/aws-creds"),
        lazy(aws_session, SecretRef.parse("env://AWS_CREDS")),
        lazy(gcp_credentials, "vault://secret/gcp#key"),
        lazy(vault_client, token="env://VAULT_TOKEN"),
        lazy(vault_client),
    ]
    for client in clients:
        clone = pickle.loads(pickle.dumps(client))  # noqa: S301 - our own bytes
        assert repr(clone) == repr(client)
    assert repr(clients[0]) == "lazy(aws_client, 's3')"


CREDENTIAL_NAMES = [
    "PGPASSWORD",
    "DATABASE_URL",
    "SENTRY_DSN",
    "GITHUB_PAT",
    "JWT",
    "VAULT_ROLE_ID",
    "VAULT_TOKEN",
    "MYSQL_PWD",
    "PREFECT_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "SLACK_WEBHOOK_SECRET",
]


@pytest.fixture
def dask_plugin() -> Any:
    pytest.importorskip("distributed")
    from authchain.dask import AuthchainWorkerPlugin

    return AuthchainWorkerPlugin


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_the_dask_plugin_refuses_literal_credentials_without_quoting_them(
    dask_plugin: Any, name: str
) -> None:
    canary = fresh()
    with pytest.raises(ConfigError) as caught:
        dask_plugin(env={name: canary})
    assert_absent(canary, str(caught.value), f"the error for env[{name!r}]")
    with pytest.raises(ConfigError):  # a malformed reference is no better than a literal
        dask_plugin(env={name: f"env://{canary}!"})
    assert dask_plugin(env={name: "vault://secret/app#password"}).env == {name: "vault://secret/app#password"}


@pytest.mark.parametrize(
    "value", ["postgres://app:{c}@db:5432/x", "https://{c}@o0.ingest.sentry.io/1", "redis://:{c}@cache:6379"]
)
def test_the_dask_plugin_refuses_urls_with_credentials_under_any_name(dask_plugin: Any, value: str) -> None:
    canary = fresh()
    with pytest.raises(ConfigError) as caught:
        dask_plugin(env={"APP_BACKEND": value.format(c=canary)})
    assert_absent(canary, str(caught.value), "the error for a URL with a user part")


# Credentials whose name says nothing (``APP_SETTING``): the shape of the value gives them away.
CREDENTIAL_SHAPES = {
    "a token in a URL's query": "https://api.example.test/v1/items?page=2&access_token={c}",
    "a signed S3 URL": "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAX%2F1&X-Amz-Signature={c}",
    "an Azure SAS": "sv=2021-08-06&ss=b&srt=o&sig={c}",
    "a Slack webhook": "https://hooks.slack.com/services/T0000/B0000/{c}",
    "a Discord webhook": "https://discord.com/api/webhooks/1234/{c}",
    "a PEM private key": "-----BEGIN PRIVATE KEY-----\nMII{c}\n-----END PRIVATE KEY-----\n",
    "a JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{c}.{c}",
    "a GitHub token": "ghp_{c}{c}",
    "a GitLab token": "glpat-{c}",
    "a Slack bot token": "xoxb-1234-{c}",
    "a Stripe key": "sk_live_{c}",
    "a Vault token": "hvs.{c}{c}",
    "an Authorization value": "Bearer {c}",
}


@pytest.mark.parametrize("shape", sorted(CREDENTIAL_SHAPES))
def test_the_dask_plugin_refuses_credential_shaped_values_under_any_name(
    dask_plugin: Any, shape: str
) -> None:
    import traceback

    canary = fresh()
    value = CREDENTIAL_SHAPES[shape].format(c=canary)
    for name in ("APP_SETTING", "BEARER", "UPLOAD_URL"):
        with pytest.raises(ConfigError) as caught:
            dask_plugin(env={name: value})
        error = caught.value
        assert_absent(canary, str(error), f"the error for {shape} in env[{name!r}]")
        shown = traceback.TracebackException.from_exception(error, capture_locals=True)
        for frame in shown.stack:
            if "authchain" in Path(frame.filename).parts:  # the library's frames, not this test's
                assert_absent(canary, repr(frame.locals), f"the locals of {frame.name}")


def test_the_dask_plugin_refuses_an_aws_access_key_id_under_any_name(dask_plugin: Any) -> None:
    key_id = "AKIA" + secrets.token_hex(8).upper()
    with pytest.raises(ConfigError) as caught:
        dask_plugin(env={"UPLOADER": key_id})
    assert_absent(key_id, str(caught.value), "the error for an access key id")


@pytest.mark.parametrize("shape", sorted(CREDENTIAL_SHAPES))
def test_lazy_refuses_credential_shaped_values_under_any_name(shape: str) -> None:
    from authchain.clients import aws_client, lazy

    canary = fresh()
    value = CREDENTIAL_SHAPES[shape].format(c=canary)

    def my_factory(setting: str = "", options: Any = None) -> None:
        raise AssertionError("never built")

    for args, kwargs in (((value,), {}), ((), {"setting": value}), ((), {"options": {"upload": [value]}})):
        with pytest.raises(ConfigError) as caught:
            lazy(my_factory, *args, **kwargs)
        assert_absent(canary, str(caught.value), f"lazy(my_factory, ...) with {shape}")
    with pytest.raises(ConfigError) as caught:
        lazy(aws_client, "s3", endpoint_url=value)
    assert_absent(canary, str(caught.value), f"lazy(aws_client, endpoint_url=...) with {shape}")


def test_settings_that_are_not_credentials_still_travel(dask_plugin: Any) -> None:
    from authchain.clients import aws_client, lazy

    settings = {
        "VAULT_ADDR": "https://vault.internal:8200",
        "AWS_REGION": "eu-west-1",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
        "DATA_URL": "s3://bucket/prefix?region=eu-west-1&page=2",
        "LOG_LEVEL": "DEBUG",
        "APP_CONFIG": "/etc/app/config.toml",
        "SEARCH": "https://example.test/search?q=monkey&key_count=3",
    }
    assert dask_plugin(env=settings).env == settings
    lazy(aws_client, "s3", region_name="eu-west-1", endpoint_url="https://s3.eu-west-1.amazonaws.com")


def test_preload_refuses_before_anything_is_registered(dask_plugin: Any) -> None:
    from authchain.dask import preload

    registered: list[Any] = []

    class FakeClient:
        asynchronous = False

        def register_plugin(self, plugin: Any) -> None:
            registered.append(plugin)

    canary = fresh()
    with pytest.raises(ConfigError) as caught:
        preload(FakeClient(), env={"GITHUB_PAT": canary})  # type: ignore[arg-type]
    assert_absent(canary, str(caught.value), "preload's error")
    assert registered == []
    documented = {
        "VAULT_ADDR": "https://vault:8200",
        "AUTHCHAIN_PROFILE": "prod",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
    }
    plugin = preload(FakeClient(), profile="prod", env=documented)  # type: ignore[arg-type]
    assert registered == [plugin]
    assert plugin.env == documented


# -- item 17: memory is a testing type ------------------------------------------------------------


def _pyproject_entry_points() -> dict[str, str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(data["project"]["entry-points"]["authchain.sources"])


def test_pyproject_registers_no_testing_tool_as_a_source() -> None:
    entry_points = _pyproject_entry_points()
    assert "memory" not in entry_points
    assert not [target for target in entry_points.values() if target.startswith("authchain.testing")]


@pytest.fixture
def production_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry as a production process sees it: the entry points this checkout
    declares (not whatever an older install left in the metadata), no testing types."""
    from authchain import _registry

    declared = _pyproject_entry_points()
    monkeypatch.setattr(_registry, "_entry_points", lambda: declared)
    monkeypatch.setattr(_registry, "_testing", {})
    monkeypatch.setattr(_registry, "_loaded", {k: v for k, v in _registry._loaded.items() if k != "memory"})


def test_memory_is_not_a_production_source_type(production_registry: None, tmp_path: Path) -> None:
    from authchain._registry import load_source_class, registered_types

    assert "memory" not in registered_types()
    assert not is_reference("memory://NAME")
    assert "memory" not in KNOWN_SCHEMES
    with pytest.raises(ConfigError, match="unknown source type 'memory'"):
        load_source_class("memory")
    with pytest.raises(ConfigError, match="unknown reference scheme"):
        SecretRef.parse("memory://NAME")
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.m]\ntype = "memory"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown source type"):
        load_settings(config, environ={}, cwd=tmp_path)


def test_testing_entry_points_from_an_old_install_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from authchain import _registry

    stale = [
        importlib.metadata.EntryPoint("env", "authchain.backends.env.source:EnvSource", "authchain.sources"),
        importlib.metadata.EntryPoint("memory", "authchain.testing.memory:MemorySource", "authchain.sources"),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: stale)
    found = _registry._entry_points.__wrapped__()
    assert found == {"env": "authchain.backends.env.source:EnvSource"}


def test_the_pytest_plugin_and_register_memory_source_make_it_known() -> None:
    from authchain._registry import load_source_class, registered_types
    from authchain.testing import MemorySource, register_memory_source

    assert registered_types()["memory"] == "authchain.testing.memory:MemorySource"  # the plugin did it
    register_memory_source()  # idempotent
    assert load_source_class("memory") is MemorySource
    assert SecretRef.parse("memory://A#b") == SecretRef("memory", "A", "b")
    with Chain([MemorySource({"A": '{"b": "x"}'})], cache_ttl=0) as chain:
        assert chain.resolve("memory://A#b").get_secret_value() == "x"


def test_production_modules_never_import_authchain_testing() -> None:
    offenders = []
    for path in sorted((ROOT / "authchain").rglob("*.py")):
        if "testing" in path.relative_to(ROOT / "authchain").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name == "authchain.testing" or name.startswith("authchain.testing.") for name in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_run_passes_memory_references_through_as_text(tmp_path: Path) -> None:
    config = tmp_path / "authchain.toml"
    config.write_text('[sources.env]\ntype = "env"\n', encoding="utf-8")
    child = "import os; print(os.environ['HARDEN_MEMORY_REF'])"
    done = cli(
        tmp_path,
        "run",
        "--config",
        str(config),
        "--",
        sys.executable,
        "-c",
        child,
        env={"HARDEN_MEMORY_REF": "memory://ANY_NAME"},
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "memory://ANY_NAME"
    config.write_text('[sources.m]\ntype = "memory"\n', encoding="utf-8")
    done = cli(tmp_path, "check", "--config", str(config))
    assert done.returncode == 2
    assert "unknown source type 'memory'" in done.stderr


def _load_and_explain_vault(config: Path, environ: dict[str, str], folder: Path) -> None:
    from authchain.clients import explain_client

    with Chain.from_settings(load_settings(config, environ=environ, cwd=folder)) as chain:
        explain_client("vault", chain=chain)


@pytest.mark.parametrize("table", ["sources.v", "clients.vault"])
def test_a_credential_setting_expanding_to_a_value_is_refused_unquoted(tmp_path: Path, table: str) -> None:
    canary = fresh()
    config = tmp_path / "authchain.toml"
    source = '[sources.v]\ntype = "vault"\nurl = "http://127.0.0.1:9"\n'
    body = (
        f'{source}token = "${{HARDEN_T}}"\n'
        if table == "sources.v"
        else f'{source}\n[clients.vault]\nurl = "http://127.0.0.1:9"\ntoken = "${{HARDEN_T}}"\n'
    )
    config.write_text(body, encoding="utf-8")
    for indirect in ("VAULT_TOKEN", "env://VAULT_TOKEN"):
        _load_and_explain_vault(config, {"HARDEN_T": indirect}, tmp_path)
    with pytest.raises(ConfigError, match="neither a secret name nor a reference") as caught:
        _load_and_explain_vault(config, {"HARDEN_T": canary}, tmp_path)
    assert_absent(canary, str(caught.value), "the error for an expanded credential setting")
    done = cli(tmp_path, "check", "--config", str(config), env={"HARDEN_T": canary})
    assert_absent(canary, done.stdout + done.stderr, "`authchain check` output")


def test_lazy_refuses_malformed_references_and_urls_with_passwords() -> None:
    from authchain.clients import lazy, vault_client

    canary = fresh()

    def connect(dsn: str, pool: int = 1) -> None:
        raise AssertionError("never built")

    for call in (
        lambda: lazy(vault_client, token=f"env://{canary}!"),
        lambda: lazy(connect, f"postgres://app:{canary}@db:5432/x"),
        lambda: lazy(connect, dsn=f"https://ci:{canary}@127.0.0.1/"),
    ):
        with pytest.raises(ConfigError) as caught:
            call()
        assert_absent(canary, str(caught.value), "lazy()'s error")
    assert repr(lazy(connect, "postgres://db:5432/x")) == "lazy(connect, 'postgres://db:5432/x')"
