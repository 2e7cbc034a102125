"""pytest plugin (entry point ``pytest11``): the ``authchain_secrets`` fixture.

Kept light on purpose: it is loaded into every pytest run in an environment
where authchain is installed. Loading it registers the ``memory`` source type
(a testing tool, unknown to production processes) for the test session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authchain.testing.memory import MemorySource, register_memory_source

register_memory_source()


@pytest.fixture
def authchain_secrets() -> Iterator[MemorySource]:
    """Per-test secrets for ``authchain.resolve``: ``authchain_secrets["NAME"] = "value"``.

    The default chain is replaced for the test only and asks no real backend;
    the environment is not touched.
    """
    from authchain.testing.override import override_secrets

    with override_secrets() as memory:
        yield memory
