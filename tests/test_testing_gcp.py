"""authchain.testing.gcp.FakeSecretManager, driven through Google's own client library."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("google.cloud.secretmanager_v1", reason="needs the gcp extra")

import grpc
from google.api_core import exceptions as api
from google.cloud.secretmanager_v1 import types
from google_crc32c import value as crc32c

from authchain.errors import ConfigError
from authchain.testing import canary
from authchain.testing.contract import unique_name
from authchain.testing.gcp import FakeSecretManager
from tests.servers.gcp_fake import GCP_TEST_PROJECT as PROJECT

PARENT = f"projects/{PROJECT}"


@pytest.fixture
def client(gcp_fake: FakeSecretManager) -> Iterator[Any]:
    made = gcp_fake.client()
    yield made
    made.transport.close()


def test_secret_lifecycle_through_the_real_client(gcp_fake: FakeSecretManager, client: Any) -> None:
    secret_id, first, second = unique_name(), canary(), canary()
    created = client.create_secret(
        parent=PARENT, secret_id=secret_id, secret={"labels": {"team": "data"}}, timeout=5
    )
    assert created.name == f"{PARENT}/secrets/{secret_id}"
    with pytest.raises(api.AlreadyExists):
        client.create_secret(parent=PARENT, secret_id=secret_id, secret={}, timeout=5)
    one = client.add_secret_version(
        parent=created.name, payload={"data": first.encode(), "data_crc32c": crc32c(first.encode())}
    )
    two = client.add_secret_version(parent=created.name, payload={"data": second.encode()})
    assert (one.name, two.name) == (f"{created.name}/versions/1", f"{created.name}/versions/2")
    assert one.state == types.SecretVersion.State.ENABLED

    latest = client.access_secret_version(name=f"{created.name}/versions/latest")
    assert latest.name == two.name
    assert latest.payload.data.decode() == second
    assert latest.payload.data_crc32c == crc32c(second.encode())
    assert client.access_secret_version(name=one.name).payload.data.decode() == first
    assert client.get_secret(name=created.name).labels["team"] == "data"
    assert [v.name for v in client.list_secret_versions(parent=created.name)] == [two.name, one.name]

    assert client.disable_secret_version(name=two.name).state == types.SecretVersion.State.DISABLED
    with pytest.raises(api.FailedPrecondition, match="DISABLED state"):
        client.access_secret_version(name=f"{created.name}/versions/latest", retry=None)
    client.enable_secret_version(name=two.name)
    client.destroy_secret_version(name=one.name)
    with pytest.raises(api.FailedPrecondition, match="DESTROYED state"):
        client.access_secret_version(name=one.name, retry=None)
    assert client.get_secret_version(name=one.name).state == types.SecretVersion.State.DESTROYED

    client.delete_secret(name=created.name)
    with pytest.raises(api.NotFound):
        client.get_secret(name=created.name)
    assert gcp_fake.calls("AccessSecretVersion", match=created.name) == 4


def test_errors_the_real_service_gives(client: Any) -> None:
    with pytest.raises(api.NotFound):
        client.access_secret_version(name=f"{PARENT}/secrets/{unique_name('ABSENT')}/versions/1", retry=None)
    with pytest.raises(api.InvalidArgument):
        client.create_secret(parent=PARENT, secret_id="not.valid", secret={})
    secret = client.create_secret(parent=PARENT, secret_id=unique_name(), secret={})
    with pytest.raises(api.InvalidArgument, match="Checksum mismatch"):
        client.add_secret_version(parent=secret.name, payload={"data": b"abcd", "data_crc32c": 1})
    with pytest.raises(api.NotFound):
        client.access_secret_version(name=f"{secret.name}/versions/7", retry=None)
    with pytest.raises(api.MethodNotImplemented):
        client.update_secret(secret={"name": secret.name}, update_mask={"paths": ["labels"]})


def test_list_secrets_pages() -> None:
    with FakeSecretManager(project="paging-project") as fake:
        for index in range(5):
            fake.set_secret(f"S{index}", canary())
        fake.set_secret("ELSEWHERE", canary(), project="other-project")
        client = fake.client()
        try:
            pager = client.list_secrets(request={"parent": "projects/paging-project", "page_size": 2})
            names = [secret.name.rsplit("/", 1)[-1] for secret in pager]
            pages = sum(
                1
                for _ in client.list_secrets(
                    request={"parent": "projects/paging-project", "page_size": 2}
                ).pages
            )
        finally:
            client.transport.close()
        assert names == ["S0", "S1", "S2", "S3", "S4"]
        assert pages == 3
        assert fake.calls("ListSecrets") == 6


def test_faults_fail_then_heal_and_only_where_they_match(gcp_fake: FakeSecretManager, client: Any) -> None:
    hit, spared = unique_name(), unique_name()
    hit_name = gcp_fake.set_secret(hit, canary())
    spared_name = gcp_fake.set_secret(spared, canary())
    gcp_fake.fail(
        "AccessSecretVersion", grpc.StatusCode.UNAVAILABLE, times=2, match=f"{PARENT}/secrets/{hit}/"
    )
    for _ in range(2):
        with pytest.raises(api.ServiceUnavailable, match="injected UNAVAILABLE"):
            client.access_secret_version(name=hit_name, retry=None)
    client.access_secret_version(name=spared_name, retry=None)
    client.access_secret_version(name=hit_name, retry=None)
    assert gcp_fake.calls("AccessSecretVersion", match=hit_name) == 3
    assert gcp_fake.calls("AccessSecretVersion") == 4

    gcp_fake.corrupt_crc(times=1)
    bad = client.access_secret_version(name=hit_name, retry=None)
    assert bad.payload.data_crc32c != crc32c(bad.payload.data)
    good = client.access_secret_version(name=hit_name, retry=None)
    assert good.payload.data_crc32c == crc32c(good.payload.data)


def test_delay_is_cut_short_by_the_client_deadline(gcp_fake: FakeSecretManager, client: Any) -> None:
    name = gcp_fake.set_secret(unique_name(), canary())
    gcp_fake.delay("*", 20.0, times=1)
    started = time.monotonic()
    with pytest.raises(api.DeadlineExceeded):
        client.access_secret_version(name=name, retry=None, timeout=0.2)
    assert time.monotonic() - started < 2
    assert client.access_secret_version(name=name, retry=None, timeout=2).name == name


def test_stop_cancels_slow_calls_at_once() -> None:
    fake = FakeSecretManager().start()
    name = fake.set_secret("SLOW", canary())
    fake.delay("AccessSecretVersion", 60.0)
    client = fake.client()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.access_secret_version(name=name, retry=None, timeout=30)
        except Exception as error:
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while fake.max_in_flight("AccessSecretVersion") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    caller.join(10)
    client.transport.close()
    assert time.monotonic() - started < 5
    assert not caller.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], api.GoogleAPICallError)
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.endpoint


def test_reset_forgets_secrets_faults_and_counts() -> None:
    with FakeSecretManager(project="reset-project") as fake:
        fake.set_secret("A", canary())
        fake.fail("*", grpc.StatusCode.INTERNAL)
        client = fake.client()
        try:
            with pytest.raises(api.InternalServerError):
                client.get_secret(name="projects/reset-project/secrets/A", retry=None)
            fake.reset()
            assert fake.calls() == 0
            with pytest.raises(api.NotFound):
                client.get_secret(name="projects/reset-project/secrets/A", retry=None)
        finally:
            client.transport.close()


def test_listens_on_loopback_only() -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        FakeSecretManager(host="0.0.0.0")  # noqa: S104 - the point of the test
    with FakeSecretManager() as fake:
        assert fake.endpoint.startswith("127.0.0.1:")
        assert "127.0.0.1" in repr(fake)
