"""secret_tasks: one Secret task per backend, on a small task base.

Configure at ``__init__``, override at ``run``; call outside a flow and it
just runs, call inside a Prefect 3 flow and it runs as a Prefect task whose
result is never persisted. See docs/tasks.md.
"""

from secret_tasks import secrets
from secret_tasks.base import Task, defaults_from_attrs

# Every task class and the task base, by the names secret_tasks.secrets exports:
# the backend tasks are built from their declarations (authchain/backends/*/task.py),
# so a backend that declares one needs no line here.
from secret_tasks.secrets import *  # noqa: F403

__all__ = ["Task", "defaults_from_attrs"]
__all__ += secrets.__all__
