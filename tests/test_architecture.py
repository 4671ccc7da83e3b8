"""The architecture, checked: which part may import which, module and class sizes, first lines.

The direction of imports (DESIGN.md section 11): front ends -> client -> protocol <- runner -> store /
model / worker. Nothing on the runner side imports IPython, ipywidgets or pandas (a runner that loads
pandas carries 50 MB for its life); the model does no I/O; front ends go through the client.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nbsched"
NOTEBOOK_ONLY = {"IPython", "ipywidgets", "pandas", "matplotlib"}
IO_MODULES = {"socket", "sqlite3", "subprocess", "asyncio", "requests", "redis", "smtplib", "http", "urllib", "pyarrow"}
PARTS = ("model", "client", "runner", "worker", "connections", "store", "frontends")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def name_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (lazy imports too), as absolute names."""
    tree = ast.parse(path.read_text())
    package = name_of(path) if path.name == "__init__.py" else name_of(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import x` names a module
    return found


def part_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "top"


def offenders(part: str, forbidden) -> list[str]:
    bad = []
    for path in modules():
        if part_of(path) != part:
            continue
        for module in imported(path):
            if forbidden(module):
                bad.append(f"{path.relative_to(PACKAGE)} imports {module}")
    return sorted(set(bad))


def test_the_folder_listing_names_the_parts_of_the_design():
    assert all((PACKAGE / part / "__init__.py").exists() for part in PARTS)
    assert (PACKAGE / "store" / "base.py").exists() and (PACKAGE / "store" / "memory.py").exists()


@pytest.mark.parametrize("part", ["runner", "worker", "store", "model", "connections", "client"])
def test_the_runner_side_imports_no_notebook_library(part):
    assert offenders(part, lambda module: module.split(".")[0] in NOTEBOOK_ONLY and part != "client") == []


def test_the_client_imports_pandas_only_where_it_builds_a_dataframe():
    assert offenders("client", lambda module: module.split(".")[0] in {"IPython", "ipywidgets"}) == []


def test_front_ends_import_neither_store_nor_runner_nor_worker():
    assert offenders("frontends", lambda m: m.startswith(("nbsched.store", "nbsched.runner", "nbsched.worker"))) == []


def test_the_model_does_no_io_and_imports_only_errors_config_and_itself():
    def forbidden(module: str) -> bool:
        if module.split(".")[0] in IO_MODULES | NOTEBOOK_ONLY:
            return True
        return module.startswith("nbsched.") and not module.startswith(
            ("nbsched.model", "nbsched.errors", "nbsched.config")
        )

    assert offenders("model", forbidden) == []


def test_the_store_imports_no_wire_no_runner_and_no_front_end():
    bad = ("nbsched.protocol", "nbsched.runner", "nbsched.frontends", "nbsched.client", "nbsched.worker")
    assert offenders("store", lambda module: module.startswith(bad)) == []


def test_the_worker_and_the_client_import_no_runner_and_no_store():
    for part in ("worker", "client"):
        assert offenders(part, lambda module: module.startswith(("nbsched.runner", "nbsched.store"))) == [], part


def test_a_running_runner_process_has_no_notebook_library_loaded():
    code = (
        "import sys, nbsched.runner.server, nbsched.worker.process, nbsched.store.sqlite; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('IPython', 'ipywidgets', 'pandas')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_import_nbsched_loads_the_public_names_on_first_use():
    """``import nbsched`` is light (the history child's start, which a first long read waits for); the names of
    ``nbsched`` load when first used, and are all there for ``from nbsched import *`` and completion."""
    code = (
        "import sys, nbsched; heavy = sorted({'nbsched.client.api', 'nbsched.service'} & set(sys.modules)); "
        "listed = set(nbsched.__all__) <= set(dir(nbsched)); "
        "from nbsched import Client, Service, connect, preview; from nbsched import *; "
        "print(heavy, listed, Client.__module__, Service.__module__, nbsched.Client is Client)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] True nbsched.client.api nbsched.service True"
    with pytest.raises(AttributeError, match="module 'nbsched' has no attribute 'Nope'"):
        import nbsched

        _ = nbsched.Nope


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_is_short_and_says_what_it_holds_on_its_first_line(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 500, f"{len(text.splitlines())} lines"
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring and len(docstring.splitlines()[0]) > 10, "no docstring saying what the module holds"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_class_is_over_350_lines(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno - node.lineno + 1 <= 350, f"class {node.name}"
