"""The Azure Key Vault backend attacked the way issue 13 attacked the rest of the library.

Each test plants fresh random values (the service principal's client secret,
the access tokens the fake authority issues, secret values) and proves they
reach no log record, error text or frame, pickle or CLI output; that a
credential the user named is used or refused, never replaced by AZURE_* or
DefaultAzureCredential; that a hostile challenge cannot redirect a token; and
that a Retry-After of any shape is bounded by the deadline. All against the
in-process HTTPS Key Vault and Entra authority (tests/servers/azure_keyvault.py).
"""

from __future__ import annotations

import json
import logging
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.keyvault.secrets", reason="needs the azure extra")
pytest.importorskip("azure.identity", reason="needs the azure extra")

import authchain
from authchain import BackendError, Chain, ConfigError
from authchain.backends.azure.source import AzureKeyVaultSource, secret_client
from authchain.backends.env.source import EnvSource
from authchain.testing import canary
from tests.backends.azure.test_source import (
    CLIENT_ID,
    environ_for,
    fast_chain,
    make_source,
    sp_json,
)
from tests.hardening.test_frames import exception_chain, forms
from tests.servers.azure_keyvault import FakeKeyVault

OTHER_TENANT = "99999999-0000-4000-8000-0000000000ff"


def tokens(fake: FakeKeyVault) -> list[str]:
    with fake._lock:
        return list(fake._tokens)


def assert_no_form(value: str, text: str | bytes, where: str) -> None:
    """Neither ``value`` nor any encoding of it (base64, hex, URL, JSON) is in ``text``."""
    haystack = text.decode("latin-1") if isinstance(text, bytes) else text
    for form, needle in forms(value).items():
        if needle and needle in haystack:
            pytest.fail(f"a planted value ({form}) leaked into {where}", pytrace=False)


def assert_frames_clean(value: str, error: BaseException) -> None:
    """No message, repr or frame local (outside this file) of ``error`` or any error behind it
    (``__cause__``, ``__context__``) holds ``value`` in any encoding."""
    import traceback

    for number, item in enumerate(exception_chain(error)):
        label = f"{type(item).__name__} #{number} of the chain"
        assert_no_form(value, str(item), f"str() of {label}")
        assert_no_form(value, repr(item), f"repr() of {label}")
        summary = traceback.TracebackException(type(item), item, item.__traceback__, capture_locals=True)
        for frame in summary.stack:
            if frame.filename == __file__:
                continue
            for name, shown in (frame.locals or {}).items():
                assert_no_form(value, shown, f"local {name!r} of {frame.name} in {label}")


