"""Reading: history queries, one run's record and schedule previews, for the runner's socket."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import InvalidInput, RunNotFound, did_you_mean
from ..model.listing import check_paging
from ..model.runs import RUN_FIELDS, STATUSES
from ..model.timeparse import parse_datetime, parse_duration
from ..model.triggers import preview
from ..store import RunQuery, Store


@dataclass
class Reader:
    """Reads of one store; ``flush`` writes the engine's buffered results first, so a read sees them."""

    store: Store
    flush: Callable[[], object]
    default_tz: str = "UTC"

    def history(
        self,
        job=None,
        service=None,
        status=None,
        since=None,
        limit=None,
        now: datetime | None = None,
        job_uid=None,
        offset=0,
    ) -> dict:
        """Run history, newest first, as columns and rows (times as UTC ISO text)."""
        query = self.history_query(job, service, status, since, limit, now, job_uid, offset)
        with self.store.history() as history:
            return {"columns": list(RUN_FIELDS), "rows": history.rows(query)}

    def history_query(
        self, job=None, service=None, status=None, since=None, limit=None, now=None, job_uid=None, offset=0
    ) -> RunQuery:
        """Check history filters and write buffered results; return the query (as of ``now``) to read.

        ``job`` selects the runs of the job that has that name now, not those of a deleted job of the same
        name (``job_uid`` selects any job's runs, a deleted one's too); with no job of that name, the runs of
        the deleted jobs that had it."""
        if isinstance(status, str) and status not in STATUSES:  # not text: checked below with the other filters
            hint = did_you_mean(status, STATUSES)
            raise InvalidInput(f"Unknown status {status!r}.{hint} Use one of {', '.join(STATUSES)}.")
        self.flush()
        since_at = None
        if since not in (None, ""):
            try:
                since_at = now - parse_duration(since, "since")
            except InvalidInput:
                since_at = parse_datetime(since, self.default_tz, now, "since")
        limit, offset = check_paging(limit, offset)
        for what, value in (("job", job), ("job_uid", job_uid), ("service", service), ("status", status)):
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f"Invalid {what} filter {value!r}: use a name as text, e.g. {what}='sync'.")
        if job is not None and job_uid is None and (current := self.store.job(job)) is not None:
            job_uid = current.uid
        return RunQuery(job, job_uid, service, status, since_at, limit, offset, as_of=now)

    def run(self, run_id) -> dict:
        self.flush()
        record = self.store.run(_run_id(run_id))
        if record is None:
            raise RunNotFound(f"No run with id {run_id!r}.")
        return record

    def preview(
        self, now: datetime, cron=None, every=None, at=None, tz=None, count=5, after=None, start=None, name=None
    ) -> dict:
        """``triggers.preview`` for the socket: times in UTC, with the time zone they are read in."""
        tz = tz or self.default_tz
        args = dict(cron=cron, every=every, at=at, count=count, after=after, start=start, name=name)
        result = preview(now=now, tz=tz, **args)
        times = [moment.astimezone(UTC) for moment in result.times]
        return {"times": times, "description": result.description, "tz": tz}


def _run_id(value) -> int:
    try:
        run_id = int(value)
        if not 0 < run_id < 2**63:  # what SQLite can hold
            raise ValueError
        return run_id
    except (TypeError, ValueError, OverflowError):
        raise RunNotFound(f"Invalid run id {value!r}: run ids are whole numbers.") from None
