"""The house reads one way: no import cycle among pynq_cv's modules (function-level imports
included; ``if TYPE_CHECKING:`` imports, for annotations only, excluded), and no core
module imports the emulator (``backends/emulator/``): only the backends layer, ``emulate``
and the CLI may."""

from __future__ import annotations

import ast
from pathlib import Path

import pynq_cv

PACKAGE = Path(pynq_cv.__file__).parent
EMULATOR = "pynq_cv.backends.emulator"
MAY_IMPORT_EMULATOR = ("pynq_cv.backends", "pynq_cv.emulate", "pynq_cv.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST):
    """Every import statement under ``node``, at any depth, outside TYPE_CHECKING blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child.test):
            for sub in child.orelse:
                yield from _import_nodes_of(sub)
            continue
        yield from _import_nodes_of(child)


def _import_nodes_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _import_nodes(node)


def imports_of(name: str) -> set[str]:
    """The pynq_cv modules ``name`` imports (the module named, or ``from X import m`` of a
    submodule ``X.m``); a package's parents, imported implicitly, are not counted."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
            found.update(t for t in targets if t in MODULES)
            continue
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            if sub in MODULES:
                found.add(sub)
            elif target in MODULES:
                found.add(target)
    found.discard(name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_from_the_code():
    """The parser sees what it must (guards against a test that passes by seeing nothing)."""
    assert "pynq_cv.resizer" in GRAPH["pynq_cv.dispatch"]
    assert "pynq_cv.frame" in GRAPH["pynq_cv.pipeline"]
    assert "pynq_cv.resizer" not in GRAPH["pynq_cv.pipeline"]  # TYPE_CHECKING only
    assert "pynq_cv.arith" in GRAPH["pynq_cv.backends.emulator.resize_ip"]
    assert "pynq_cv.backends.emulator" in GRAPH["pynq_cv.backends.select"]  # in a function
    assert "pynq_cv.cv2compat" in GRAPH["pynq_cv.watch"]


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_pynq_cvs_modules():
    assert cycles(GRAPH) == []


def test_no_core_module_imports_the_emulator():
    offenders = {
        name: sorted(t for t in targets if t == EMULATOR or t.startswith(EMULATOR + "."))
        for name, targets in GRAPH.items()
        if not any(name == m or name.startswith(m + ".") for m in MAY_IMPORT_EMULATOR)
    }
    assert {k: v for k, v in offenders.items() if v} == {}
