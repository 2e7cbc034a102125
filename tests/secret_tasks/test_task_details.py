"""Secret task details (issue 14, items 6 and 9).

- ``PrefectSecret(name, key=...)`` reads ``PREFECT__CONTEXT__SECRETS__*`` as the
  whole secret and ``as_dict`` do: one name path, outside and inside a run of
  the real Prefect local API (tests/servers/prefect_api.py).
- ``KeyringSecret`` takes its service from the keyring source's default when not
  given, with keyrings.alt's file keyring (never the user's keyring).
- Every backend Secret task documents its arguments (``Args:`` on the class and on ``run``).
"""

from __future__ import annotations

import inspect
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from authchain import BackendError, Chain, SecretNotFound, SecretValue
from authchain.backends.keyring.source import KeyringSource
from authchain.testing import canary
from secret_tasks import (
    AWSParameterStoreSecret,
    AWSSecretsManagerSecret,
    AzureKeyVaultSecret,
    ChainSecret,
    DotenvSecret,
    EnvVarSecret,
    FilesSecret,
    GCPSecretManagerSecret,
    KeyringSecret,
    PrefectSecret,
    VaultSecret,
)
from secret_tasks.secrets import SecretTask
from tests.servers.prefect_api import PrefectAPI

LEGACY = "PREFECT__CONTEXT__SECRETS__"
PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"


def revealed(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretValue) else value


def legacy_name() -> str:
    return f"ST_DETAILS_{secrets.token_hex(4).upper()}"


# -- item 6: PrefectSecret key= reads Prefect 1 variables like as_dict does -------------------------


def test_key_reads_the_prefect_1_variable_like_as_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    name, password, user = legacy_name(), canary(), canary()
    monkeypatch.setenv(LEGACY + name, json.dumps({"password": password, "user": user, "port": 5432}))
    fields = PrefectSecret(name, as_dict=True).run()
    assert {key: revealed(value) for key, value in fields.items()} == {
        "password": password,
        "user": user,
        "port": "5432",
    }
    assert revealed(PrefectSecret(name, key="password").run()) == password
    assert revealed(PrefectSecret(name).run(key="user")) == user
    assert revealed(PrefectSecret(name, key="port").run()) == "5432"


def test_key_missing_from_a_prefect_1_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    name, password = legacy_name(), canary()
    monkeypatch.setenv(LEGACY + name, json.dumps({"password": password}))
    with pytest.raises(SecretNotFound) as caught:
        PrefectSecret(name, key="absent").run()
    assert "absent" in str(caught.value)
    assert password not in str(caught.value)
    fallback = canary()
    assert PrefectSecret(name, key="absent", default=fallback).run() == fallback
    assert PrefectSecret(legacy_name(), key="password", default=fallback).run() == fallback


def test_key_of_a_secret_that_is_not_a_json_object_does_not_quote_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw in (canary(), json.dumps([canary(), canary()])):
        name = legacy_name()
        monkeypatch.setenv(LEGACY + name, raw)
        with pytest.raises(BackendError) as caught:
            PrefectSecret(name, key="password").run()
        message = str(caught.value) + repr(caught.value)
        assert "cannot be read" in message
        for piece in [raw, *(json.loads(raw) if raw.startswith("[") else [])]:
            assert piece not in message


