"""pytest plugin (entry point ``pytest11``): the ``authchain_secrets`` fixture.

Kept light on purpose: it is loaded into every pytest run in an environment
where authchain is installed. Loading it registers the ``memory`` source type
(a testing tool, unknown to production processes) for the test session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authchain.testing.memory import register_memory_source
from authchain.testing.override import OverrideSource

register_memory_source()


@pytest.fixture
def authchain_secrets() -> Iterator[OverrideSource]:
    """Per-test secrets: ``authchain_secrets["NAME"] = "value"`` or ``authchain_secrets["vault://secret/app#k"]``.

    For the test only, every lookup answers from these overrides first:
    ``authchain.resolve``, every Secret task (any backend, ``chain=`` or
    ``source_options=``), every ``scheme://`` reference and the client
    factories' credential lookups. What is not overridden is ``SecretNotFound``
    naming the override: no real backend, environment variable or ``.env``
    file is asked unless ``authchain_secrets.passthrough = True``. The
    environment is not touched.
    """
    from authchain.testing.override import override_secrets

    with override_secrets() as memory:
        yield memory
