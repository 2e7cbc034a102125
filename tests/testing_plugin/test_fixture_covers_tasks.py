"""The ``authchain_secrets`` fixture as a user's suite meets it: every task, reference and factory.

Each test writes a small suite that uses only the plugin's fixture (loaded
through its ``pytest11`` entry point) and runs it in a child pytest with no
network to reach (real endpoints unset, SDK metadata probes off) and an
environment and ``.env`` file that do NOT hold the overridden values: a value
read from anywhere but the overrides fails the suite.
"""

from __future__ import annotations

import json
import os
import secrets

import pytest

pytest_plugins = ["pytester"]

# The real endpoints and identities a child process could otherwise reach or use.
_REAL = ("AWS_", "VAULT_", "BAO_", "GOOGLE_", "GCE_", "CLOUDSDK_", "AUTHCHAIN_", "PREFECT_API_")

SUITE = """
import json

import pytest

import authchain
from authchain import Chain, SecretNotFound, SecretRef
from authchain.clients import aws_client, aws_session, vault_client
from authchain.backends.env.source import EnvSource
from secret_tasks import (
    AWSParameterStoreSecret,
    AWSSecretsManagerSecret,
    ChainSecret,
    DotenvSecret,
    EnvVarSecret,
    GCPSecretManagerSecret,
    KeyringSecret,
    PrefectSecret,
    VaultSecret,
)

VALUE = {value!r}
FIELD = {field!r}
KEY_ID = {key_id!r}
TOKEN = {token!r}


def test_every_secret_task_sees_a_name_override(authchain_secrets):
    authchain_secrets["API_TOKEN"] = VALUE
    tasks = [
        EnvVarSecret("API_TOKEN"),
        DotenvSecret("API_TOKEN"),
        ChainSecret("API_TOKEN"),
        PrefectSecret("API_TOKEN"),
        VaultSecret("API_TOKEN"),
        VaultSecret("app/API_TOKEN", mount="kv"),
        AWSSecretsManagerSecret("API_TOKEN", region="us-east-1"),
        AWSParameterStoreSecret("/app/API_TOKEN", region="us-east-1"),
        GCPSecretManagerSecret("API_TOKEN", project="demo-project"),
        KeyringSecret("API_TOKEN", service="myapp"),
    ]
    for task in tasks:
        assert task().get_secret_value() == VALUE, task


def test_tasks_with_their_own_chain_or_source_options_see_it_too(authchain_secrets):
    authchain_secrets["API_TOKEN"] = VALUE
    own = Chain([EnvSource(name="own", environ={{"API_TOKEN": "from-own-chain-not-the-override"}})])
    assert EnvVarSecret("API_TOKEN", chain=own)().get_secret_value() == VALUE
    assert ChainSecret("API_TOKEN", chain=own)().get_secret_value() == VALUE
    vault = VaultSecret(
        "app/API_TOKEN",
        source_options={{"url": "http://127.0.0.1:9", "auth": "token", "token": "VAULT_TOKEN"}},
    )
    assert vault().get_secret_value() == VALUE
    aws = AWSSecretsManagerSecret("API_TOKEN", source_options={{"region": "us-east-1"}})
    assert aws().get_secret_value() == VALUE


def test_fields_and_references(authchain_secrets):
    authchain_secrets["aws-sm://prod/db#password"] = VALUE
    authchain_secrets["vault://secret/app"] = json.dumps({{"password": FIELD}})
    authchain_secrets["gcp-sm://projects/p/secrets/db/versions/latest"] = VALUE
    assert authchain.resolve("aws-sm://prod/db#password").get_secret_value() == VALUE
    assert SecretRef.parse("aws-sm://prod/db#password").resolve().get_secret_value() == VALUE
    assert AWSSecretsManagerSecret("prod/db", key="password")().get_secret_value() == VALUE
    assert authchain.resolve("vault://secret/app#password").get_secret_value() == FIELD
    assert VaultSecret("app", key="password")().get_secret_value() == FIELD
    assert VaultSecret("app", as_dict=True)()["password"].get_secret_value() == FIELD
    assert GCPSecretManagerSecret("db", project="p")().get_secret_value() == VALUE
    many = authchain.resolve_many(["aws-sm://prod/db#password", "vault://secret/app#password"])
    assert [v.get_secret_value() for v in many.values()] == [VALUE, FIELD]


def test_a_name_override_answers_references_by_the_secret_name(authchain_secrets):
    authchain_secrets["API_TOKEN"] = VALUE
    authchain_secrets["db"] = json.dumps({{"password": FIELD}})
    for ref in ("env://API_TOKEN", "aws-sm://API_TOKEN", "vault://secret/app/API_TOKEN",
                "aws-ssm:///app/API_TOKEN", "keyring://myapp/API_TOKEN", "dotenv://.env#API_TOKEN"):
        assert authchain.resolve(ref).get_secret_value() == VALUE, ref
    assert authchain.resolve("aws-sm://prod/db#password").get_secret_value() == FIELD


def test_client_factories_take_their_credentials_from_the_overrides(authchain_secrets):
    authchain_secrets["AWS_CREDENTIALS"] = json.dumps(
        {{"ACCESS_KEY": KEY_ID, "SECRET_ACCESS_KEY": VALUE}}
    )
    authchain_secrets["VAULT_TOKEN"] = TOKEN
    session = aws_session(region_name="us-east-1")
    assert session.get_credentials().access_key == KEY_ID
    s3 = aws_client("s3", region_name="us-east-1")
    assert s3._request_signer._credentials.access_key == KEY_ID
    assert vault_client(url="http://127.0.0.1:9").token == TOKEN


def test_what_is_not_overridden_is_not_found_and_names_the_fixture(authchain_secrets):
    for target in ("API_TOKEN", "env://API_TOKEN", "aws-sm://prod/db#password"):
        with pytest.raises(SecretNotFound, match="not overridden.*authchain_secrets"):
            authchain.resolve(target)
    with pytest.raises(SecretNotFound):
        EnvVarSecret("API_TOKEN")()
    assert EnvVarSecret("API_TOKEN", default=None)() is None


def test_factories_never_fall_back_to_the_sdks_own_identity(authchain_secrets):
    from authchain.clients import gcp_credentials
    from authchain.errors import ConfigError

    makers = {{
        "AWS_CREDENTIALS": lambda: aws_session(region_name="us-east-1"),
        "VAULT_TOKEN": lambda: vault_client(url="http://127.0.0.1:9"),
        "GCP_CREDENTIALS": gcp_credentials,
    }}
    for name, make in makers.items():
        with pytest.raises(ConfigError, match=f"{{name}}.*not overridden") as caught:
            make()
        assert VALUE not in str(caught.value)
    authchain_secrets.passthrough = True  # the opt-in: the SDK's default applies again
    credentials = aws_session(region_name="us-east-1").get_credentials()
    assert credentials is None or credentials.access_key == "AKIAREAL"


def test_passthrough_is_an_opt_in(authchain_secrets, monkeypatch):
    monkeypatch.setenv("PASSED_THROUGH", VALUE)
    with pytest.raises(SecretNotFound):
        EnvVarSecret("PASSED_THROUGH")()
    authchain_secrets.passthrough = True
    assert EnvVarSecret("PASSED_THROUGH")().get_secret_value() == VALUE
    assert authchain.resolve("env://PASSED_THROUGH").get_secret_value() == VALUE
"""


