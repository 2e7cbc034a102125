"""One package per backend: its source, reference grammar, client factory and settings.

A backend package holds ``source.py`` (the source class or classes, their
``Option`` settings and their ``reference_grammar``) and, where the backend
has a client factory, ``client.py`` (the factory, its ``[clients.<name>]``
options and its ``explain_<name>``) and, where it has a Secret task,
``task.py`` (the task declared as data: :mod:`authchain.backends._task`;
``secret_tasks``, which depends on this package, builds the class from it).
A package ``__init__`` declares what the core needs to know of the backend
(:mod:`authchain._declarations` reads it from authchain's own packages, and
nothing else): ``default_sources(cwd, environ)``, the source tables it adds
to the default chain; ``CLIENT_KIND``, ``CLIENT_FACTORIES`` and
``SDK_LOGGERS`` for its client factories and its SDK's wire loggers.
Package ``__init__`` modules import nothing at import time:
loading a source type imports only its module, and that module imports its
SDK when first used.

The core (``authchain._chain``, ``config``, ``refs``, ``_registry``) names no
backend: each package here is found through the ``authchain.sources`` entry
points, exactly as a third-party plugin is. Adding a backend means a new
package here, one entry point in ``pyproject.toml``, its tests under
``tests/backends/<name>/`` and its docs.
"""
