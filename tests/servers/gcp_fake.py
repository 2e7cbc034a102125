"""The in-process gRPC Secret Manager (``authchain.testing.gcp``) for the session.

Started once, on first use, on 127.0.0.1 (a free port) and stopped at the end
of the session whatever happened. ``gcp_fake`` hands it to one test with no
faults armed and its call counts at zero, and disarms faults again after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from authchain.testing.gcp import FakeSecretManager

GCP_TEST_PROJECT = "authchain-test"


@pytest.fixture(scope="session")
def gcp_fake_server() -> Iterator[FakeSecretManager]:
    pytest.importorskip("google.cloud.secretmanager_v1", reason="needs the gcp extra")
    from authchain.testing.gcp import FakeSecretManager

    fake = FakeSecretManager(project=GCP_TEST_PROJECT)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def gcp_fake(gcp_fake_server: FakeSecretManager) -> Iterator[FakeSecretManager]:
    gcp_fake_server.clear_faults()
    gcp_fake_server.reset_counts()
    try:
        yield gcp_fake_server
    finally:
        gcp_fake_server.clear_faults()
