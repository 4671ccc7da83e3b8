"""Running a notebook service in the worker: a copy of the notebook, its parameters injected, executed
cell by cell in a fresh kernel (nbclient), saved per run under ``NBSCHED_HOME/outputs/<job>/<run_id>.ipynb``.

The saved path is the run's output. The run's logs get a line per code cell as it starts
(``cell 3/7: <first line>``) and what the cell printed. A failing cell raises ``CellError`` (the run's
status ``error``; its message names the cell's number, first line and exception); the copy is saved
with the outputs up to that cell. With ``"nbsched": {"html": true}`` in the notebook's metadata an HTML
rendering is saved beside the copy.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import Any

from .. import config
from ..errors import InvalidInput
from ..service import Service
from .kernels import KERNELS, connect
from .notebook import first_line, inject_parameters, kernel_name_of, read_notebook, wants_html

log = logging.getLogger("nbsched.notebook")
#: Characters of a cell's printed output copied into the run's logs, per cell.
CELL_LOG_CHARS = 2000
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class CellError(Exception):
    """A cell of a notebook run raised; ``run_traceback`` is the kernel's traceback as text, ``run_output``
    the path of the executed copy (saved up to the failing cell)."""

    def __init__(self, message: str, run_traceback: str, output: Path):
        super().__init__(message)
        self.run_traceback = run_traceback
        self.run_output = str(output)


def notebook_service_class(name: str, origin: str, source: str) -> type[Service]:
    """A ``Service`` class whose ``handle()`` runs the notebook ``source`` (deployed from ``origin``).

    Building it is cheap (the notebook's JSON is read for its kernel); nbformat reads it at the first run.
    """
    kernel = kernel_name_of(read_notebook(source, origin), origin)
    cwd = _working_directory(origin)
    parsed: list = []

    class NotebookService(Service):
        """Runs a deployed notebook; its output is the path of the executed copy."""

        def handle(self) -> None:
            if not parsed:
                import nbformat

                parsed.append(nbformat.reads(source, as_version=4))  # cell sources joined, older formats upgraded
            self.response.payload = run_notebook(self, parsed[0], kernel, cwd)

        @classmethod
        def _nbsched_ahead(cls) -> None:
            """A run of this notebook is coming (a job scheduled, a fire handed over early): boot a kernel for it."""
            KERNELS.top_up(kernel, cwd, asked=True)

        @classmethod
        def _nbsched_kind(cls) -> tuple[str, str]:
            """The kernel and folder its runs start kernels of (what its spares are kept by)."""
            return kernel, cwd

    NotebookService.name = name
    NotebookService.__qualname__ = NotebookService.__name__ = f"Notebook[{name}]"
    return NotebookService


def _working_directory(origin: str) -> str:
    """Where the kernel starts: the notebook's folder when it exists here, else NBSCHED_HOME."""
    folder = Path(origin).parent
    return str(folder) if folder.is_absolute() and folder.is_dir() else str(config.settings().home)


def run_notebook(service: Service, notebook: dict, kernel: str, cwd: str) -> str:
    """Execute a copy of ``notebook`` with the run's parameters; return the saved copy's path."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    message = service._context.message
    try:
        copy = nbformat.from_dict(inject_parameters(notebook, service.request.payload))
    except InvalidInput as exc:
        exc.run_traceback = f"{type(exc).__name__}: {exc}"  # the user's input, not a bug: no worker traceback
        raise
    path = output_path(message.job[0] if message.job else service.name, message.run_id)
    manager = KERNELS.take(kernel, cwd)
    client = NotebookClient(copy, km=manager, kernel_name=kernel, timeout=None, resources={"metadata": {"path": cwd}})
    cells = copy.cells
    unsaved = None
    try:
        client.kc = connect(manager)
        with client.setup_kernel():
            for index, cell in enumerate(cells):
                if cell.cell_type != "code":
                    continue
                where = f"cell {index + 1} ({first_line(cell)})"
                log.info("cell %d/%d: %s", index + 1, len(cells), first_line(cell))
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as exc:
                    raise CellError(
                        f"{where} raised {exc.ename}: {exc.evalue}", _ANSI.sub("", str(exc)), path
                    ) from None
                except DeadKernelError as exc:
                    raise CellError(f"{where}: the kernel died ({exc})", "", path) from None
                finally:
                    _log_printed(cell)
    finally:
        if client.kc is not None:
            with contextlib.suppress(Exception):
                client.kc.stop_channels()
        KERNELS.discard(manager)
        unsaved = _save_or_say_why(copy, path, notebook)
        KERNELS.top_up(kernel, cwd)
    if unsaved is not None:  # it ran to its end, but its output, the executed copy, is not there
        raise OSError(f"The notebook ran, but its executed copy could not be saved to {path}: {unsaved}")
    return str(path)


def output_path(job: str, run_id: int) -> Path:
    """``NBSCHED_HOME/outputs/<job>/<run_id>.ipynb`` (characters a file name cannot hold become ``_``)."""
    folder = re.sub(r"[^\w.\-]", "_", job).lstrip(".") or "_"
    return config.settings().home / "outputs" / folder / f"{run_id}.ipynb"


def _save_or_say_why(copy: Any, path: Path, notebook: dict) -> str | None:
    """Save the executed copy; None, or why it could not be saved (logged: a failing cell's error stays the run's)."""
    try:
        _save(copy, path, notebook)
    except Exception as exc:  # disk full, a folder that cannot be made, nbconvert failing
        log.error("saving the executed notebook to %s failed: %s", path, exc)
        return f"{type(exc).__name__}: {exc}"
    return None


def _save(copy: Any, path: Path, notebook: dict) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(copy, str(path))
    log.info("executed notebook saved to %s", path)
    if wants_html(notebook):
        from nbconvert import HTMLExporter

        html, _ = HTMLExporter().from_notebook_node(copy)
        path.with_suffix(".html").write_text(html, encoding="utf-8")
        log.info("HTML saved to %s", path.with_suffix(".html"))


def _log_printed(cell: Any) -> None:
    """Copy what a cell printed (stdout, stderr) into the run's logs, up to ``CELL_LOG_CHARS``."""
    text = "".join(output.get("text", "") for output in cell.get("outputs", []) if output.output_type == "stream")
    if text.strip():
        log.info("%s", text.rstrip()[:CELL_LOG_CHARS])