@pytest.fixture
def sdk_debug_records() -> Iterator[list[logging.LogRecord]]:
    """Every record at DEBUG with azure-core's and msal's own loggers at DEBUG, masking installed."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.DEBUG)
    names = ("", "azure", "msal", "urllib3", "authchain")
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    authchain.install_log_masking()
    try:
        yield records
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# -- values in logs, errors, frames and pickles ------------------------------------------------


def test_sdk_debug_logs_show_no_client_secret_token_or_value(
    azure_vault: FakeKeyVault, sdk_debug_records: list[logging.LogRecord]
) -> None:
    secret, value = canary("sp"), canary()
    azure_vault.add_client(CLIENT_ID, secret)
    azure_vault.set_secret("DB-PASSWORD", value)
    azure_vault.set_secret("JSON", json.dumps({"password": value}))
    source = make_source(azure_vault, environ=environ_for(azure_vault, secret))
    with fast_chain(source) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value
        assert chain.resolve("azure-kv://test-vault/JSON#password").get_secret_value() == value
        chain.explain("DB_PASSWORD")
    wrong = canary("wrong")
    azure_vault.echo = f" (client secret was {wrong})"  # an authority that quotes what it got
    refused = make_source(azure_vault, environ=environ_for(azure_vault, wrong))
    with fast_chain(refused) as chain, pytest.raises(BackendError):
        chain.resolve("DB_PASSWORD")
    assert any(r.name.startswith(("azure", "msal")) for r in sdk_debug_records), "SDK debug was on"
    formatter = logging.Formatter("%(name)s %(message)s")
    planted = [secret, value, wrong, *tokens(azure_vault)]
    for record in sdk_debug_records:
        text = formatter.format(record) + "\n" + "\n".join(map(str, vars(record).values()))
        for each in planted:
            assert_no_form(each, text, f"a {record.levelname} record of {record.name}")


def _first_read_then(fake: FakeKeyVault, source: AzureKeyVaultSource, **fault: Any) -> BackendError:
    """One good read (so a token exists and the SDK frames hold it), then ``fault``."""
    fake.set_secret("WARM", canary())
    with fast_chain(source, retries=0) as chain:
        chain.resolve("WARM")
        fake.fail(**fault)
        with pytest.raises(BackendError) as caught:
            chain.resolve("DB_PASSWORD")
    return caught.value


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_sdk_errors_hold_no_token_or_secret_in_text_chain_or_frames(
    azure_vault: FakeKeyVault, status: int
) -> None:
    """An HttpResponseError carries the response (and its request, with the bearer token):
    nothing of it may reach the BackendError's text, its __cause__/__context__ or any frame
    local (traceback.TracebackException(capture_locals=True), as Sentry shows it)."""
    secret = canary("sp")
    azure_vault.add_client(CLIENT_ID, secret)
    azure_vault.echo = f" (you sent client secret {secret})"
    source = make_source(azure_vault, environ=environ_for(azure_vault, secret))
    error = _first_read_then(azure_vault, source, status=status, times=5)
    for planted in [secret, *tokens(azure_vault)]:
        assert_frames_clean(planted, error)
        assert_no_form(planted, pickle.dumps(error), "a pickled BackendError")


def test_a_refused_client_secret_holds_nothing_in_text_chain_or_frames(azure_vault: FakeKeyVault) -> None:
    """ClientAuthenticationError carries the token endpoint's body, here quoting the secret."""
    wrong = canary("wrong")
    azure_vault.add_client(CLIENT_ID, canary("right"))
    azure_vault.echo = f" (client secret was {wrong})"
    source = make_source(azure_vault, environ=environ_for(azure_vault, wrong))
    with fast_chain(source) as chain, pytest.raises(BackendError) as caught:
        chain.resolve("DB_PASSWORD")
    assert caught.value.access_denied
    assert_frames_clean(wrong, caught.value)
    assert_no_form(wrong, pickle.dumps(caught.value), "a pickled BackendError")


def test_a_source_pickles_without_credentials_after_errors(azure_vault: FakeKeyVault) -> None:
    secret, value = canary("sp"), canary()
    azure_vault.add_client(CLIENT_ID, secret)
    azure_vault.set_secret("DB-PASSWORD", value)
    source = make_source(azure_vault, environ=environ_for(azure_vault, secret))
    _first_read_then(azure_vault, source, status=500, times=3)
    data = pickle.dumps(source)
    for planted in [secret, value, *tokens(azure_vault)]:
        assert_no_form(planted, data, "pickle.dumps(source)")
    assert secret not in repr(source)


# -- the CLI: --debug, explain, check, config ------------------------------------------------------


