"""authchain's version, in the lowest layer so the registry can name its own metadata.

``authchain.__version__`` re-exports it; ``tests/test_registry.py`` checks it
against ``pyproject.toml`` (a mismatch would only cost the registry its fast
path, never correctness).
"""

__version__ = "0.1.0"
