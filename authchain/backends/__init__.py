"""One package per backend: its source, reference grammar, client factory and settings.

The core (``authchain._chain``, ``config``, ``refs``, ``_registry``) names no
backend: each package here is found through the ``authchain.sources`` entry
points, exactly as a third-party plugin is. Adding a backend means a new
package here, one entry point in ``pyproject.toml``, its tests under
``tests/backends/<name>/`` and its docs.
"""