def test_cli_output_shows_no_credential_token_or_value(
    azure_vault: FakeKeyVault,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from authchain._default import reset_default_chain
    from authchain.cli import main

    secret, value = canary("sp"), canary()
    azure_vault.add_client(CLIENT_ID, secret)
    azure_vault.set_secret("DB-PASSWORD", value)
    config = tmp_path / "authchain.toml"
    config.write_text(
        "cache_ttl = 0\n"
        "[sources.kv]\n"
        'type = "azure-kv"\n'
        'vault_name = "test-vault"\n'
        f'vault_url = "{azure_vault.url}"\n'
        f'authority = "{azure_vault.url}"\n'
        f"ca_bundle = {json.dumps(azure_vault.ca_file)}\n"
        'credentials = "env://AZ_SP_JSON"\n'
        "[sources.env]\n"
        'type = "env"\n'
        "[clients.azure]\n"
        'credentials = "env://AZ_SP_JSON"\n'
        'vault_name = "test-vault"\n'
    )
    monkeypatch.setenv("AUTHCHAIN_CONFIG", str(config))
    monkeypatch.setenv("AZ_SP_JSON", sp_json(azure_vault, secret))
    reset_default_chain()
    outputs = []
    try:
        for argv in (
            ["--debug", "resolve", "DB_PASSWORD"],
            ["--debug", "explain", "DB_PASSWORD"],
            ["--debug", "check"],
            ["config"],
            ["config", "--json"],
            ["--debug", "--debug-sdk", "resolve", "azure-kv://test-vault/DB-PASSWORD"],
        ):
            main(argv)
            captured = capsys.readouterr()
            outputs.append((" ".join(argv), captured.out + captured.err))
    finally:
        reset_default_chain()
    assert tokens(azure_vault), "the CLI did talk to the vault"
    for where, output in outputs:
        for planted in [secret, value, *tokens(azure_vault)]:
            assert_no_form(planted, output, f"`authchain {where}`")


# -- wrong identity ----------------------------------------------------------------------


@pytest.fixture
def other_identity(azure_vault: FakeKeyVault, monkeypatch: pytest.MonkeyPatch) -> str:
    """AZURE_* in the real environment for another tenant's principal the fake would accept."""
    secret = canary("other")
    azure_vault.add_client("00000000-0000-4000-8000-0000000000aa", secret)
    monkeypatch.setenv("AZURE_TENANT_ID", azure_vault.tenant)
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-4000-8000-0000000000aa")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    return secret


def test_a_named_credential_that_is_missing_never_falls_back_to_azure_variables(
    azure_vault: FakeKeyVault, other_identity: str
) -> None:
    azure_vault.set_secret("DB-PASSWORD", canary())
    for name in ("AZ_SP", "env://AZ_SP", "env://AZ_SP#json"):
        source = AzureKeyVaultSource(
            vault_url=azure_vault.url,
            authority=azure_vault.url,
            ca_bundle=azure_vault.ca_file,
            credentials=name.replace("#json", ""),
        )
        try:
            with fast_chain(source, EnvSource(name="env")) as chain, pytest.raises(ConfigError):
                chain.resolve("DB_PASSWORD")
        finally:
            source.close()
    assert azure_vault.count("POST", "/") == 0, "a token was asked with the AZURE_* identity"


def test_a_named_client_credential_that_is_missing_never_falls_back(
    azure_vault: FakeKeyVault, other_identity: str
) -> None:
    from authchain.clients import azure_credential, azure_secret_client, clear

    clear()
    chain = Chain([EnvSource(name="env")])
    with pytest.raises(ConfigError, match="AZ_SP"):
        azure_secret_client(vault_url=azure_vault.url, credential_name="AZ_SP", chain=chain)
    with pytest.raises(ConfigError, match="AZ_SP"):
        azure_credential(credential_name="env://AZ_SP", chain=chain)
    assert azure_vault.count("POST", "/") == 0


# -- the bearer challenge ------------------------------------------------------------------


def test_a_challenge_naming_another_tenant_gets_no_token(azure_vault: FakeKeyVault) -> None:
    """A vault whose challenge names a foreign tenant: the credential (bound to its own tenant)
    asks for no token there, and the vault receives none."""
    secret = canary("sp")
    azure_vault.add_client(CLIENT_ID, secret)
    azure_vault.challenge = (
        f'Bearer authorization="{azure_vault.url}/{OTHER_TENANT}", resource="https://vault.azure.net"'
    )
    source = make_source(azure_vault, environ=environ_for(azure_vault, secret))
    with fast_chain(source) as chain, pytest.raises(BackendError) as caught:
        chain.resolve("DB_PASSWORD")
    assert caught.value.access_denied
    with azure_vault._lock:
        asked = [path for method, path, _ in azure_vault.requests if method == "POST"]
        bearer = [path for _, path, auth in azure_vault.requests if auth == "Bearer"]
    assert not any(OTHER_TENANT in path for path in asked), "a token was asked of the foreign tenant"
    assert bearer == [], "a token was sent to the vault"


def test_a_challenge_naming_another_authority_host_sends_it_nothing(azure_vault: FakeKeyVault) -> None:
    """The challenge's authorization URL names another host: the credential keeps its own
    authority (the tenant is all the SDK takes from it), so that host is never asked."""
    from tests.test_config_trust import Listener

    attacker = Listener()
    try:
        secret, value = canary("sp"), canary()
        azure_vault.add_client(CLIENT_ID, secret)
        azure_vault.set_secret("DB-PASSWORD", value)
        spoofed = attacker.url.replace("http://", "https://")
        azure_vault.challenge = (
            f'Bearer authorization="{spoofed}/{azure_vault.tenant}", resource="https://vault.azure.net"'
        )
        source = make_source(azure_vault, environ=environ_for(azure_vault, secret))
        with fast_chain(source) as chain:
            assert chain.resolve("DB_PASSWORD").get_secret_value() == value
        assert attacker.requests == []
    finally:
        attacker.close()


def _challenge_policy(client: Any) -> Any:
    from azure.keyvault.secrets._shared.challenge_auth_policy import ChallengeAuthPolicy

    policies = client._client._client._pipeline._impl_policies
    return next(
        p._policy if hasattr(p, "_policy") else p
        for p in policies
        if isinstance(getattr(p, "_policy", p), ChallengeAuthPolicy)
    )


@pytest.mark.parametrize(
    ("url", "checked"),
    [
        ("https://my-vault.vault.azure.net", True),
        ("https://my-vault.privatelink.vaultcore.azure.net", True),
        ("https://vault.example.com:8443", True),
        ("https://127.0.0.1:8443", False),
        ("https://localhost:8443", False),
        ("https://[::1]:8443", False),
    ],
)
def test_only_a_loopback_vault_skips_the_challenge_resource_check(url: str, checked: bool) -> None:
    from authchain.backends.azure.source import MaskingCredential

    client = secret_client(url, MaskingCredential(object()), ca_bundle=None, timeout=1.0)
    try:
        assert _challenge_policy(client)._verify_challenge_resource is checked
    finally:
        client.close()


def test_a_non_loopback_vault_refuses_a_challenge_for_another_resource() -> None:
    """The SDK's own check, as the source builds the client: a challenge whose resource is not
    under the vault's domain is refused before any token is asked."""
    from azure.core.pipeline import PipelineRequest
    from azure.core.pipeline.transport import HttpRequest

    from authchain.backends.azure.source import MaskingCredential

    asked: list[tuple[str, ...]] = []

    class Recording:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            asked.append(scopes)
            raise AssertionError("no token may be asked")

    client = secret_client(
        "https://my-vault.vault.azure.net", MaskingCredential(Recording()), ca_bundle=None, timeout=1.0
    )
    policy = _challenge_policy(client)

    class Response:
        status_code = 401
        headers = {
            "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/t", '
            'resource="https://attacker.example.com"'
        }

    class Wrapped:
        http_response = Response()

    request = PipelineRequest(HttpRequest("GET", "https://my-vault.vault.azure.net/secrets/x"), _context())
    with pytest.raises(ValueError, match="does not match"):
        policy.on_challenge(request, Wrapped())
    assert asked == []
    client.close()


def _context() -> Any:
    from azure.core.pipeline import PipelineContext

    return PipelineContext(None)


# -- names that collide ------------------------------------------------------------------


def test_names_that_map_to_one_secret_read_it_and_explain_says_which(azure_vault: FakeKeyVault) -> None:
    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    source = make_source(azure_vault)
    with fast_chain(source) as chain:
        for name in ("DB_PASSWORD", "DB-PASSWORD", "db_password", "Db-Password"):
            assert chain.resolve(name).get_secret_value() == value
            explanation = chain.explain(name)
            winner = explanation.winner
            assert winner is not None
            assert f"/secrets/{name.replace('_', '-')}" in winner.detail, "explain names the secret read"


# -- Retry-After ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "waited_for"),
    [
        # far beyond any deadline (or 60 s without one): not waited for, the error raised at once
        ("99999999", False),
        ("Wed, 21 Oct 2099 07:28:00 GMT", False),
        # not a finite, non-negative number of seconds nor a date: ignored, the usual backoff,
        # then the value (source.py's _retry_after)
        ("1e400", True),
        ("inf", True),
        ("nan", True),
        ("-5", True),
        ("soon", True),
        ("0x10", True),
    ],
)
@pytest.mark.parametrize("deadline", [1.5, 0])
def test_any_retry_after_is_bounded_never_a_crash_or_a_long_sleep(
    azure_vault: FakeKeyVault, retry_after: str, waited_for: bool, deadline: float
) -> None:
    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    source = make_source(azure_vault)
    with fast_chain(source, retries=2, deadline=deadline) as chain:
        chain.resolve("azure-kv://test-vault/DB-PASSWORD")  # the token first
        azure_vault.fail(429, retry_after=retry_after)
        started = time.monotonic()
        try:
            outcome: object = chain.resolve("DB_PASSWORD").get_secret_value()
        except BackendError as error:
            outcome = error
        assert time.monotonic() - started < 3.0
        if waited_for:
            assert outcome == value, type(outcome).__name__
        else:
            assert isinstance(outcome, BackendError), f"a huge Retry-After was retried: {type(outcome)}"
            assert outcome.retryable


