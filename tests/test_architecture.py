"""The import direction of the house, checked on the source (``ast``), not by convention.

``routers -> services / tiles -> layers``: ``layers`` imports neither ``tiles`` nor
``gis_service``, ``tiles`` does not import ``gis_service``, no module imports another
that imports it back (directly or around a longer circle), and routers hold no SQL
(they parse, call a service and reply).

Every import counts, also one inside a function (that is how a circle hides): only
imports under ``if TYPE_CHECKING:`` are left out of the circle check, as they never run.
An import names the most specific project module it reaches (``from tiles import sql``
is ``tiles.sql``); a package's ``__init__`` is not counted as imported by its modules.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gis_service", "layers", "tiles", "bench")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The most specific project module that ``name`` (a dotted import target) denotes."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, *, runtime_only: bool) -> set[str]:
    """Project modules that ``module`` imports anywhere in its body (with ``runtime_only``,
    leaving out the blocks under ``if TYPE_CHECKING:``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if runtime_only and isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            targets = []
        for target in targets:
            resolved = _resolve(target)
            if resolved is not None and resolved != module:
                found.add(resolved)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_module_list_is_complete() -> None:
    """The checks below read every module of the product (a typo in PACKAGES would make them vacuous)."""
    expected = ("layers.importer", "tiles.sql", "tiles.generalize", "gis_service.routers.tiles", "bench.tiles_bench")
    assert set(expected) <= set(MODULES)
    assert _imports("tiles.sql", runtime_only=True) >= {"layers.catalog", "tiles.grid"}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("layers", "tiles"), ("layers", "gis_service"), ("tiles", "gis_service")],
)
def test_lower_layers_do_not_import_upper_ones(package: str, forbidden: str) -> None:
    offending = sorted(
        f"{module} imports {target}"
        for module in MODULES
        if _in_package(module, package)
        for target in _imports(module, runtime_only=False)
        if _in_package(target, forbidden)
    )
    assert offending == [], f"`{package}` must not import `{forbidden}`: " + "; ".join(offending)


def _import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_cycle_finder_finds_a_circle() -> None:
    """The finder itself: a circle through three modules is found, a chain is not."""
    assert _import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_circles() -> None:
    graph = {module: _imports(module, runtime_only=True) for module in MODULES}
    cycles = _import_cycles(graph)
    described = []
    for cycle in cycles:
        edges = "; ".join(f"{m} -> {t}" for m in cycle for t in sorted(graph[m]) if t in cycle)
        described.append(" <-> ".join(cycle) + f" ({edges})")
    assert cycles == [], "modules that import each other: " + " | ".join(described)


SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP)\s", re.IGNORECASE)
DATABASE_CALLS = {"execute", "executemany", "fetchone", "fetchall", "fetchmany", "cursor"}


def _sql_in_router(path: Path) -> list[str]:
    """Places in a router that build SQL or talk to the database themselves."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in ("SQL", "Identifier", "Literal") and isinstance(owner, ast.Name) and owner.id == "sql":
                found.append(f"{path.name}:{node.lineno} sql.{node.func.attr}(...)")
            elif node.func.attr in DATABASE_CALLS:
                found.append(f"{path.name}:{node.lineno} .{node.func.attr}(...)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_TEXT.match(node.value):
            found.append(f"{path.name}:{node.lineno} SQL text {node.value.strip()[:40]!r}")
    return found


def test_sql_detector_sees_sql() -> None:
    """The heuristic itself recognises the three forms it looks for."""
    sample = ROOT / "tiles" / "generalize.py"  # a module that is all about SQL
    found = _sql_in_router(sample)
    assert any("sql.SQL" in f for f in found)
    assert any(".execute" in f for f in found)


def test_routers_hold_no_sql() -> None:
    routers = sorted((ROOT / "gis_service" / "routers").glob("*.py"))
    assert len(routers) > 5
    found = [place for path in routers for place in _sql_in_router(path)]
    assert found == [], "routers must call a service instead of running SQL: " + "; ".join(found)
