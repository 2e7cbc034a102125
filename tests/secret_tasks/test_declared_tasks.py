"""Backend tasks are built from their declarations (authchain/backends/<name>/task.py).

- Each declared class has the signatures and docstrings the declaration says,
  in ``__init__`` and ``run`` (what Prefect and ``help()`` read), and pickles
  by reference as ``secret_tasks.secrets.<Name>``.
- ``secret_tasks/secrets.pyi`` is what ``tools/task_stubs.py`` writes now.
- A declaration alone makes a working task: one built here, from a
  declaration this test writes, against a real env source.
- Declaring, importing and building the tasks loads no SDK and no Prefect
  (checked in a fresh interpreter).
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import secret_tasks
import secret_tasks.secrets
from authchain import Chain
from authchain.backends._task import KEY, SecretTaskDeclaration, TaskParameter, reference
from authchain.backends.env.source import EnvSource
from authchain.refs import SecretRef
from authchain.testing import canary
from secret_tasks._tasks import SecretTask, declared_tasks, task_class
from tests._tools import load_tool
from tests.test_public_api import SDK_PREFIXES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("declaration", declared_tasks(), ids=lambda declaration: declaration.class_name)
def test_each_declaration_is_a_public_class_with_its_signatures(declaration: SecretTaskDeclaration) -> None:
    cls = getattr(secret_tasks, declaration.class_name)
    assert cls is getattr(secret_tasks.secrets, declaration.class_name)
    assert declaration.class_name in secret_tasks.__all__
    assert issubclass(cls, SecretTask)
    assert cls.scheme == declaration.scheme
    assert pickle.loads(pickle.dumps(cls)) is cls  # noqa: S301 - our own bytes
    assert f"secret_tasks.secrets\n{declaration.class_name}".encode() in pickle.dumps(cls, protocol=0)
    names = [parameter.name for parameter in declaration.parameters]
    init = inspect.signature(cls.__init__).parameters
    assert list(init) == ["self", *names, "kwargs"]
    assert init[names[0]].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(init[name].kind is inspect.Parameter.KEYWORD_ONLY for name in names[1:])
    assert [init[name].default for name in names] == [p.default for p in declaration.parameters]
    run = inspect.signature(cls.run).parameters
    assert list(run) == ["self", *names, "as_dict"]
    assert all(run[name].default is None for name in [*names, "as_dict"])
    task = cls()
    with pytest.raises(ValueError, match=f"{names[0]!r} is not set"):
        task.run()


def test_the_stub_is_what_the_tool_writes_now() -> None:
    tool = load_tool("task_stubs")
    written = (ROOT / "secret_tasks" / "secrets.pyi").read_text(encoding="utf-8")
    assert written == tool.render(), "secret_tasks/secrets.pyi is stale: run python tools/task_stubs.py"


def _reference(values: Mapping[str, Any], chain: object) -> SecretRef:
    return reference("env", f"{values['prefix']}{values['name']}", values["key"])


def test_a_declaration_alone_makes_a_working_task(monkeypatch: pytest.MonkeyPatch) -> None:
    declaration = SecretTaskDeclaration(
        class_name="PrefixedEnvSecret",
        scheme="env",
        doc="A variable under a prefix.",
        parameters=(
            TaskParameter("name", str, "the name after the prefix."),
            TaskParameter("prefix", str, "what the variable's name starts with.", "ST_DECL_"),
            KEY,
        ),
        reference=_reference,
    )
    cls = task_class(declaration, __name__)
    value, field = canary(), canary()
    monkeypatch.setenv("ST_DECL_TOKEN", value)
    monkeypatch.setenv("OTHER_JSON", f'{{"password": "{field}"}}')
    chain = Chain([EnvSource()])
    assert cls("TOKEN", chain=chain).run().get_secret_value() == value
    assert cls("JSON", chain=chain).run(prefix="OTHER_", key="password").get_secret_value() == field
    assert cls("ABSENT", default=None, chain=chain).run() is None
    doc = inspect.cleandoc(cls.__doc__ or "")
    for entry in ("name: the name after", "prefix: what", "key: a top-level", "default:", "source_options:"):
        assert entry in doc
    assert "prefix: overrides the ``prefix`` given at init." in (cls.run.__doc__ or "")
    assert cls.__module__ == __name__
    assert cls.__qualname__ == "PrefixedEnvSecret"


# Run in a fresh interpreter: this process has imported Prefect and every SDK long ago.
_IMPORTS = """
import importlib, importlib.util, json, sys
import authchain.backends._task
from authchain._declarations import builtin_packages
for package in builtin_packages():
    if importlib.util.find_spec(package + ".task") is not None:
        importlib.import_module(package + ".task")
declarations = sorted(sys.modules)
import secret_tasks
from secret_tasks._tasks import declared_tasks
built = [type(getattr(secret_tasks, d.class_name)()).__name__ for d in declared_tasks()]
print(json.dumps({"declarations": declarations, "tasks": sorted(sys.modules), "built": built}))
"""


def test_declaring_importing_and_building_the_tasks_loads_no_sdk_nor_prefect(tmp_path: Path) -> None:
    """The declarations are plain data that know nothing of tasks (``secret_tasks`` is the outer
    layer), and ``secret_tasks`` with every task built imports no backend SDK and no Prefect:
    a task runs outside flows without Prefect installed, and Prefect is reached lazily."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTS],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # no config file picked up by accident
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        },
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert seen["built"] == [declaration.class_name for declaration in declared_tasks()]

    def loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
        return [name for name in modules if any(name == p or name.startswith(f"{p}.") for p in prefixes)]

    assert "authchain.backends.vault.task" in seen["declarations"], "the declarations were imported"
    assert loaded(seen["declarations"], ("secret_tasks", *SDK_PREFIXES)) == []
    assert loaded(seen["tasks"], SDK_PREFIXES) == []
