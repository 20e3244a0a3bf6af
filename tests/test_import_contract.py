"""The import contract of napari-amvlm, checked on the source with ``ast``. Every import counts: those inside
functions, under ``if TYPE_CHECKING:`` and ``importlib.import_module("...")`` calls with a literal name.

1. Only ``_widgets/`` imports a GUI toolkit: the Qt bindings (qtpy, PyQt5/6, PySide2/6), napari, magicgui or
   superqt. There is no exception: the napari manifest's other contributions (``_reader``, ``_sample_data``)
   return layer data tuples and import nothing of napari.
2. Only ``project/`` imports zarr.
3. No import cycle between the top-level parts of napari_amvlm (its sub-packages and root modules), nor
   between the modules of any one package (for ``project/``: records <- files, arrays, manifest <- store <-
   catalog, transfer <- project). A package's ``__init__`` is a node of its own, so a module that imports its
   own package's ``__init__`` while the ``__init__`` imports it is a cycle too.

The same checks run on a small package with every kind of violation, so that they are known to fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "napari_amvlm"
GUI = {"qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt"}
GUI_PACKAGE = "_widgets"  # the only part allowed to import GUI
ZARR_PACKAGE = "project"  # the only part allowed to import zarr


# ------------------------------------------------------------------------------------------ the graph
def modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is named by its __init__)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (package_dir.name, *path.relative_to(package_dir).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported(path: Path, name: str, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in one module; relative imports are resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:  # "from pkg import mod" imports pkg.mod; "from mod import name" mod
                yield (f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base), node.lineno
        elif isinstance(node, ast.Call) and (literal := _import_call(node)):
            yield literal, node.lineno


def _import_call(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("name")`` or ``__import__("name")``, else None."""
    func = getattr(node.func, "attr", getattr(node.func, "id", None))
    name = getattr(node.args[0], "value", None) if node.args else None
    if func in ("import_module", "__import__") and isinstance(name, str) and not name.startswith("."):
        return name
    return None


def imports(package_dir: Path) -> dict[str, list[tuple[str, int]]]:
    """Module -> [(imported module, line)] for the whole package."""
    known = modules(package_dir)
    return {name: list(_imported(path, name, known)) for name, path in known.items()}


def part(module: str, depth: int) -> str:
    """The component of ``module`` at ``depth`` (1: top-level part), or "__init__" for the package itself."""
    parts = module.split(".")
    return parts[depth] if len(parts) > depth else "__init__"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    return next((c for n in sorted(graph) if n not in state and (c := visit(n))), None)


# --------------------------------------------------------------------------------------- the checks
def forbidden(package_dir: Path, names: set[str], allowed_in: str) -> list[str]:
    """Imports of the top-level modules ``names`` outside the top-level part ``allowed_in``, as "module:line
    imports target"."""
    return [f"{m}:{line} imports {target}"
            for m, targets in imports(package_dir).items() if part(m, 1) != allowed_in
            for target, line in targets if target.split(".")[0] in names]  # fmt: skip


def gui_violations(package_dir: Path) -> list[str]:
    return forbidden(package_dir, GUI, GUI_PACKAGE)


def zarr_violations(package_dir: Path) -> list[str]:
    return forbidden(package_dir, {"zarr"}, ZARR_PACKAGE)


def cycles(package_dir: Path) -> list[str]:
    """One import cycle per package that has any, as "in package: a -> b -> a" (a, b: the package's direct
    children, sub-packages taken whole, and "__init__" for the package itself)."""
    graph = imports(package_dir)
    found = []
    for package, path in modules(package_dir).items():
        if path.name != "__init__.py":
            continue
        depth, inside = package.count(".") + 1, (lambda m, p=package: m == p or m.startswith(p + "."))
        edges: dict[str, set[str]] = {}
        for m, targets in graph.items():
            for target in (t for t, _ in targets if inside(m) and inside(t)):
                if part(m, depth) != part(target, depth):
                    edges.setdefault(part(m, depth), set()).add(part(target, depth))
        if cycle := find_cycle(edges):
            found.append(f"in {package}: " + " -> ".join(cycle))
    return found


# ---------------------------------------------------------------------------------------- the tests
def test_only_widgets_import_a_gui_toolkit() -> None:
    assert gui_violations(PACKAGE_DIR) == []


def test_only_the_project_store_imports_zarr() -> None:
    assert zarr_violations(PACKAGE_DIR) == []


def test_no_import_cycles() -> None:
    assert cycles(PACKAGE_DIR) == []


def test_the_checks_see_the_package_s_imports() -> None:
    graph = {m: {target for target, _ in targets} for m, targets in imports(PACKAGE_DIR).items()}
    assert "napari_amvlm.project.transfer" in graph["napari_amvlm.project.catalog"]  # from . import transfer
    assert "napari_amvlm.training.child" in graph["napari_amvlm.cli.main"]  # from ..training import child
    assert "napari_amvlm" in graph["napari_amvlm.cli.main"]  # from .. import __version__
    assert "zarr" in graph["napari_amvlm.project.arrays"]
    assert "qtpy.QtCore" in graph["napari_amvlm._widgets._main"]


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "pkg"


@pytest.fixture
def bad_package(tmp_path: Path) -> Path:
    """A package that breaks every rule once."""
    return _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/_widgets/__init__.py": "from qtpy.QtWidgets import QWidget\nimport zarr\n",
        "pkg/reader.py": "def f():\n    import napari.layers\n",
        "pkg/engine.py": "import typing\nif typing.TYPE_CHECKING:\n    from magicgui import magicgui\n",
        "pkg/dynamic.py": "import importlib\nimportlib.import_module('superqt')\n",
        "pkg/project/__init__.py": "from .store import Store\nimport zarr\n",
        "pkg/project/store.py": "from .catalog import Catalog\nclass Store: ...\n",
        "pkg/project/catalog.py": "from . import store\nclass Catalog: ...\n",
        "pkg/cli.py": "from .model import net\n",
        "pkg/model/__init__.py": "",
        "pkg/model/net.py": "from ..cli import main\n",
        "pkg/data.py": "from zarr import open_array\n",
    })  # fmt: skip


def test_the_checks_fail_on_a_package_that_breaks_the_rules(bad_package: Path) -> None:
    assert sorted(gui_violations(bad_package)) == [
        "pkg.dynamic:2 imports superqt",
        "pkg.engine:3 imports magicgui",
        "pkg.reader:2 imports napari.layers",
    ]
    assert zarr_violations(bad_package) == ["pkg._widgets:2 imports zarr", "pkg.data:1 imports zarr"]
    assert cycles(bad_package) == ["in pkg: cli -> model -> cli", "in pkg.project: store -> catalog -> store"]


def test_a_module_importing_its_own_package_init_is_a_cycle(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/project/__init__.py": "from .store import Store\n",
        "pkg/project/store.py": "from . import Thing\n",
    })  # fmt: skip
    assert cycles(package) == ["in pkg.project: __init__ -> store -> __init__"]