def test_an_http_date_retry_after_in_the_near_future_is_waited_for(azure_vault: FakeKeyVault) -> None:
    from email.utils import formatdate

    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    source = make_source(azure_vault)
    with fast_chain(source, retries=1, deadline=10) as chain:
        chain.resolve("azure-kv://test-vault/DB-PASSWORD")
        azure_vault.fail(503, retry_after=formatdate(time.time() + 2, usegmt=True))
        started = time.monotonic()
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value
        assert time.monotonic() - started >= 0.9, "the date was honoured"


# -- authchain config ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "derived", "origin"),
    [
        ('vault_name = "my-vault"', "vault_url", "vault_name"),
        ('vault_url = "https://my-vault.vault.azure.cn"', "vault_name", "vault_url"),
    ],
)
def test_config_says_a_derived_vault_setting_came_from_the_other(
    written: str,
    derived: str,
    origin: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from authchain.cli import main

    config = tmp_path / "authchain.toml"
    config.write_text(f'[sources.kv]\ntype = "azure-kv"\n{written}\n')
    monkeypatch.setenv("AUTHCHAIN_CONFIG", str(config))
    assert main(["config", "--json"]) == 0
    (kv,) = [s for s in json.loads(capsys.readouterr().out)["sources"] if s["name"] == "kv"]
    assert kv["settings"][origin]["origin"] == str(config)
    assert kv["settings"][derived]["origin"] == f"derived from {origin} ({config})"
    assert kv["settings"]["prefix"]["origin"] == "default"
    assert main(["config"]) == 0
    assert f"derived from {origin}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "document",
    [
        {"client_id": "c", "client_secret": "PLANTED"},
        {"tenant_id": "t", "client_id": "c", "client_secret": "PLANTED", "certificate_path": "/x"},
        {"tenant_id": "t", "client_id": "c", "password": "PLANTED"},
        {"tenant_id": "t", "client_id": "c", "client_secret": ["PLANTED"]},
        {"tenant_id": "not a tenant!", "client_id": "c", "client_secret": "PLANTED"},
        {
            "tenant_id": "t",
            "client_id": "c",
            "certificate_path": "/nonexistent",
            "certificate_password": "PLANTED",
        },
        "PLANTED",
        ["PLANTED"],
    ],
)
def test_malformed_service_principals_leave_no_value_in_any_frame(document: Any) -> None:
    """``azure_credential_from`` and the client factory: an error of any shape, with
    ``capture_locals=True``, shows no client secret or password (issue 13, item 15)."""
    from authchain.backends.azure.source import azure_credential_from
    from authchain.clients import azure_credential, clear
    from authchain.values import SecretValue

    planted = canary("sp")
    text = json.dumps(document).replace("PLANTED", planted)
    parsed = json.loads(text)
    calls = [
        lambda: azure_credential_from(SecretValue(text), "explicit Azure credentials"),
        lambda: azure_credential(text, chain=Chain([])),
        lambda: azure_credential(parsed, chain=Chain([])),
    ]
    errors: list[BaseException] = []
    for call in calls:
        clear()
        try:
            call()
        except Exception as error:  # whatever it is, it must hold nothing
            errors.append(error)
    assert errors, "a malformed service principal is an error"
    for error in errors:
        assert_frames_clean(planted, error)


