"""The code's shape: the import contracts in pyproject.toml, no import cycles, modules of a
readable size. A change that breaks one of these puts code in the wrong place."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

from config import PROJECT_ROOT

PACKAGES = ("flows", "tasks", "analysis", "models", "data")
MAX_MODULE_LINES = 500  # "about 450": a module past this is doing two things


def test_import_contracts_hold() -> None:
    # Exit code 0: every contract of [tool.importlinter] in pyproject.toml is kept.
    assert lint_imports(config_filename=str(PROJECT_ROOT / "pyproject.toml")) == 0


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    graph = grimp.build_graph(*PACKAGES)
    cycles = sorted(
        f"{importer} -> {imported}"
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert not cycles, f"import cycles: {cycles}"


def test_config_imports_no_project_package() -> None:
    # config.py is the bottom layer: every package reads settings from it.
    tree = ast.parse((PROJECT_ROOT / "config.py").read_text(encoding="utf-8"))
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not imported & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_readable(package: str) -> None:
    long = {
        str(path.relative_to(PROJECT_ROOT)): n
        for path in Path(PROJECT_ROOT, package).rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
