"""The runner's operations: one method per socket request (arguments in, a JSON-able result out).

``Runner`` reads a request, checks its token and its arguments against the method's signature
(``checked_args``), and calls ``op_<name>``; errors a user caused come back as error replies.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
from collections.abc import Iterator, KeysView
from typing import TYPE_CHECKING

from .. import config, protocol
from ..connections import masked_url
from ..errors import InvalidInput, WaitTimeout
from ..model.runs import RUN_FIELDS
from .counting import MinuteCounts, count_window
from .listing import job_page
from .livelogs import read_logs
from .ondemand import Turns
from .retention import purge_request

#: Seconds between looks at the record of a run that another runner of a shared store has, while waiting for it.
SHARED_WAIT_POLL_SECONDS = 0.05

if TYPE_CHECKING:
    from .server import Runner

#: History as JSON rows (any client), as an Arrow IPC stream (for a DataFrame of many runs), or as chunks of
#: JSON rows sent as they are read (``protocol.Stream``: a long listing, in flat memory on both sides).
HISTORY_FORMATS = ("json", "arrow", "chunks")
#: Histories of at most this many runs are read on the event loop (a millisecond or so: less than a thread's
#: hand-over and back), longer ones in a thread; so are all of a shared store's (a server that may be slow).
SHORT_HISTORY_ROWS = 200
#: Rows per chunk of a history sent in chunks.
CHUNK_ROWS = 5000
CHANNELS_FROM_CLIENTS = ("manual", "cli", "invoke")


class Operations:
    """The socket operations of one runner."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self._minute_counts: MinuteCounts | None = None
        self.invoke_turns = Turns(config.INVOKE_MANY_REST)

    @property
    def minute_counts(self) -> MinuteCounts:
        """The kept counts of runs per minute (made at the first ask: the store opens after the operations)."""
        if self._minute_counts is None:
            self._minute_counts = MinuteCounts(self.runner.store)
        return self._minute_counts

    async def op_ping(self) -> dict:
        return {
            "runner": self.runner.runner_id,
            "pid": os.getpid(),
            "version": protocol.VERSION,
            "started_at": self.runner.started_at,
            "store": masked_url(self.runner.settings.store_url),
            "home": str(self.runner.settings.home),
            "timezone": self.runner.settings.timezone,
            "jobs": len(self.runner.engine.jobs),
            "running": len(self.runner.engine.inflight.active),
            "workers": len(self.runner.pool.workers),
            "store_error": self.runner.engine.health.status(),  # None, or what fails: error, since, gone
        }

    async def op_deploy(self, units: list) -> dict:
        if not isinstance(units, list):
            raise InvalidInput("deploy needs 'units': a list of {'source': ..., 'origin': ...}.")
        return self.runner.engine.catalog.deploy(units, self.runner.clock())

    async def op_services(self) -> list:
        return self.runner.engine.catalog.service_records()

    async def op_schedule(self, **job) -> dict:
        record = self.runner.engine.control.add_job(job, self.runner.clock())
        self.runner.wake.set()
        return record

    async def op_update(self, name: str, changes: dict) -> dict:
        if not isinstance(changes, dict):
            raise InvalidInput("update needs 'changes': an object of job options, e.g. {'every': '10m'}.")
        record = self.runner.engine.control.update_job(name, changes, self.runner.clock())
        self.runner.wake.set()
        return record

    async def op_jobs(self, limit=None, offset=0, filter=None, sort="name") -> list:
        if limit is None and not offset and filter is None and sort == "name":
            return self.runner.engine.control.job_records()
        return job_page(self.runner.engine, limit, offset, filter, sort)["rows"]

    async def op_jobs_page(self, limit=50, offset=0, filter=None, sort="name") -> dict:
        """One page of the jobs a filter selects, sorted, and how many it selects (``listing.job_page``)."""
        return job_page(self.runner.engine, limit, offset, filter, sort)

    async def op_job(self, name: str) -> dict:
        return self.runner.engine.control.job_record(name, detail=True)

    async def op_execute(self, name: str, channel: str = "manual") -> dict:
        return {"run_id": self.runner.engine.ondemand.execute(name, _channel(channel), self.runner.clock())}

    async def op_invoke(self, service: str, extra=None, channel: str = "invoke") -> dict:
        return {"run_id": self.runner.engine.ondemand.invoke(service, extra, _channel(channel), self.runner.clock())}

    async def op_invoke_many(self, service: str, extras: list, channel: str = "invoke") -> dict:
        """One run of ``service`` per extra in ``extras``, recorded in one transaction: ``{"run_ids": [...]}``."""
        if not isinstance(extras, list):
            raise InvalidInput(
                f"invoke_many needs 'extras': a list with one extra per run, e.g. [{{'day': 1}}, {{'day': 2}}]; "
                f"got {type(extras).__name__}.",
                field="extras",
            )
        if len(extras) > config.MAX_INVOKE_RUNS:
            raise InvalidInput(
                f"invoke_many starts at most {config.MAX_INVOKE_RUNS:,} runs per request; got {len(extras):,} "
                "extras. Split them into lists of that size.",
                field="extras",
            )
        while (delay := self.invoke_turns.wait(time.perf_counter())) > 0:
            await asyncio.sleep(delay)
        began = time.perf_counter()
        try:
            ondemand = self.runner.engine.ondemand
            return {"run_ids": ondemand.invoke_many(service, extras, _channel(channel), self.runner.clock())}
        finally:
            self.invoke_turns.took(began, time.perf_counter())

    async def op_pause(self, name: str, note: str = "") -> dict:
        return self.runner.engine.control.pause(name, note, self.runner.clock())

    async def op_resume(self, name: str) -> dict:
        record = self.runner.engine.control.resume(name, self.runner.clock())
        self.runner.wake.set()
        return record

    async def op_delete(self, name: str) -> dict:
        return self.runner.engine.control.delete(name)

    async def op_backfill(self, name: str, start, end) -> dict:
        return self.runner.engine.ondemand.backfill(name, start, end, self.runner.clock())

    async def op_history(
        self, job=None, service=None, status=None, since=None, limit=None, format="json", job_uid=None, offset=0
    ):
        if format not in HISTORY_FORMATS:
            raise InvalidInput(f"Invalid history format {format!r}: use one of {', '.join(HISTORY_FORMATS)}.")
        reader = self.runner.engine.reader
        query = reader.history_query(job, service, status, since, limit, self.runner.clock(), job_uid, offset)
        if format == "chunks":
            return protocol.Stream(_history_chunks(self.runner.store, query), {"columns": list(RUN_FIELDS)})

        def read_and_encode() -> protocol.Encoded | protocol.Binary:
            # On its own connection, in a thread: a long history does not hold up firing.
            with self.runner.store.history() as history:
                if format == "arrow":
                    return protocol.Binary(history.arrow(query))
                rows = history.rows(query)
            return protocol.encode_result({"columns": list(RUN_FIELDS), "rows": rows})

        short = query.limit is not None and query.limit + query.offset <= SHORT_HISTORY_ROWS
        if short and not self.runner.store.shared:
            return read_and_encode()
        return await asyncio.get_running_loop().run_in_executor(None, read_and_encode)

    async def op_run_counts(self, minutes=60) -> dict:
        """Runs per minute and status over the last ``minutes`` (the History tab's chart), counted in the store."""
        start = count_window(self.runner.clock(), minutes)
        self.runner.engine.reader.flush()  # on the loop, as every write of results
        counts = self.minute_counts
        return await asyncio.get_running_loop().run_in_executor(None, counts.window, start, minutes)

    async def op_purge(self, job=None, before=None) -> dict:
        """Delete finished runs (of ``job``; finished before ``before``) and their files, in steps, in a thread."""
        runner = self.runner
        jobs = sorted(runner.engine.jobs)
        purge = purge_request(job, before, runner.clock(), runner.settings.timezone, jobs, runner.store)
        runner.engine.results.flush()  # results still buffered count as finished
        removed = await asyncio.get_running_loop().run_in_executor(None, runner.retention.purge, [purge])
        return {"removed": removed, "job": purge.job, "before": purge.before}

    async def op_run(self, run_id) -> dict:
        return self.runner.engine.reader.run(run_id)

    async def op_wait(self, run_id, timeout: float = 30.0) -> dict:
        record = self.runner.engine.reader.run(run_id)  # raises RunNotFound early
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout < 10**9:
            raise InvalidInput(f"Invalid timeout {timeout!r}: use seconds to wait, 0 or more, e.g. 30.")
        run_id = int(run_id)
        try:
            if not self.runner.engine.is_finished(run_id):
                future = asyncio.get_running_loop().create_future()
                self.runner.waiters.setdefault(run_id, []).append(future)
                await asyncio.wait_for(future, timeout=float(timeout))
            elif self.runner.store.shared and record["status"] == "running":
                await asyncio.wait_for(self._finished_elsewhere(run_id), timeout=float(timeout))
        except TimeoutError:
            raise WaitTimeout(f"Run {run_id} did not finish within {float(timeout):g}s; it is still running.") from None
        return self.runner.engine.reader.run(run_id)

    async def op_logs(self, run_id, after: int = 0, wait: float = 0.0) -> dict:
        """A run's log lines after the first ``after``: live while it runs here (waiting up to ``wait`` seconds for
        some), its stored logs once it has ended (``done``); see ``livelogs``."""
        loop = asyncio.get_running_loop()
        runner = self.runner
        return await read_logs(runner.live_logs, runner.engine.reader, run_id, after, wait, loop.time, runner.runner_id)

    async def _finished_elsewhere(self, run_id: int) -> None:
        """Wait for a run another runner of a shared store has: its record says when it ends."""
        while self.runner.engine.reader.run(run_id)["status"] == "running":
            await asyncio.sleep(SHARED_WAIT_POLL_SECONDS)

    async def op_preview(self, **args) -> dict:
        return self.runner.engine.reader.preview(self.runner.clock(), **args)

    async def op_connection_save(self, name: str, kind: str, definition: dict) -> dict:
        if not isinstance(definition, dict):
            raise InvalidInput("connection_save needs 'definition': an object of settings, e.g. {'address': ...}.")
        return self.runner.engine.catalog.save_connection(name, kind, definition, self.runner.clock())

    async def op_connections(self) -> list:
        return self.runner.engine.catalog.connection_records()

    async def op_connection_delete(self, name: str) -> dict:
        return self.runner.engine.catalog.delete_connection(name)

    async def op_connection_test(self, name: str) -> dict:
        from ..connections import check

        record = self.runner.engine.catalog.connection(name)
        return await asyncio.to_thread(check, name, record["kind"], record["definition"])

    async def op_shutdown(self) -> dict:
        asyncio.get_running_loop().call_soon(self.runner.request_stop)
        return {"stopping": self.runner.runner_id}


