"""Sources to deploy: what a user passes to ``client.deploy`` (a file, a folder, text, a Service class) as units.

A unit is ``{"source": text, "origin": where it came from}``; the runner reads, checks and stores each.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

from ..errors import DeployError


def source_units(target: Any) -> list[dict]:
    """Turn what a user passes to deploy() into source units for the runner."""
    if isinstance(target, list | tuple):
        return [unit for item in target for unit in source_units(item)]
    if isinstance(target, type):
        return [_class_unit(target)]
    if isinstance(target, Path) or (isinstance(target, str) and "\n" not in target and _looks_like_path(target)):
        return _path_units(Path(target))
    if isinstance(target, str):
        return [{"source": target, "origin": "<string>"}]
    raise DeployError(f"Cannot deploy {type(target).__name__}: pass a file, a folder, source text or a Service class.")


def with_html(units: list[dict]) -> list[dict]:
    """The units with each notebook's metadata asking for an HTML rendering of its runs (``nbsched.html``)."""
    notebooks = [unit for unit in units if unit["origin"].lower().endswith(".ipynb")]
    if not notebooks:
        raise DeployError("html applies to notebooks (.ipynb) only; none was given.", field="html")
    changed = []
    for unit in units:
        if unit in notebooks:
            try:
                notebook = json.loads(unit["source"])
                notebook.setdefault("metadata", {}).setdefault("nbsched", {})["html"] = True
                unit = {**unit, "source": json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"}
            except (ValueError, AttributeError):
                pass  # not a notebook after all: the runner says why
        changed.append(unit)
    return changed


def _looks_like_path(text: str) -> bool:
    return os.path.exists(text) or text.endswith((".py", ".ipynb")) or "/" in text


def _path_units(path: Path) -> list[dict]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.py") if not p.name.startswith("_") and "__pycache__" not in p.parts)
        if not files:
            raise DeployError(f"Cannot deploy {path}: the folder has no .py files.")
        return [unit for file in files for unit in _path_units(file)]
    if not path.is_file():
        raise DeployError(f"Cannot deploy {path}: no such file or folder.")
    if path.suffix not in ("", ".py", ".ipynb"):
        raise DeployError(f"Cannot deploy {path}: only Python files (.py) and notebooks (.ipynb) can be deployed.")
    # A notebook's kernel starts in the notebook's folder: the runner gets its full path.
    origin = str(path.resolve()) if path.suffix == ".ipynb" else str(path)
    try:
        return [{"source": path.read_text(encoding="utf-8"), "origin": origin}]
    except UnicodeDecodeError:
        raise DeployError(f"Cannot deploy {path}: it is not UTF-8 text.") from None


def _class_unit(cls: type) -> dict:
    module_file = getattr(inspect.getmodule(cls), "__file__", None)
    if module_file and module_file.endswith(".py") and os.path.exists(module_file):
        return _path_units(Path(module_file))[0]
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        raise DeployError(
            f"Cannot deploy {cls.__name__}: its source is not available; deploy the file or cell text."
        ) from None
    import textwrap

    return {"source": "from nbsched import *  # noqa\n\n" + textwrap.dedent(source), "origin": "<cell>"}