def test_a_task_naming_a_missing_credential_never_falls_back(
    azure_vault: FakeKeyVault, other_identity: str
) -> None:
    """``AzureKeyVaultSecret(source_options={"credentials": ...})``: the name is looked up as the
    same setting in authchain.toml is, and missing it is an error, never the AZURE_* identity."""
    from secret_tasks import AzureKeyVaultSecret

    azure_vault.set_secret("tasks-azure", canary())
    options = {
        "vault_url": azure_vault.url,
        "vault_name": "task-vault",
        "authority": azure_vault.url,
        "ca_bundle": azure_vault.ca_file,
        "credentials": "AZ_SP_MISSING",
        "timeout": 5.0,
    }
    chain = Chain([EnvSource(name="env")], cache_ttl=0)
    with pytest.raises(ConfigError, match="AZ_SP_MISSING"):
        AzureKeyVaultSecret("tasks-azure", source_options=options, chain=chain).run()
    assert azure_vault.count("POST", "/") == 0, "a token was asked with the AZURE_* identity"


# -- references that choose the host -----------------------------------------------------------


def test_authchain_run_refuses_an_environment_reference_to_a_vault_no_source_has(
    azure_vault: FakeKeyVault, tmp_path: Path
) -> None:
    """``PR_TITLE=azure-kv://attacker-vault/x`` in CI would send the runner's Key Vault token
    (valid for every vault of its tenant) to attacker-vault.vault.azure.net: refused before any
    credential is looked up; a reference to the configured vault still resolves."""
    from authchain._run import build_environment

    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    source = make_source(azure_vault)
    chain = fast_chain(source)
    with pytest.raises(ConfigError, match=r"PR_TITLE .*a host no configured source has") as refused:
        build_environment({"PR_TITLE": "azure-kv://attacker-vault/x"}, lambda: chain, cwd=tmp_path)
    assert "attacker-vault" not in str(refused.value), "the environment's text is named, not quoted"
    assert azure_vault.count("POST", "/") == 0
    built = build_environment({"DB": "azure-kv://test-vault/DB-PASSWORD"}, lambda: chain, cwd=tmp_path)
    assert built["DB"] == value
    chain.close()


