"""Notebooks as services: reading a notebook at deploy time, and turning a run's extra into its parameters.

A deployed ``reports/daily.ipynb`` is the service ``daily``: its source is the notebook's JSON text, its
version the hash of that text and its class name ``NOTEBOOK_CLASS``. Nothing here imports Jupyter's
packages except the kernelspec check at deploy (``jupyter_client``), so the runner can read a notebook
cheaply; running one is ``nbsched.worker.notebook_run``.

Parameters follow papermill's convention: the run's extra (a JSON object) becomes one assignment per key,
in a code cell tagged ``injected-parameters`` placed right after the cell tagged ``parameters`` (at the
top when there is none); values are Python literals (``repr`` of the JSON value).
"""

from __future__ import annotations

import importlib.util
import json
import keyword
from pathlib import PurePath
from typing import Any

from ..errors import DeployError, InvalidInput

#: The class name a notebook service is stored with (no Python class is behind it).
NOTEBOOK_CLASS = "<notebook>"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def is_notebook_origin(origin: str) -> bool:
    """Whether a deploy unit came from a notebook file (by its name)."""
    return origin.lower().endswith(".ipynb")


def notebook_service_name(origin: str) -> str:
    """The service name of a notebook: its file's stem (``reports/daily.ipynb`` -> ``daily``)."""
    return PurePath(origin).stem


def read_notebook(source: str, origin: str) -> dict:
    """The notebook's JSON as a dict, refused with a one-line error when it is not an nbformat 4 notebook."""
    try:
        notebook = json.loads(source)
    except ValueError as exc:
        raise DeployError(
            f"Cannot deploy {origin}: it is not valid notebook JSON ({exc}). Save it again from Jupyter."
        ) from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise DeployError(f"Cannot deploy {origin}: it is JSON but not a notebook (no 'cells' list).")
    if notebook.get("nbformat") != 4:
        raise DeployError(
            f"Cannot deploy {origin}: nbformat {notebook.get('nbformat')!r} is not supported; "
            "save it with Jupyter (nbformat 4)."
        )
    if not isinstance(notebook.get("metadata", {}), dict):
        raise DeployError(f"Cannot deploy {origin}: its metadata is not a JSON object. Save it again from Jupyter.")
    for index, cell in enumerate(notebook["cells"]):
        if not isinstance(cell, dict) or not isinstance(cell.get("metadata", {}), dict):
            raise DeployError(
                f"Cannot deploy {origin}: cell {index + 1} is not a notebook cell (a JSON object with object "
                "metadata). Save it again from Jupyter."
            )
    return notebook


def kernel_name_of(notebook: dict, origin: str) -> str:
    """The kernelspec name in the notebook's metadata, refused when there is none."""
    spec = notebook.get("metadata", {}).get("kernelspec")
    name = spec.get("name") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not name:
        raise DeployError(
            f"Cannot deploy {origin}: its metadata names no kernel (metadata.kernelspec.name); "
            "open it in Jupyter, pick a kernel (e.g. python3) and save it."
        )
    return name


def check_kernel_known(name: str, origin: str) -> None:
    """Refuse a kernelspec this machine does not have (the runner's workers start the kernels)."""
    from jupyter_client.kernelspec import KernelSpecManager

    known = sorted(KernelSpecManager().find_kernel_specs())
    if name not in known:
        raise DeployError(
            f"Cannot deploy {origin}: no kernel named {name!r} is installed where the runner runs "
            f"(kernels: {', '.join(known) or 'none'}); install it or pick one of those in Jupyter."
        )


def parse_notebook(source: str, origin: str) -> dict[str, str]:
    """The services a notebook file defines ({stem: NOTEBOOK_CLASS}), after checking it can run."""
    name = notebook_service_name(origin)
    if not name or not name.isprintable():
        raise DeployError(f"Cannot deploy {origin!r}: its file name gives no usable service name.")
    notebook = read_notebook(source, origin)
    check_kernel_known(kernel_name_of(notebook, origin), origin)
    if wants_html(notebook) and importlib.util.find_spec("nbconvert") is None:
        raise DeployError(
            f"Cannot deploy {origin} with HTML output: nbconvert is not installed where the runner runs "
            "(pip install nbconvert), or deploy it without html."
        )
    return {name: NOTEBOOK_CLASS}


def wants_html(notebook: dict) -> bool:
    """Whether the notebook asks for an HTML rendering of each run (``"nbsched": {"html": true}`` in its metadata)."""
    options = notebook.get("metadata", {}).get("nbsched", {})
    return isinstance(options, dict) and options.get("html") is True


def parameter_lines(extra: Any) -> list[str]:
    """One ``name = literal`` line per parameter of a run's extra (a JSON object, or nothing)."""
    if extra is None or extra == "" or extra == {}:
        return []
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise InvalidInput(
                f'A notebook\'s extra must be a JSON object of parameters, e.g. {{"region": "eu"}}; '
                f"got text {extra[:60]!r}.",
                field="extra",
            ) from None
    if not isinstance(extra, dict):
        raise InvalidInput(
            f'A notebook\'s extra must be a JSON object of parameters, e.g. {{"region": "eu"}}; '
            f"got a {type(extra).__name__}.",
            field="extra",
        )
    lines = []
    for key, value in extra.items():
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            raise InvalidInput(
                f"Parameter {key!r} of the extra cannot be a Python variable name; "
                "use letters, digits and _ (e.g. 'run_date').",
                field="extra",
            )
        lines.append(f"{key} = {_literal(key, value)}")
    return lines


def _literal(key: str, value: Any) -> str:
    text = repr(value)
    if not isinstance(value, str | int | float | bool | list | dict | type(None)) or text in ("nan", "inf", "-inf"):
        raise InvalidInput(
            f"Parameter {key!r} = {text[:60]} cannot be written as a Python literal; use JSON values.",
            field="extra",
        )
    return text


def inject_parameters(notebook: dict, extra: Any) -> dict:
    """``notebook`` with the extra injected as a cell tagged ``injected-parameters`` (papermill's layout).

    A cell injected before (a notebook saved from an earlier run) is replaced. Without parameters the
    notebook is returned as it is.
    """
    lines = parameter_lines(extra)
    cells = [cell for cell in notebook["cells"] if INJECTED_TAG not in _tags(cell)]
    if lines:
        at = next((i + 1 for i, cell in enumerate(cells) if PARAMETERS_TAG in _tags(cell)), 0)
        injected = {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {"tags": [INJECTED_TAG]},
            "outputs": [],
            "source": "# Parameters\n" + "\n".join(lines) + "\n",
        }
        if notebook.get("nbformat_minor", 0) >= 5:
            injected["id"] = "injected-parameters"
        cells.insert(at, injected)
    return {**notebook, "cells": cells}


def _tags(cell: dict) -> list:
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []


def first_line(cell: dict) -> str:
    """The first non-empty line of a cell's source (for logs and errors), at most 80 characters."""
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= 80 else line[:77] + "..."
