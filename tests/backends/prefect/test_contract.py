"""The Prefect source passes the contract every source passes, against Prefect's real local API.

``only_in_run=False`` asks the API outside a flow run too (inside one is what
the other Prefect tests exercise); ``legacy_env=False`` and an empty environ
keep Prefect 1 local secrets out of it, so every answer comes from a block.
"""

from __future__ import annotations

import pytest

from authchain.backends.prefect.source import PrefectSource, block_name_for
from authchain.testing.contract import Seed, SourceContractTests
from tests.servers.prefect_api import PrefectAPI


class TestPrefectContract(SourceContractTests):
    @pytest.fixture
    def source(self, prefect_api: PrefectAPI) -> PrefectSource:
        return PrefectSource(name="prefect-contract", only_in_run=False, legacy_env=False, environ={})

    @pytest.fixture
    def seed(self, prefect_api: PrefectAPI) -> Seed:
        from prefect.blocks.system import Secret

        def plant(name: str, value: str) -> None:
            Secret(value=value).save(block_name_for(name), overwrite=True)

        return plant
