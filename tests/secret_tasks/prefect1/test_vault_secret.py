"""Prefect 1.4.1's ``tests/tasks/secrets/test_vault_secret.py``, ported to the shim.

The originals mock ``hvac`` (``read_secret_version``, ``Client.auth``,
``builtins.open``) and Prefect Cloud (``server_api``); here every lookup
reaches the session's real OpenBao server, and ``prefect.context(secrets=...)``
is the ``local_secrets`` fixture. Original assertions otherwise, with these
changes:

- The secret lives at ``secret/t/fake-path`` instead of ``secret/fake-path``:
  the seeded AppRole's policy reads only ``secret/t/*``.
- ``isinstance(vs.result, SecretResult)`` is "the Prefect task never persists
  its result".
- Kubernetes auth: OpenBao would have to ask a Kubernetes API server to
  review the service-account token, and none runs here. The case with a token
  file asserts what can be seen without one: the shim reads the file and
  logs in at ``auth/<VAULT_KUBE_AUTH_PATH>/login`` (the audit log shows the
  request), and the refusal is an error, not a secret. The case without a
  token file (Prefect 1's default path, absent on this machine) is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from authchain import BackendError
from secret_tasks.prefect1 import VaultSecret
from tests.secret_tasks.prefect1.conftest import LocalSecrets
from tests.servers.openbao import OpenBao
from tests.servers.prefect_api import PrefectAPI

PATH = "secret/t/fake-path"


@pytest.fixture
def vault(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> OpenBao:
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.delenv("vault_addr", raising=False)
    openbao.put("t/fake-path", {"fake-key": "fake-value"})
    return openbao


def credentials(openbao: OpenBao, shape: str, tmp_path: Path) -> dict[str, str]:
    if shape == "token":
        return {"VAULT_TOKEN": openbao.root_token}
    if shape == "approle":
        role_id, secret_id = openbao.approles["app"]
        return {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    token_file = tmp_path / "kube-token"
    token_file.write_text("fake-path")
    return {
        "VAULT_KUBE_AUTH_ROLE": "fake-kube-role-id",
        "VAULT_KUBE_AUTH_PATH": "fake-kube-auth-path-id",
        "VAULT_KUBE_TOKEN_FILE": str(token_file),
    }


def test_vault_secret_use_in_flow(
    vault: OpenBao, prefect_api: PrefectAPI, local_secrets: LocalSecrets
) -> None:
    from prefect import flow, task

    @task
    def vault_secret_test_task(secret: Any) -> Any:
        return secret

    @flow(name="vault-secret-test-flow")
    def vault_secret_test_flow() -> Any:
        secret = VaultSecret(PATH)()
        return vault_secret_test_task(secret)

    with local_secrets(VAULT_CREDENTIALS={"VAULT_TOKEN": vault.root_token}):
        assert vault_secret_test_flow() == {"fake-key": "fake-value"}


def test_create_vault_var() -> None:
    vs = VaultSecret("fake-secret")
    assert vs.name == "fake-secret"
    assert isinstance(vs, VaultSecret)
    assert vs.as_prefect_task().persist_result is False


def test_secret_is_pickleable() -> None:
    vs = VaultSecret("fake-pickeled-vault-secret")
    new = cloudpickle.loads(cloudpickle.dumps(vs))
    assert new.name == "fake-pickeled-vault-secret"
    assert new.as_prefect_task().persist_result is False


def test_vault_addr_env_var_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("vault_addr", raising=False)
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    with pytest.raises(ValueError, match=r"var not found"):  # noqa: PT012 - the original
        task = VaultSecret("fake-no-vault-addr-secret")
        task.run()


@pytest.mark.parametrize("vault_var", ["vault_addr", "VAULT_ADDR"])
def test_vault_addr_from_env_var(monkeypatch: pytest.MonkeyPatch, vault_var: str) -> None:
    monkeypatch.delenv("vault_addr", raising=False)
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.setenv(vault_var, "http://127.0.0.1:8200")
    with pytest.raises(  # noqa: PT012 - the original
        ValueError, match=r"Local Secret \"VAULT_CREDENTIALS\" was not found."
    ):
        task = VaultSecret("fake-no-vault-addr-secret")
        task.run()


def test_vault_auth_missing(vault: OpenBao, local_secrets: LocalSecrets) -> None:
    with (  # noqa: PT012 - the original
        pytest.raises(ValueError, match=r"Supported methods"),
        local_secrets(VAULT_CREDENTIALS={"WRONG_TOKEN": "wrong-token-value"}),
    ):
        task = VaultSecret("fake-remote-secret")
        out = task.run()
        assert out == "assert-wont-be-reached"


@pytest.mark.parametrize("shape", ["token", "approle"])
def test_vault_secret_lookup(vault: OpenBao, local_secrets: LocalSecrets, shape: str, tmp_path: Path) -> None:
    with local_secrets(VAULT_CREDENTIALS=credentials(vault, shape, tmp_path)):
        task = VaultSecret(PATH)
        out = task.run()
        assert out == {"fake-key": "fake-value"}


@pytest.mark.parametrize("shape", ["token", "approle"])
def test_vault_secret_lookup_using_alt_creds(
    vault: OpenBao, local_secrets: LocalSecrets, shape: str, tmp_path: Path
) -> None:
    with local_secrets(MY_VAULT_CREDS=credentials(vault, shape, tmp_path)):
        task = VaultSecret(PATH, vault_credentials_secret="MY_VAULT_CREDS")
        out = task.run()
        assert out == {"fake-key": "fake-value"}


@pytest.mark.parametrize("secret_name", ["VAULT_CREDENTIALS", "MY_VAULT_CREDS"])
def test_vault_secret_kubernetes_role_logs_in_at_the_named_path(
    vault: OpenBao, local_secrets: LocalSecrets, tmp_path: Path, secret_name: str
) -> None:
    mark = vault.audit_mark()
    with local_secrets(**{secret_name: credentials(vault, "kubernetes", tmp_path)}):
        task = VaultSecret(PATH, vault_credentials_secret=secret_name)
        with pytest.raises(BackendError):
            task.run()
    assert "auth/fake-kube-auth-path-id/login" in vault.requests_since(mark)


# -- beyond the originals: what Prefect 1 returned, against the real server ----------------


def test_the_whole_secret_even_with_a_field_named_value(vault: OpenBao, local_secrets: LocalSecrets) -> None:
    """The native task would return one field here; Prefect 1 returned the whole secret."""
    vault.put("t/has-value", {"value": "the-value-field", "other": "other-field"})
    with local_secrets(VAULT_CREDENTIALS={"VAULT_TOKEN": vault.root_token}):
        assert VaultSecret("secret/t/has-value").run() == {"value": "the-value-field", "other": "other-field"}
        assert VaultSecret("secret/t/has-value").run(name=PATH) == {"fake-key": "fake-value"}


def test_a_missing_path_is_a_key_error_and_secret_not_found(
    vault: OpenBao, local_secrets: LocalSecrets
) -> None:
    from authchain import SecretNotFound

    with (
        local_secrets(VAULT_CREDENTIALS={"VAULT_TOKEN": vault.root_token}),
        pytest.raises(KeyError, match="Secret not found: secret/t/absent") as caught,
    ):
        VaultSecret("secret/t/absent").run()
    assert isinstance(caught.value, SecretNotFound)


def test_an_invalid_path_is_refused(vault: OpenBao, local_secrets: LocalSecrets) -> None:
    with (
        local_secrets(VAULT_CREDENTIALS={"VAULT_TOKEN": vault.root_token}),
        pytest.raises(ValueError, match="Invalid secret path"),
    ):
        VaultSecret("no-mount").run()
