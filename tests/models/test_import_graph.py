"""The modules of ``treeattn.models`` import each other without a cycle — counting every import
statement: module level, inside functions (lazy) and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import treeattn.models

PACKAGE = treeattn.models.__name__
FOLDER = Path(treeattn.models.__file__).parent


def _imported(tree: ast.AST) -> set[str]:
    """Every module or ``module.name`` an AST imports (absolute imports; the package uses no
    relative ones)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = {f"{PACKAGE}.{path.stem}": path for path in FOLDER.glob("*.py")}
    modules.pop(f"{PACKAGE}.__init__")
    return {
        name: _imported(ast.parse(path.read_text())) & (set(modules) - {name})
        for name, path in modules.items()
    }


def test_the_graph_sees_imports_at_every_level():
    graph = _graph()
    # base's save/load methods use the file format; stage types its builders with the config
    assert f"{PACKAGE}.checkpoint" in graph[f"{PACKAGE}.base"]
    assert f"{PACKAGE}.configs" in graph[f"{PACKAGE}.stage"]
    assert f"{PACKAGE}.unet" in graph[f"{PACKAGE}.registry"]


def test_models_modules_have_no_import_cycle():
    try:
        order = list(TopologicalSorter(_graph()).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle in {PACKAGE}: {error.args[1]}") from None
    # the save/load entry points come after the model classes they build, never before
    assert order.index(f"{PACKAGE}.registry") > order.index(f"{PACKAGE}.unet")
    assert order.index(f"{PACKAGE}.base") > order.index(f"{PACKAGE}.checkpoint")
