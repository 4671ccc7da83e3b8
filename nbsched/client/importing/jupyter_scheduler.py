"""jupyter-scheduler's job definitions as nbsched notebook jobs, read from its SQLite database (no jupyter-scheduler).

Its database (``~/.local/share/jupyter/scheduler.sqlite`` by default) has a table ``job_definitions`` (the
``JobDefinition`` model of ``jupyter_scheduler/orm.py``): ``job_definition_id``, ``name``, ``input_filename``,
``schedule`` (a cron line), ``timezone`` (IANA; none: UTC), ``parameters`` (JSON), ``active``, ... When a
definition is created, jupyter-scheduler copies its notebook to ``<staging>/<job_definition_id>/<input_filename>``
(staging: ``scheduler_staging_area`` beside the database) and runs that copy; so does the import, falling back to
``<root_dir>/<input_filename>`` (the Jupyter server's root) when no copy is there.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ...errors import ImportSourceError
from .plan import ImportEntry, ImportResult, Refusal, check_extra, check_schedule, job_name

#: Where jupyter-scheduler keeps its database unless configured otherwise (``jupyter_data_dir()``).
DEFAULT_DB = "~/.local/share/jupyter/scheduler.sqlite"
#: The columns the import reads; a ``job_definitions`` table without one of them is not jupyter-scheduler's.
COLUMNS = ("job_definition_id", "name", "input_filename", "schedule", "timezone", "parameters", "active")
#: Optional columns, read when the table has them (older or newer versions of jupyter-scheduler).
OPTIONAL = ("create_time", "runtime_environment_name")


def read_definitions(db: Path) -> list[dict]:
    """The rows of ``job_definitions`` in the SQLite database ``db`` (read-only), oldest first."""
    if not db.is_file():
        raise ImportSourceError(
            f"No jupyter-scheduler database at {db}: give the path of its scheduler.sqlite (by default {DEFAULT_DB})."
        )
    try:
        connection = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)  # any path: ?, #, % quoted
    except sqlite3.Error as exc:
        raise ImportSourceError(f"Cannot open {db} as a jupyter-scheduler database: {exc}.") from None
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(job_definitions)")}
        if not columns:
            raise ImportSourceError(
                f"{db} has no job_definitions table: it is not a jupyter-scheduler database (by default {DEFAULT_DB})."
            )
        missing = [column for column in COLUMNS if column not in columns]
        if missing:
            raise ImportSourceError(
                f"{db}: table job_definitions has no column {', '.join(missing)}; "
                "it is not from a jupyter-scheduler version this import knows (1.x, 2.x)."
            )
        wanted = [*COLUMNS, *(column for column in OPTIONAL if column in columns)]
        order = "create_time, " if "create_time" in columns else ""
        query = f"SELECT {', '.join(wanted)} FROM job_definitions ORDER BY {order}job_definition_id"
        return [dict(zip(wanted, row, strict=True)) for row in connection.execute(query)]
    except sqlite3.Error as exc:
        raise ImportSourceError(f"Cannot read {db} as a jupyter-scheduler database: {exc}.") from None
    finally:
        connection.close()


def plan_definitions(
    rows: list[dict], staging: Path, root_dir: Path | None, taken: set[str] | None = None
) -> tuple[list[ImportEntry], ImportResult]:
    """The notebook jobs the definitions translate to, and a result holding those refused (nothing created)."""
    result, entries, names = ImportResult(), [], set(taken or ())
    for row in rows:
        where = f"job definition {row['name'] or row['input_filename']!r} ({row['job_definition_id']})"
        text = f"{row['schedule'] or '(no schedule)'} {row['input_filename']}"
        try:
            entries.append(_entry(row, where, text, staging, root_dir, names))
        except (ValueError, TypeError, AttributeError) as exc:  # TypeError, AttributeError: a field of another type
            result.refused.append(Refusal(where, text, str(exc)))
    return entries, result


def _entry(row: dict, where: str, text: str, staging: Path, root_dir: Path | None, names: set[str]) -> ImportEntry:
    schedule = (row["schedule"] or "").strip()
    if not schedule:
        raise ValueError("it has no schedule (it runs on demand): deploy its notebook and use nbsched invoke")
    notebook = _notebook(row, staging, root_dir)
    parameters = _parameters(row["parameters"])
    name = job_name(row["name"] or notebook.stem, names)
    tz = row["timezone"] or None
    problem = check_schedule(schedule, tz, name) or check_extra(parameters)
    if problem:
        names.discard(name)
        raise ValueError(problem)
    notes = ()
    if notebook.stem != name:
        notes = (f"the job is {name}; its notebook's service is {notebook.stem}",)
    active = row["active"] is None or bool(row["active"])  # the model's default is active
    return ImportEntry(where, text, name, str(notebook), schedule, tz, parameters, active, notes=notes)


def _notebook(row: dict, staging: Path, root_dir: Path | None) -> Path:
    """The staged copy jupyter-scheduler runs, or the notebook under the server's root."""
    filename = row["input_filename"] or ""
    if not filename.endswith(".ipynb"):
        raise ValueError(f"its input {filename!r} is not a notebook (.ipynb)")
    candidates = [staging / str(row["job_definition_id"]) / filename]
    if root_dir is not None:
        candidates.append(root_dir / filename)
    for path in candidates:
        if path.is_file():
            return path
    raise ValueError(f"its notebook is not at {' nor '.join(map(str, candidates))}; give --root-dir (or --staging)")


def _parameters(value) -> dict | None:
    """The definition's parameters (JSON text of a mapping, or null)."""
    if value in (None, "", "null"):
        return None
    try:
        parameters = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise ValueError(f"its parameters are not JSON: {str(value)[:80]!r}") from None
    if not isinstance(parameters, dict):
        raise ValueError(f"its parameters are not a mapping of names to values: {str(value)[:80]!r}")
    return parameters or None