def test_key_and_as_dict_inside_a_run_prefer_the_prefect_1_variable_as_the_name_does(
    prefect_api: PrefectAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.blocks.system import Secret

    name = legacy_name()
    block = name.lower().replace("_", "-")
    from_block, from_variable = canary(), canary()
    Secret(value={"password": from_block}).save(block, overwrite=True)
    block_only = legacy_name()
    only_in_block = canary()
    Secret(value={"password": only_in_block}).save(block_only.lower().replace("_", "-"), overwrite=True)
    monkeypatch.setenv(LEGACY + name, json.dumps({"password": from_variable}))

    @flow
    def read() -> tuple[str, str, str, str, str]:
        whole = PrefectSecret(name)().get_secret_value()
        field = PrefectSecret(name, key="password")().get_secret_value()
        fields = PrefectSecret(name, as_dict=True)()["password"].get_secret_value()
        by_block_name = PrefectSecret(block, key="password")().get_secret_value()
        only_block = PrefectSecret(block_only, key="password")().get_secret_value()
        return json.loads(whole)["password"], field, fields, by_block_name, only_block

    whole, field, fields, by_block_name, only_block = read()
    assert whole == field == fields == from_variable
    assert by_block_name == from_block  # a block name maps to no Prefect 1 variable
    assert only_block == only_in_block


# -- item 9: KeyringSecret's service defaults to the keyring source's ------------------------------


def file_keyring(folder: Path) -> Any:
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    backend.file_path = str(folder / "keyring_pass.cfg")  # type: ignore[misc]
    return backend


@pytest.fixture
def backend(tmp_path: Path) -> Any:
    pytest.importorskip("keyring", reason="needs the keyring extra")
    pytest.importorskip("keyrings.alt", reason="needs keyrings.alt (test extra)")
    return file_keyring(tmp_path)


def test_keyring_secret_uses_the_chains_keyring_service(backend: Any) -> None:
    user = f"deploy-{secrets.token_hex(4)}"
    mine, other = canary(), canary()
    backend.set_password("svc-details", user, mine)
    backend.set_password("authchain", user, other)  # the global default: must not win here
    chain = Chain([KeyringSource(service="svc-details", backend=backend)])
    try:
        assert revealed(KeyringSecret(user, chain=chain).run()) == mine
        assert revealed(KeyringSecret(user, service="authchain", chain=chain).run()) == other
        assert revealed(KeyringSecret(chain=chain).run(username=user, service="authchain")) == other
    finally:
        chain.close()


def test_keyring_secret_without_a_service_uses_the_source_default(
    tmp_path: Path, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    user = f"deploy-{secrets.token_hex(4)}"
    value = canary()
    from keyrings.alt.file import PlaintextKeyring

    PlaintextKeyring().set_password("authchain", user, value)
    task = KeyringSecret(user, source_options={"backend": PLAINTEXT})
    assert revealed(task.run()) == value
    with pytest.raises(SecretNotFound) as caught:
        task.run(username=f"nobody-{secrets.token_hex(4)}")
    assert value not in str(caught.value)


def test_keyring_secret_service_from_the_project_name_of_the_config(
    tmp_path: Path, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    project = f"pipeline-{secrets.token_hex(3)}"
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "{project}"\n\n[tool.authchain.sources.keyring]\n'
        f'type = "keyring"\nbackend = "{PLAINTEXT}"\n'
    )
    chain = Chain.from_config(tmp_path / "pyproject.toml")
    try:
        source = chain.source("keyring")
        assert isinstance(source, KeyringSource)
        value = canary()
        source.set_password(project, "API_KEY", value)
        assert revealed(KeyringSecret("API_KEY", chain=chain).run()) == value
    finally:
        chain.close()


# -- item 9: every task documents its arguments -----------------------------------------------------

TASKS: list[type[SecretTask]] = [
    EnvVarSecret,
    DotenvSecret,
    FilesSecret,
    ChainSecret,
    PrefectSecret,
    VaultSecret,
    AWSSecretsManagerSecret,
    AWSParameterStoreSecret,
    GCPSecretManagerSecret,
    AzureKeyVaultSecret,
    KeyringSecret,
]
SHARED = ("default", "as_dict", "chain", "source_options")


def documented(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "")
    assert "Args:" in text
    return text.split("Args:", 1)[1]


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.__name__)
def test_every_task_documents_its_init_and_run_arguments(task: type[SecretTask]) -> None:
    args = documented(task.__doc__)
    own = [name for name in inspect.signature(task.__init__).parameters if name not in ("self", "kwargs")]
    shared = [name for name in SHARED if not (task is ChainSecret and name == "source_options")]
    for name in own + shared:
        assert f"{name}:" in args or f"{name}," in args or f", {name}" in args, f"{task.__name__}: {name}"
    run_args = documented(task.run.__doc__)
    for name in inspect.signature(task.run).parameters:
        if name != "self":
            assert f"{name}:" in run_args, f"{task.__name__}.run: {name}"
