"""The house reads one way: no import cycle among pynq_cv's modules (function-level imports
included; ``if TYPE_CHECKING:`` imports, for annotations only, excluded), and no core
module imports the emulator (``backends/emulator/``): only the backends layer, ``emulate``
and the CLI may. And no module reaches into another's private attributes."""

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


# -- no module reaches into another's private attributes -----------------------------------
# ``x._name`` (``x`` not ``self``/``cls``, ``_name`` not a dunder) in module M is a reach into
# another module's privates when M does not define ``_name`` itself (a function, class,
# variable, ``self._name = ...`` or a class-level annotation) but another pynq_cv module
# does. Privates of the same module's other objects (``other._host`` in the class that
# made it) and of third-party code (``sys._getframe``) are not counted.

ALLOWED_REACHES: dict[tuple[str, str], str] = {
    # (module, expression): why it stays
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_names_defined(tree: ast.AST) -> set[str]:
    """The private names a module defines: defs, classes, assigned or annotated names, and
    attributes it assigns on ``self``/``cls``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif (
            isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        ):
            found.add(node.attr)
    return {name for name in found if _private(name)}


TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def private_reaches(trees: dict[str, ast.AST]) -> set[tuple[str, str]]:
    """``(module, expression)`` for each ``x._name`` reaching into another module's privates."""
    defined = {name: private_names_defined(tree) for name, tree in trees.items()}
    reaches: set[tuple[str, str]] = set()
    for name, tree in trees.items():
        elsewhere = set().union(*(d for other, d in defined.items() if other != name))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr in defined[name] or node.attr not in elsewhere:
                continue
            reaches.add((name, ast.unparse(node)))
    return reaches


def test_the_reach_finder_finds_reaches():
    """It sees a reach across modules, and not one into the module's own or foreign code."""
    trees = {
        "a": ast.parse("class A:\n    def __init__(self):\n        self._x = 1\n"
                       "def peek(o):\n    return o._x, o.__class__, sys._getframe\n"),
        "b": ast.parse("def f(a):\n    return a._x + a.y._x + a.public\n"),
    }
    assert private_reaches(trees) == {("b", "a._x"), ("b", "a.y._x")}


def test_no_module_reaches_into_another_modules_privates():
    found = private_reaches(TREES)
    assert found - set(ALLOWED_REACHES) == set()
    assert set(ALLOWED_REACHES) - found == set(), "an allowed reach is gone: drop it from the list"
