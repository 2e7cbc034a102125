"""Pieces for testing code that uses authchain, without real backends.

- :class:`MemorySource`: a source backed by a dict (config ``type = "memory"``,
  references ``memory://NAME`` once :func:`register_memory_source` has run; the
  pytest plugin runs it, and a production process never knows the type).
- :func:`override_secrets`: swap the default chain for one test.
- the pytest fixture ``authchain_secrets`` (plugin loaded automatically).
- :class:`SourceContractTests` in ``authchain.testing.contract``: the test suite
  every source passes; subclass it for your own source.
"""

from authchain.testing.memory import MemorySource, register_memory_source
from authchain.testing.override import OverrideSource, canary, override_secrets

__all__ = ["MemorySource", "OverrideSource", "canary", "override_secrets", "register_memory_source"]
