"""Listings that page: the jobs a front end shows one page of, filtered and sorted in the runner.

A page is chosen from the engine's jobs (held in memory) on cheap fields first, and only the jobs of
the page become records, so a page of 50 costs about the same with 10 jobs or 10,000. What a filter
and a sort may say is ``model.listing``'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..model.listing import JobFilter, check_paging, check_sort

if TYPE_CHECKING:
    from ..store import StoredJob
    from .engine import Engine

_LAST = (1, datetime.max.isoformat())  # what sorts after every time


def job_page(engine: Engine, limit=None, offset=0, filter=None, sort="name") -> dict:
    """``{"total": jobs the filter selects, "offset": offset, "rows": the records of the page}``."""
    limit, offset = check_paging(limit, offset)
    chosen = JobFilter.from_wire(filter)
    key, descending = check_sort(sort)
    stats = engine.stats
    jobs = [
        job
        for job in engine.jobs.values()
        if chosen.selects(job.spec, job.state, getattr(stats.get(job.uid), "last_status", None))
    ]
    jobs.sort(key=_sort_key(key, stats), reverse=descending)
    if descending and key != "name":  # the jobs without a time stay last
        jobs.sort(key=lambda job: _sort_key(key, stats)(job)[0])
    end = None if limit is None else offset + limit
    control = engine.control
    return {
        "total": len(jobs),
        "offset": offset,
        "rows": [control.job_record(job.spec.name) for job in jobs[offset:end]],
    }


def _sort_key(key: str, stats: dict):
    if key == "name":
        return lambda job: job.spec.name

    def moment(job: StoredJob) -> tuple:
        if key == "next_run":
            value = job.state.next_fire if job.spec.active else None
        else:
            value = getattr(stats.get(job.uid), "last_run", None)
        return _LAST if value is None else (0, value.isoformat(), job.spec.name)

    return moment
