"""Copying one store into another (``nbsched store copy SRC_URL DST_URL``), e.g. a SQLite home into PostgreSQL.

Services (with their sources), jobs (uid, spec and firing state), runs (with their run ids: the destination's
later runs get higher ones), pending retries and connections. The destination must hold no jobs and no runs.
A run keeps its job's uid (``job_uid``), part of the key that makes a run of a claimed fire the one run of its fire.
The command line runs it in a process of its own, ``python -m nbsched.store copy SRC_URL DST_URL``
(``nbsched/store/__main__.py``), as front ends import no store.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInput
from ..model.runs import RUN_FIELDS
from ..model.timeparse import from_iso
from .base import RunQuery, Store

#: Runs are written in batches of this many.
BATCH_RUNS = 5_000


@dataclass
class Copied:
    """How many of each thing a copy wrote."""

    services: int = 0
    jobs: int = 0
    runs: int = 0
    retries: int = 0
    connections: int = 0

    def __str__(self) -> str:
        return (
            f"{self.services} service(s), {self.jobs} job(s), {self.runs} run(s), "
            f"{self.retries} pending retry(ies), {self.connections} connection(s)"
        )


def copy_store(source: Store, destination: Store) -> Copied:
    """Copy everything ``source`` holds into ``destination``, which must hold no jobs and no runs."""
    if destination.jobs() or destination.runs(RunQuery(limit=1)):
        raise InvalidInput(
            "The destination store already holds jobs or runs; nbsched store copy writes only into a new, empty "
            "store. Give another database or ?schema=NAME, or empty this one first."
        )
    copied = Copied()
    copied.services = _copy_services(source, destination)
    jobs = source.jobs()
    for job in jobs:
        destination.add_job(job)
    copied.jobs = len(jobs)
    copied.runs = _copy_runs(source, destination)
    retries = source.pending_retries()
    if retries:
        destination.update_runs([], retries)
    copied.retries = len(retries)
    connections = source.connections()
    for connection in connections:
        destination.save_connection(
            connection["name"], connection["kind"], connection["definition"], connection["updated_at"]
        )
    copied.connections = len(connections)
    return copied


def _copy_services(source: Store, destination: Store) -> int:
    services = source.services()
    texts = source.sources(sorted({service["version"] for service in services}))
    for service in services:
        destination.save_source(
            service["version"],
            service["origin"],
            texts[service["version"]],
            {service["name"]: service["class_name"]},
            from_iso(service["deployed_at"]),
        )
    return len(services)


def _copy_runs(source: Store, destination: Store) -> int:
    """Every run, oldest first, with its id and its job's uid."""
    rows = source.runs()
    rows.reverse()
    for start in range(0, len(rows), BATCH_RUNS):
        runs = [dict(zip(RUN_FIELDS, row, strict=True)) for row in rows[start : start + BATCH_RUNS]]
        destination.load_runs(runs)
    return len(rows)
