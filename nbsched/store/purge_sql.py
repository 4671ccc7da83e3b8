"""The SQL of ``Store.delete_runs``, written once for SQLite and PostgreSQL (their parameter marks differ)."""

from __future__ import annotations

from collections.abc import Callable

from .base import Purge


def purge_where(purge: Purge, mark: str, time: Callable) -> tuple[str, list]:
    """The conditions (joined by AND) of the finished runs ``purge`` selects, before its ``keep``, and their
    parameters; ``mark`` is the driver's parameter mark, ``time`` turns a datetime into what it binds."""
    clauses, params = ["status <> 'running'"], []
    for column in ("job", "job_uid"):
        if getattr(purge, column) is not None:
            clauses.append(f"{column} = {mark}")
            params.append(getattr(purge, column))
    if purge.before is not None:
        clauses.append(f"COALESCE(finished_at, scheduled_at) < {mark}")
        params.append(time(purge.before))
    return " AND ".join(clauses), params


def newest_kept(purge: Purge, mark: str, time: Callable) -> tuple[str, list]:
    """The query of the oldest run ``purge.keep`` keeps (the ``keep``-th newest the filters select)."""
    where, params = purge_where(purge, mark, time)
    return f"SELECT run_id FROM runs WHERE {where} ORDER BY run_id DESC LIMIT 1 OFFSET {mark}", [
        *params,
        purge.keep - 1,
    ]


def oldest_selected(purge: Purge, mark: str, time: Callable, below: int | None, limit: int) -> tuple[str, list]:
    """The query of the ids of up to ``limit`` runs ``purge`` selects, oldest first (``below``: ids under it only)."""
    where, params = purge_where(purge, mark, time)
    if below is not None:
        where += f" AND run_id < {mark}"
        params.append(below)
    return f"SELECT run_id FROM runs WHERE {where} ORDER BY run_id LIMIT {mark}", [*params, limit]