def _isolate(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_REAL):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(pytester.path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(pytester.path / "no-aws-credentials"))
    monkeypatch.setenv("HOME", str(pytester.path))
    # The child imports this checkout's code (the plugin loads by its entry point).
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")])))


def test_a_users_suite_sees_only_the_overrides(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, field, token = (f"canary-{secrets.token_hex(12)}" for _ in range(3))
    key_id = "AKIA" + secrets.token_hex(8).upper()
    _isolate(pytester, monkeypatch)
    # What a real lookup would find, under the names the suite overrides: never seen.
    real = f"real-{secrets.token_hex(12)}"
    (pytester.path / ".env").write_text(f"API_TOKEN={real}\nVAULT_TOKEN={real}\n", encoding="utf-8")
    pytester.makepyfile(test_user_suite=SUITE.format(value=value, field=field, key_id=key_id, token=token))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=300)
    result.assert_outcomes(passed=8)
    assert real not in result.stdout.str() + result.stderr.str()


def test_the_real_environment_is_not_read(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same names set in the real environment: the suite still sees the overrides only."""
    value, field, token = (f"canary-{secrets.token_hex(12)}" for _ in range(3))
    key_id = "AKIA" + secrets.token_hex(8).upper()
    _isolate(pytester, monkeypatch)
    real = f"real-{secrets.token_hex(12)}"
    for name in ("API_TOKEN", "VAULT_TOKEN", "db"):
        monkeypatch.setenv(name, real)
    monkeypatch.setenv("AWS_CREDENTIALS", json.dumps({"ACCESS_KEY": "AKIAREAL", "SECRET_ACCESS_KEY": real}))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", real)
    pytester.makepyfile(test_user_suite=SUITE.format(value=value, field=field, key_id=key_id, token=token))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=300)
    result.assert_outcomes(passed=8)
    assert real not in result.stdout.str() + result.stderr.str()
