"""Prefect 1.4.1's AWS tests, ported to the shims: ``tests/tasks/aws/test_secrets_manager.py``,
``tests/tasks/aws/test_parameter_store_manager.py`` and ``tests/utilities/test_aws.py``.

The originals replace ``boto3`` with a ``MagicMock`` and assert the keyword
arguments it was called with; here every client is a real boto3 client
talking to the session's moto server, and the assertions read the same
values back from the client (the keys it signs with, its region). Prefect 1's
``prefect.context(secrets=...)`` is the ``local_secrets`` fixture; its client
cache ``_CLIENT_CACHE`` is authchain's (``authchain.clients.clear()``).

Left out:
- ``len(CACHE)`` assertions and ``test_client_cache_not_used_extra_kwargs``:
  authchain's client cache is not Prefect 1's weak-value dict; it keys a
  client by a fingerprint of all its settings, extra boto3 kwargs included,
  so the same extra kwargs give the same (thread-safe) client where Prefect 1
  built a new one. The identity assertions of ``test_client_cache`` are kept.
- ``"region_name": None`` in the asserted boto3 kwargs: with a real client
  the region boto3 picked (the environment's) is asserted instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authchain.clients import clear as clear_clients
from secret_tasks.prefect1 import AWSParametersManager, AWSSecretsManager, get_boto_client
from tests.secret_tasks.prefect1.conftest import LocalSecrets
from tests.servers.moto_server import MADE_UP_KEYS, REGION, MotoServer


@pytest.fixture(autouse=True)
def clear_client_cache() -> Iterator[None]:
    clear_clients()
    yield
    clear_clients()


def keys_of(client: Any) -> dict[str, Any]:
    """What a mocked ``boto3.client`` was called with, read from a real client."""
    frozen = client._request_signer._credentials.get_frozen_credentials()
    return {
        "aws_access_key_id": frozen.access_key,
        "aws_secret_access_key": frozen.secret_key,
        "aws_session_token": frozen.token,
    }


class TestGetBotoClient:
    def test_uses_context_secrets(self, moto: MotoServer, local_secrets: LocalSecrets) -> None:
        with local_secrets(
            AWS_CREDENTIALS={"ACCESS_KEY": "42", "SECRET_ACCESS_KEY": "99", "SESSION_TOKEN": "1"}
        ):
            client = get_boto_client(resource="sts")
        assert keys_of(client) == {
            "aws_access_key_id": "42",
            "aws_secret_access_key": "99",
            "aws_session_token": "1",
        }

    def test_prefers_passed_credentials_over_secrets(
        self, moto: MotoServer, local_secrets: LocalSecrets
    ) -> None:
        credentials = {"ACCESS_KEY": "pick", "SECRET_ACCESS_KEY": "these", "SESSION_TOKEN": "please"}
        with local_secrets(
            AWS_CREDENTIALS={"ACCESS_KEY": "dont", "SECRET_ACCESS_KEY": "pick", "SESSION_TOKEN": "these"}
        ):
            client = get_boto_client(resource="sts", credentials=credentials)
        assert keys_of(client) == {
            "aws_access_key_id": "pick",
            "aws_secret_access_key": "these",
            "aws_session_token": "please",
        }

    def test_creds_default_to_environment(self, moto: MotoServer) -> None:
        client = get_boto_client(resource="sts")
        assert keys_of(client) == {
            "aws_access_key_id": MADE_UP_KEYS["aws_access_key_id"],
            "aws_secret_access_key": MADE_UP_KEYS["aws_secret_access_key"],
            "aws_session_token": None,
        }
        assert client.meta.region_name == REGION

    def test_credentials_provided_in_kwargs(self, moto: MotoServer) -> None:
        client = get_boto_client(
            resource="sts",
            aws_access_key_id="id",
            aws_secret_access_key="secret",
            aws_session_token="session",
        )
        assert keys_of(client) == {
            "aws_access_key_id": "id",
            "aws_secret_access_key": "secret",
            "aws_session_token": "session",
        }

    def test_credentials_does_not_duplicate_kwargs(self, moto: MotoServer) -> None:
        client = get_boto_client(
            resource="sts",
            credentials={"ACCESS_KEY": "true_key", "SECRET_ACCESS_KEY": "true_secret"},
            aws_access_key_id="id",
            aws_secret_access_key="secret",
            aws_session_token="session",
        )
        assert keys_of(client) == {
            "aws_access_key_id": "true_key",
            "aws_secret_access_key": "true_secret",
            "aws_session_token": "session",
        }

    def test_session_used_if_profile_name_provided(
        self, moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = tmp_path / "aws-config"
        config.write_text(
            "[profile TestProfile]\naws_access_key_id = profile-key\naws_secret_access_key = profile-secret\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        client = get_boto_client(resource="sts", profile_name="TestProfile")
        assert client.meta.service_model.service_name == "sts"
        assert keys_of(client) == {
            "aws_access_key_id": "profile-key",
            "aws_secret_access_key": "profile-secret",
            "aws_session_token": None,
        }

    def test_client_cache(self, moto: MotoServer) -> None:
        c1 = get_boto_client("sts")

        # Cached if same parameters used
        c2 = get_boto_client("sts")
        assert c2 is c1

        # Different parameters lead to unique client
        c3 = get_boto_client("sts", region_name="eu-west-1")
        assert c3 is not c1

    def test_use_session_is_deprecated_and_ignored(self, moto: MotoServer) -> None:
        """Prefect 1 warned since 0.14.9 (older code passes it)."""
        with pytest.warns(UserWarning, match="deprecated"):
            client = get_boto_client("sts", use_session=True)
        assert client.get_caller_identity()["Account"]

    def test_the_older_positional_use_session_form_still_works(self, moto: MotoServer) -> None:
        """``get_boto_client(resource, credentials, use_session, region_name)`` before 0.14.9."""
        credentials = {"ACCESS_KEY": "old-form-key", "SECRET_ACCESS_KEY": "old-form-secret"}
        with pytest.warns(UserWarning, match="deprecated"):
            client = get_boto_client("sts", credentials, True, "eu-west-1")  # type: ignore[arg-type]
        assert client.meta.region_name == "eu-west-1"
        assert keys_of(client)["aws_access_key_id"] == "old-form-key"


class TestAWSSecretsManager:
    def test_initialization(self) -> None:
        AWSSecretsManager("test")

    def test_initialization_passes_to_task_constructor(self) -> None:
        task = AWSSecretsManager(name="test", tags=["AWS"])
        assert task.name == "test"
        assert task.tags == {"AWS"}

    def test_raises_if_secret_not_eventually_provided(self) -> None:
        task = AWSSecretsManager()

        with pytest.raises(ValueError, match="secret"):
            task.run()

    def test_retrieve_plaintext_secret(self, moto: MotoServer) -> None:
        secret_value = "top-secret-string"
        moto.client("secretsmanager").create_secret(Name="test", SecretString=f"{secret_value}")

        task = AWSSecretsManager(secret="test")
        returned_data = task.run()

        assert returned_data == secret_value

    def test_retrieve_key_value_secret(self, moto: MotoServer) -> None:
        secret_string = '{"Key":"top-secret-value"}'
        moto.client("secretsmanager").create_secret(Name="test", SecretString=secret_string)

        task = AWSSecretsManager(secret="test")
        returned_data = task.run()
        expected_response = json.loads(secret_string)

        assert returned_data == expected_response

    # -- beyond the originals ---------------------------------------------------------------

    def test_credentials_and_boto_kwargs_reach_the_client(self, moto: MotoServer) -> None:
        """Keys given at run sign the request: with IAM enforced, only a real user's keys work."""
        moto.client("secretsmanager", region="eu-west-1").create_secret(
            Name="eu", SecretString="in-eu-west-1"
        )
        keys = moto.iam_user(["secretsmanager:GetSecretValue"])
        moto.enforce_iam()
        task = AWSSecretsManager("eu", boto_kwargs={"region_name": "eu-west-1", "endpoint_url": moto.url})
        credentials = {
            "ACCESS_KEY": keys["aws_access_key_id"],
            "SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        }
        assert task.run(credentials=credentials) == "in-eu-west-1"

    def test_unsupported_boto_kwargs_are_refused(self) -> None:
        from authchain import ConfigError

        with pytest.raises(ConfigError, match="verify"):
            AWSSecretsManager("x", boto_kwargs={"verify": False}).run()


class TestAWSParameterManager:
    def test_initialization(self) -> None:
        AWSParametersManager("test")

    def test_initialization_passes_to_task_constructor(self) -> None:
        task = AWSParametersManager(name="test", tags=["AWS"])
        assert task.name == "test"
        assert task.tags == {"AWS"}

    def test_raises_if_parameter_name_not_eventually_provided(self) -> None:
        task = AWSParametersManager()

        with pytest.raises(ValueError, match="parameter"):
            task.run()

    # -- beyond the originals ---------------------------------------------------------------

    def test_reads_the_parameter_as_a_str(self, moto: MotoServer) -> None:
        moto.client("ssm").put_parameter(Name="/p1/param", Value='{"not": "parsed"}', Type="String")
        assert AWSParametersManager("/p1/param").run() == '{"not": "parsed"}'
        assert AWSParametersManager().run(
            parameter_name="/p1/param", boto_kwargs={"region_name": REGION}
        ) == ('{"not": "parsed"}')