def test_a_reference_to_a_second_configured_vault_is_read_by_that_source(azure_vault: FakeKeyVault) -> None:
    first = make_source(
        azure_vault, name="one", vault_name="first-vault", vault_url="https://first-vault.vault.azure.net"
    )
    second = make_source(azure_vault, name="two")
    with fast_chain(first, second) as chain:
        assert chain.foreign_endpoint_of(authchain.SecretRef.parse("azure-kv://test-vault/x")) is None
        assert chain.foreign_endpoint_of(authchain.SecretRef.parse("azure-kv://first-vault/x")) is None
        assert chain.foreign_endpoint_of(authchain.SecretRef.parse("azure-kv://other-vault/x")) == (
            "https://other-vault.vault.azure.net"
        )
        assert chain.foreign_endpoint_of(authchain.SecretRef.parse("env://X")) is None
        value = canary()
        azure_vault.set_secret("DB-PASSWORD", value)
        # Read by the source whose vault it names, not by the first azure-kv source at
        # https://test-vault.vault.azure.net (which the network guard would refuse).
        assert chain.resolve("azure-kv://test-vault/DB-PASSWORD").get_secret_value() == value


@pytest.mark.parametrize("content", ["text", "pem"])
def test_a_certificate_path_to_a_file_that_is_not_a_certificate_quotes_nothing_of_it(
    tmp_path: Path, content: str
) -> None:
    """``certificate_path`` may name any file (``~/.aws/credentials``): the error says it is not a
    certificate and quotes none of the file, nor the password, in text or frames."""
    from authchain.backends.azure.source import azure_credential_from
    from authchain.values import SecretValue

    planted, password = canary("file"), canary("pw")
    path = tmp_path / "not-a-cert"
    body = f"aws_secret_access_key = {planted}\n"
    if content == "pem":
        body = f"-----BEGIN PRIVATE KEY-----\n{planted}\n-----END PRIVATE KEY-----\n"
    path.write_text(body)
    info = {
        "tenant_id": "t",
        "client_id": "c",
        "certificate_path": str(path),
        "certificate_password": password,
    }
    with pytest.raises(ConfigError) as caught:
        azure_credential_from(SecretValue(json.dumps(info)), "explicit Azure credentials")
    for each in (planted, password):
        assert_frames_clean(each, caught.value)


