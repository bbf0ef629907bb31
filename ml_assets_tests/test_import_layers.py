"""The import graph of ``ml_assets``: no cycles, and every layer imports only the layers below it.

Every module is parsed with ``ast`` (nothing is imported), and every ``import`` statement counts:
module level, function-local, and ``if TYPE_CHECKING:`` blocks alike. ``from ml_assets.x import
y`` is an edge to ``ml_assets.x.y`` when ``y`` is a submodule, else to ``ml_assets.x``. Importing
``ml_assets.a.b`` is an edge to that module only: the parent packages' ``__init__`` files Python
runs on the way are left out (they hold docstrings, constants and lazy builders), while a real
``from ml_assets.a import NAME`` is an edge to the package ``ml_assets.a`` itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ml_assets"

# Layers that must not know about automation (sensors, schedules, monitors): automation builds on
# them, never the reverse.
BELOW_AUTOMATION = (
    "ml_assets.assets",
    "ml_assets.resources",
    "ml_assets.checks",
    "ml_assets.models",
    "ml_assets.feature_repo",
    "ml_assets.sources",
    "ml_assets.execution",
)
# The pure data science may use these small, dependency-free leaf modules besides its own package.
MODELS_MAY_IMPORT = {"ml_assets", "ml_assets.types", "ml_assets.atomic"}
# Operator tooling (CLI, backfills, the supervisor) sits on top: only itself and the package's
# entry points may import it.
OPERATIONS = "ml_assets.operations"
MAY_IMPORT_OPERATIONS = {"ml_assets", "ml_assets.__main__"}


def module_name(path: Path, root: Path = ROOT) -> str:
    """``ml_assets/a/b.py`` -> ``ml_assets.a.b``; ``ml_assets/a/__init__.py`` -> ``ml_assets.a``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(package: str = PACKAGE, root: Path = ROOT) -> dict[str, Path]:
    """Every module of ``package`` by dotted name."""
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


def imported_names(path: Path, module: str) -> Iterator[tuple[str, str | None]]:
    """``(module, name)`` for each ``from module import name`` and ``(module, None)`` for each
    ``import module`` anywhere in ``path``, relative imports resolved against ``module``."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            yield from ((base, alias.name) for alias in node.names)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges = set()
        for base, name in imported_names(path, module):
            if name is not None and f"{base}.{name}" in modules:
                edges.add(f"{base}.{name}")
            elif base in modules:
                edges.add(base)
        graph[module] = edges - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == white and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = black
        return None

    for start in sorted(graph):
        if colour[start] == white and (cycle := visit(start)):
            return cycle
    return None


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(package_modules())


def test_the_graph_sees_function_local_and_submodule_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from pkg import X\n")
    (pkg / "a.py").write_text("from pkg.sub import leaf\n")
    (pkg / "b.py").write_text("def g():\n    from . import a\n")
    found = import_graph(package_modules("pkg", tmp_path))
    assert found["pkg.a"] == {"pkg.sub.leaf"}
    assert found["pkg.b"] == {"pkg.a"}
    assert found["pkg.sub.leaf"] == {"pkg"}
    assert find_cycle(found) is None
    (pkg / "sub" / "leaf.py").write_text("def f():\n    import pkg.b\n")
    assert find_cycle(import_graph(package_modules("pkg", tmp_path))) == [
        "pkg.a",
        "pkg.sub.leaf",
        "pkg.b",
        "pkg.a",
    ]


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_models_are_pure(graph: dict[str, set[str]]) -> None:
    """``ml_assets.models`` imports no Dagster and, of this package,
    only itself and small leaves."""
    modules = package_modules()
    bad = []
    for module, edges in graph.items():
        if not within(module, "ml_assets.models"):
            continue
        bases = {base for base, _ in imported_names(modules[module], module)}
        bad += [f"{module} imports dagster" for base in bases if within(base, "dagster")][:1]
        bad += [
            f"{module} imports {edge}"
            for edge in sorted(edges)
            if not within(edge, "ml_assets.models") and edge not in MODELS_MAY_IMPORT
        ]
    assert not bad, "\n".join(bad)


def test_nothing_below_automation_imports_it(graph: dict[str, set[str]]) -> None:
    bad = [
        f"{module} imports {edge}"
        for module, edges in sorted(graph.items())
        if any(within(module, layer) for layer in BELOW_AUTOMATION)
        for edge in sorted(edges)
        if within(edge, "ml_assets.automation")
    ]
    assert not bad, "\n".join(bad)


def test_nothing_outside_operations_imports_it(graph: dict[str, set[str]]) -> None:
    assert any(within(module, OPERATIONS) for module in graph), "no operations package"
    bad = [
        f"{module} imports {edge}"
        for module, edges in sorted(graph.items())
        if not within(module, OPERATIONS) and module not in MAY_IMPORT_OPERATIONS
        for edge in sorted(edges)
        if within(edge, OPERATIONS)
    ]
    assert not bad, "\n".join(bad)


def test_module_file_names_are_unique() -> None:
    """Each module's file name says what it holds, once in the tree (``__init__.py`` aside)."""
    by_name: dict[str, list[str]] = {}
    for module, path in package_modules().items():
        if path.name != "__init__.py":
            by_name.setdefault(path.name, []).append(module)
    clashes = {name: modules for name, modules in by_name.items() if len(modules) > 1}
    assert not clashes, "\n".join(f"{n}: {', '.join(m)}" for n, m in sorted(clashes.items()))


def test_bench_does_not_import_tests() -> None:
    bad = [
        f"bench/{path.name} imports {name}"
        for path in sorted((ROOT / "bench").glob("*.py"))
        for name, _ in imported_names(path, f"bench.{path.stem}")
        if within(name, "ml_assets_tests")
    ]
    assert not bad, "\n".join(bad)
