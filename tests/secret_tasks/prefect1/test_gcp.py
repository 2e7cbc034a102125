"""Prefect 1.4.1's ``tests/tasks/gcp/test_secretmanager.py``, ported to the shim.

Only the import changed; every original case and assertion is here. Added:
a real read through the session's gRPC Secret Manager fake, configured the
way a user configures authchain (a ``gcp-sm`` source with its endpoint).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from authchain import ConfigError
from authchain.testing.gcp import FakeSecretManager
from secret_tasks.prefect1 import GCPSecret


class TestGCPSecretsTask:
    def test_initialization(self) -> None:
        task = GCPSecret("test")
        assert task

    def test_initialization_passes_to_task_constructor(self) -> None:
        task = GCPSecret(name="test", tags=["GCP"])
        assert task.name == "test"
        assert task.tags == {"GCP"}

    def test_raises_if_project_not_eventually_provided(self) -> None:
        task = GCPSecret(secret_id="sherbet-lemon")

        with pytest.raises(ValueError, match="project ID"):
            task.run()

    def test_raises_if_secret_not_eventually_provided(self) -> None:
        task = GCPSecret(project_id="majestic-meerkat")

        with pytest.raises(ValueError, match="secret ID"):
            task.run()


# -- beyond the originals ----------------------------------------------------------------


@pytest.fixture
def configured_fake(
    gcp_fake: FakeSecretManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> FakeSecretManager:
    from authchain._default import reset_default_chain

    config = tmp_path / "authchain.toml"
    config.write_text(f'[sources.gcp]\ntype = "gcp-sm"\nendpoint = "{gcp_fake.endpoint}"\ntimeout = 5.0\n')
    monkeypatch.setenv("AUTHCHAIN_CONFIG", str(config))
    reset_default_chain()
    return gcp_fake


def test_reads_a_version_as_text(configured_fake: FakeSecretManager) -> None:
    configured_fake.set_secret("p1-secret", "first-version-text", project="p1-project")
    configured_fake.set_secret("p1-secret", '{"second": "json, not parsed"}', project="p1-project")
    task = GCPSecret(project_id="p1-project", secret_id="p1-secret")
    assert task.run() == '{"second": "json, not parsed"}'
    assert task.run(version_id=1) == "first-version-text"


def test_credentials_must_be_a_service_account_key() -> None:
    with pytest.raises(ConfigError, match="service-account key"):
        GCPSecret(project_id="p", secret_id="s", credentials=object()).run()  # type: ignore[arg-type]