def _history_chunks(store, query) -> Iterator[bytes]:
    """The rows ``query`` selects as JSON arrays of ``CHUNK_ROWS`` rows, each encoded as it is read."""
    with store.history() as history:
        for rows in history.row_chunks(query, CHUNK_ROWS):
            yield protocol.dumps_reply(rows)


def _channel(value: str) -> str:
    if value not in CHANNELS_FROM_CLIENTS:
        raise InvalidInput(f"Invalid channel {value!r}: use one of {', '.join(CHANNELS_FROM_CLIENTS)}.")
    return value


def checked_args(args: dict, handler) -> dict:
    """``args`` if ``handler`` takes them: unknown and missing arguments are refused by name."""
    names, required, takes_any = _signature(getattr(handler, "__func__", handler))
    if not takes_any and not names >= args.keys():
        unknown = [key for key in args if key not in names]
        expected = ", ".join(names) or "none"
        raise InvalidInput(f"Unknown argument(s) {', '.join(map(repr, unknown))}; expected {expected}.")
    missing = [name for name in required if name not in args]
    if missing:
        raise InvalidInput(f"Missing argument(s): {', '.join(missing)}.")
    return args


@functools.cache
def _signature(function) -> tuple[KeysView[str], tuple[str, ...], bool]:
    """A handler's argument names (in order), those without a default, and whether it takes ``**kwargs``:
    read once per handler, not per request (``inspect.signature`` costs more than the rest of an invoke)."""
    parameters = dict(inspect.signature(function).parameters)
    parameters.pop("self", None)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    names = {name: None for name, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    required = tuple(name for name, p in parameters.items() if p.default is inspect.Parameter.empty and name in names)
    return names.keys(), required, takes_any
