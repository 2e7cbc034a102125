"""No import cycle among authchain's modules, and imports point down the layers.

Function-level imports count in both checks.

A cycle means two layers know each other: the chain building the config
that builds the chain, a reference parser asking the chain, a source
holding one. Deferring an import into a function hides the cycle from
Python's import machinery but not from the reader, so this check counts
every import statement wherever it stands. Only ``if TYPE_CHECKING:``
blocks are left out (annotations, never executed).

``from authchain import masking`` is an edge to ``authchain.masking``, not
to the package (whose ``__init__`` re-exports the outer layers and is
imported first in any case); ``from authchain import resolve`` or a bare
``import authchain`` is an edge to the package, and counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import authchain

PACKAGE_DIR = Path(authchain.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = ["authchain", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported_names(module: str, path: Path) -> set[str]:
    """What each import statement in ``path`` names, dotted (TYPE_CHECKING blocks aside).

    ``from X import y`` gives ``X.y``: module ``X.y`` if there is one, else
    attribute ``y`` of ``X`` (see :func:`_target`).
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                pending.extend(child.orelse)  # type: ignore[attr-defined]
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                names.update(f"{base}.{alias.name}" for alias in child.names)
            pending.append(child)
    return names


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The authchain module an imported name loads: itself, else the closest module above it."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """authchain module → the authchain modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {_target(name, modules) for name in _imported_names(module, path)}
        graph[module] = {target for target in targets if target is not None and target != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_no_import_cycle_among_authchain_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle (function-level imports count): " + " -> ".join(cycle or [])


def test_the_check_sees_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from authchain._chain import Chain\n"
        "def later():\n"
        "    from authchain.config import load_settings\n"
        "    from . import masking\n",
        encoding="utf-8",
    )
    modules = _modules()
    targets = {_target(name, modules) for name in _imported_names("authchain.probe", source)} - {None}
    assert targets == {"authchain.config", "authchain.masking"}, "TYPE_CHECKING imports do not count"
    assert _target("authchain.resolve", modules) == "authchain", "an attribute of the package is the package"
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# The layers of docs/code-organisation.md, lowest first. A module
# may import from its own layer and the ones above it in this list, never
# from one below. A name ending in "." covers a package's modules.
LAYERS: list[tuple[str, ...]] = [
    (  # values, errors and the plumbing everything shares
        "authchain.errors",
        "authchain.values",
        "authchain._records",
        "authchain._process",
        "authchain._scrub",
        "authchain._redact",
        "authchain.masking",
        "authchain._sdk_credentials",
        "authchain._retry",
        "authchain._limits",
        "authchain._trust",
        "authchain._version",
    ),
    ("authchain._registry", "authchain._declarations", "authchain._sdk_logging"),
    ("authchain.refs",),
    ("authchain.sources.base", "authchain.sources"),
    ("authchain.config",),
    (
        "authchain._chain",
        "authchain._cache",
        "authchain._batch",
        "authchain._async",
        "authchain._trail",
        "authchain._upstream",
        "authchain._build",
    ),
    ("authchain._default", "authchain._api"),
    ("authchain.clients._base", "authchain.clients._coerce", "authchain.clients._explicit"),
    ("authchain.backends.", "authchain.testing.memory"),
    (  # outer layers: public names of the layers below
        "authchain",
        "authchain.cli",
        "authchain._run",
        "authchain.dask",
        "authchain.clients",
        "authchain.clients.",
        "authchain.sources.",
        "authchain.testing",
        "authchain.testing.",
    ),
]


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module`` (exact names before package prefixes)."""
    for exact in (True, False):
        for number, names in enumerate(LAYERS):
            for name in names:
                if (module == name) if exact else (name.endswith(".") and module.startswith(name)):
                    return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to docs/code-organisation.md)")


def test_imports_point_down_the_layers() -> None:
    wrong = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert wrong == [], "an import points up the layers:\n" + "\n".join(wrong)


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """The AST check above sees import statements; Python also runs each parent package's
    ``__init__`` first. A backend's client module imported on its own once failed with a
    circular import through ``authchain/clients/__init__.py``: import each module first,
    in a process of its own."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def first_import(module: str) -> str | None:
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return None if done.returncode == 0 else f"{module}: {done.stderr.strip().splitlines()[-1]}"

    modules = sorted(_modules())
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [failure for failure in pool.map(first_import, modules) if failure]
    assert failures == []
