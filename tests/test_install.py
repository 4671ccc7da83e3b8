"""What ``pip install -e .`` brings: everything nbsched imports, and no JupyterLab (that is the ``lab`` extra)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

#: Modules nbsched imports only inside functions, for optional parts, and the extra that provides each.
OPTIONAL = {
    "psycopg": "postgres",
    "adbc_driver_postgresql": "postgres",
    "matplotlib": "notebooks",  # the history timeline and the dashboard's chart; without it, "pip install ..."
    "yaml": "yaml",  # papermill's YAML parameters in nbsched import crontab; says pip install pyyaml without it
    "nbconvert": "html",  # the HTML rendering of a notebook job's runs; deploying with html refuses without it
}


def requirement_names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings, normalized (``psycopg[binary]>=3.1`` -> ``psycopg``)."""
    return {re.split(r"[\[<>=!~; ]", text, maxsplit=1)[0].lower().replace("_", "-") for text in requirements}


def third_party_imports() -> dict[str, list[tuple[str, bool]]]:
    """Top-level module -> [(where, imported at module level)] for imports of non-stdlib modules in nbsched/,
    leaving out those under ``if TYPE_CHECKING:``."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted((REPO / "nbsched").rglob("*.py")):
        where = str(path.relative_to(REPO))
        _collect(ast.parse(path.read_text()), where, True, found)
    return found


def _collect(node: ast.AST, where: str, module_level: bool, found: dict) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in child.names] if isinstance(child, ast.Import) else [child.module or ""]
            if isinstance(child, ast.ImportFrom) and child.level:
                names = []  # relative: nbsched itself
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "nbsched":
                    found.setdefault(top, []).append((f"{where}:{child.lineno}", module_level))
        inside = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        _collect(child, where, module_level and not inside, found)


def distributions_of(module: str) -> set[str]:
    return {name.lower().replace("_", "-") for name in packages_distributions().get(module, [])}


def test_the_core_install_has_no_jupyterlab():
    core = requirement_names(PROJECT["dependencies"])
    assert "jupyterlab" not in core
    assert "jupyterlab" in requirement_names(PROJECT["optional-dependencies"]["lab"])
    assert "jupyterlab" in requirement_names(PROJECT["optional-dependencies"]["test"])  # the browser tests


def test_every_module_nbsched_imports_comes_with_the_core_install_or_its_extra():
    core = requirement_names(PROJECT["dependencies"])
    extras = {name: requirement_names(requirements) for name, requirements in PROJECT["optional-dependencies"].items()}
    missing = []
    for module, places in sorted(third_party_imports().items()):
        provided_by = distributions_of(module)
        assert provided_by, f"{module} (imported at {places[0][0]}) is not installed here: which package has it?"
        if module in OPTIONAL:
            extra = OPTIONAL[module]
            if not provided_by & extras[extra]:
                missing.append(f"{module}: not in the {extra!r} extra")
            eager = [where for where, module_level in places if module_level]
            if eager:
                missing.append(f"{module} is optional but imported at module level: {', '.join(eager)}")
        elif not provided_by & core:
            missing.append(f"{module} ({places[0][0]}): add {sorted(provided_by)[0]} to the core dependencies")
    assert missing == []


def test_the_optional_modules_are_really_imported():
    assert set(OPTIONAL) <= set(third_party_imports()), "OPTIONAL names a module nbsched no longer imports"


def test_every_extra_the_readme_names_exists():
    named = set(re.findall(r'pip install -e "\.\[(\w+)\]"', (REPO / "README.md").read_text()))
    assert named >= {"lab", "test", "postgres", "notebooks"}
    assert named <= set(PROJECT["optional-dependencies"])


def test_binder_installs_jupyterlab():
    installed = (REPO / "binder" / "requirements.txt").read_text() + (REPO / "binder" / "postBuild").read_text()
    assert "jupyterlab" in installed or "[lab" in installed