# -- the authority under the deadline ---------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after"), [(429, "3600"), (503, "120"), (500, None)])
def test_a_throttled_token_endpoint_is_bounded_by_the_deadline(
    azure_vault: FakeKeyVault, status: int, retry_after: str | None
) -> None:
    """azure-identity's own pipeline retries and sleeps the token endpoint's Retry-After: the
    lookup's deadline bounds it all the same."""
    value = canary()
    azure_vault.set_secret("DB-PASSWORD", value)
    azure_vault.token_faults.extend([(status, retry_after)] * 10)
    source = make_source(azure_vault)
    with fast_chain(source, retries=3, deadline=2.0) as chain:
        started = time.monotonic()
        with pytest.raises(BackendError) as caught:
            chain.resolve("DB_PASSWORD")
        assert time.monotonic() - started < 2.0 + 1.5
    # A failing or throttling authority is not a refusal: msal says "HTTP Error: 503", and for a
    # 429 with an Entra error body the status is taken from the answer itself.
    assert caught.value.retryable, "a failing or throttling authority is not a refusal"
    assert not caught.value.access_denied
    # msal itself then answers the same token request with that failure, without asking, for the
    # Retry-After (60 s when none): a fresh credential asks again.
    azure_vault.token_faults.clear()
    with fast_chain(make_source(azure_vault)) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == value


def test_a_hung_token_endpoint_is_bounded_by_the_deadline(azure_vault: FakeKeyVault) -> None:
    azure_vault.set_secret("DB-PASSWORD", canary())
    azure_vault.token_latency = 20.0
    source = make_source(azure_vault, timeout=30.0)
    with fast_chain(source, retries=3, deadline=1.5) as chain:
        started = time.monotonic()
        with pytest.raises(BackendError):
            chain.resolve("DB_PASSWORD")
        assert time.monotonic() - started < 1.5 + 1.5
