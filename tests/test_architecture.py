"""The direction of imports that ``docs/architecture.md`` draws, held for every module.

Every import is read from the source (at the top, under ``TYPE_CHECKING``, inside a
function): lower packages never import higher ones, the engine never imports ``api``
but for the serve command, no two modules import each other round a cycle, and no
compiled function calls a compiled function of another file (numba's cache of a
function is refreshed when its own file changes, not when a file it calls into does).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each package and the project packages its modules may import (besides its own).
_BASE = {"recommender.core", "recommender.infra"}
_ENGINE = _BASE | {
    "recommender.text",
    "recommender.neighbours",
    "recommender.ingest",
    "recommender.index",
}
ALLOWED: dict[str, set[str]] = {
    "recommender.core": set(),
    "recommender.infra": set(),
    "recommender.text": _BASE,
    "recommender.neighbours": _BASE,
    "recommender.ingest": _BASE,
    "recommender.index": _BASE | {"recommender.text", "recommender.neighbours"},
    "recommender.pipelines": _ENGINE,
    "recommender.evaluation": _ENGINE,
    # The Python API: queries of a loaded index, as the command line and service ask them.
    "recommender.search": _BASE | {"recommender.index"},
    "recommender.cli": _ENGINE
    | {"recommender.pipelines", "recommender.evaluation", "recommender.search"},
    # The package itself: `python -m recommender`, and the public names it re-exports.
    "recommender": {
        "recommender.cli",
        "recommender.core",
        "recommender.index",
        "recommender.pipelines",
        "recommender.search",
    },
    # The service: settings and schemas at the bottom, the app at the top.
    "api": set(),
    "api.settings": {"recommender.core"},
    "api.schemas": {"recommender.core"},
    "api.service": {
        "api.schemas",
        "recommender.core",
        "recommender.index",
        "recommender.neighbours",
    },
    "api.html": {"api.schemas", "api.service", "recommender.core", "recommender.index"},
    "api.asgi": {
        "api.settings",
        "api.schemas",
        "api.service",
        "recommender.core",
        "recommender.index",
    },
    "api.server": {"api.asgi", "api.service", "recommender.index"},
    "api.deps": {"api.schemas", "recommender.core", "recommender.index"},
    "api.errors": {"api.service", "recommender.core", "recommender.index"},
    "api.routes": {
        "api.settings",
        "api.schemas",
        "api.service",
        "api.html",
        "api.asgi",
        "api.deps",
        "recommender.core",
        "recommender.index",
    },
    "api.app": {
        "api.settings",
        "api.service",
        "api.html",
        "api.asgi",
        "api.server",
        "api.errors",
        "api.routes",
    },
}
# The one engine module that may import the service: the command that serves it.
SERVE_COMMAND = "recommender.cli.serve"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def project_modules() -> dict[str, Path]:
    files = [*(ROOT / "recommender").rglob("*.py"), *(ROOT / "api").rglob("*.py")]
    return {module_name(path): path for path in files}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports, anywhere in the file.

    ``from package import name`` is an import of the submodule ``package.name`` when
    there is one, else of the package itself (its ``__init__``).
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}: relative import; write the module's full name")
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {name for name in found if name in modules}


def package_of(module: str) -> str:
    """The entry of :data:`ALLOWED` a module belongs to (its longest matching name)."""
    candidates = [p for p in ALLOWED if module == p or module.startswith(p + ".")]
    if not candidates:
        raise AssertionError(f"{module} belongs to no package of ALLOWED: add it there")
    return max(candidates, key=len)


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a package its importer may not import, one sentence each."""
    problems = []
    for module, imports in sorted(graph.items()):
        own = package_of(module)
        for imported in sorted(imports):
            other = package_of(imported)
            if other == own or other in ALLOWED[own]:
                continue
            if module == SERVE_COMMAND and other.startswith("api"):
                continue
            problems.append(f"{module} imports {imported} ({own} may not import {other})")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles among modules (each found once, as the modules along it)."""
    found, state, path = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                found.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, modules) - {name} for name, path in modules.items()}


def test_every_module_belongs_to_a_package_of_the_table():
    for module in project_modules():
        package_of(module)


def test_lower_packages_never_import_higher_ones():
    assert wrong_way(import_graph()) == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_only_the_serve_command_imports_the_service():
    graph = import_graph()
    engine = [m for m in graph if m.split(".")[0] == "recommender" and m != SERVE_COMMAND]
    assert [m for m in engine if any(i.split(".")[0] == "api" for i in graph[m])] == []


def test_no_module_over_about_500_lines():
    long = {
        name: n
        for name, path in project_modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 520
    }
    assert long == {}


# Lazy re-exports (PEP 562): a package may import its public names on first use.
LAZY_EXPORTS = {"__getattr__", "__dir__"}


def init_problems(name: str, source: str) -> list[str]:
    """What a package ``__init__`` holds besides re-exports: imports (also under
    ``if TYPE_CHECKING:``), ``__all__``, and the lazy re-export functions."""
    tree = ast.parse(source)
    problems = []
    for node in tree.body[1:] if ast.get_docstring(tree) else tree.body:
        ok = isinstance(node, ast.Import | ast.ImportFrom)
        ok |= isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"]
        ok |= isinstance(node, ast.FunctionDef) and node.name in LAZY_EXPORTS
        ok |= (
            isinstance(node, ast.If)
            and ast.unparse(node.test) == "TYPE_CHECKING"
            and all(isinstance(n, ast.Import | ast.ImportFrom) for n in node.body)
            and not node.orelse
        )
        if not ok:
            problems.append(f"{name}: __init__ holds more than re-exports (line {node.lineno})")
    return problems


def test_package_inits_only_re_export():
    for name, path in project_modules().items():
        if path.name == "__init__.py":
            assert init_problems(name, path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ('"""Doc."""\nfrom a import b\n__all__ = ["b"]\n', 0),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import b\n", 0),
        ("def __getattr__(name):\n    return name\n", 0),
        ("x = 1\n", 1),
        ("def helper():\n    pass\n", 1),
        ("if TYPE_CHECKING:\n    x = 1\n", 1),
    ],
)
def test_an_init_holding_more_than_re_exports_is_found(source, found):
    assert len(init_problems("pkg", source)) == found


def _compiled_functions(tree: ast.Module) -> set[str]:
    def compiled(function: ast.FunctionDef) -> bool:
        for decorator in function.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if isinstance(target, ast.Name) and target.id in ("njit", "jit"):
                return True
        return False

    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and compiled(n)}


def test_compiled_code_calls_compiled_code_of_its_own_file_only():
    modules = project_modules()
    compiled = {name: _compiled_functions(ast.parse(p.read_text())) for name, p in modules.items()}
    problems = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {}  # local name -> the module that compiles it
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module in compiled:
                for alias in node.names:
                    if alias.name in compiled[node.module]:
                        imported[alias.asname or alias.name] = node.module
        for function in tree.body:
            if not (isinstance(function, ast.FunctionDef) and function.name in compiled[name]):
                continue
            for call in ast.walk(function):
                is_call = isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                if is_call and call.func.id in imported:
                    problems.append(f"{name}.{function.name} calls {call.func.id}")
    assert problems == []


# -- the checks themselves fail where they should -------------------------------------


def test_a_wrong_way_import_is_found():
    graph = {"recommender.core.records": {"recommender.index.loaded"}}
    assert wrong_way(graph) == [
        "recommender.core.records imports recommender.index.loaded "
        "(recommender.core may not import recommender.index)"
    ]


def test_the_engine_importing_the_service_is_found_but_for_serve():
    graph = {"recommender.cli.build": {"api.app"}, SERVE_COMMAND: {"api.app"}}
    assert wrong_way(graph) == [
        "recommender.cli.build imports api.app (recommender.cli may not import api.app)"
    ]


def test_a_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from recommender.index import loaded\n", {"recommender.index.loaded"}),
        ("from recommender.index import TrialIndex\n", {"recommender.index"}),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from recommender.text import FieldGroup\n",
            {"recommender.text"},
        ),
        ("def f():\n    import recommender.ingest.spool\n", {"recommender.ingest.spool"}),
    ],
)
def test_imports_are_read_wherever_they_are(tmp_path, source, expected):
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert imported_modules(path, project_modules()) == expected
