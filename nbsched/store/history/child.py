"""The child process that reads a SQLite store's runs straight into Arrow: ``python -m nbsched.store.history.child``.

Reads ``{"path", "queries": [[sql, params], ...], "rows", "file"}`` as JSON on stdin (``rows``: the most
rows a query selects), runs the queries on ``READERS`` threads (one for a refresh), each query a read of its
own (a short snapshot: see below), and writes their rows, one query's after another's, each as soon as it is
read, as an Arrow IPC stream (typed as ``arrow.arrow_stream`` types them) on stdout, or, given ``file``, as an
Arrow IPC file there (typed as ``arrow.typed_runs`` types them, for ``cache``), sealed (``cache.seal``:
checked, its sums beside it); given ``merge`` instead of ``queries`` (cache files, oldest first), it writes
them as one file at ``file`` (``cache.merge``), so the runner, which keeps the cache up to date, never loads
pyarrow for it. ``"nice": true`` (a cache refresh no one waits for) lowers its CPU priority and pauses after
each query as long as it took.

A read holds a snapshot of the store, and while any snapshot is held, no checkpoint can reset the store's
write-ahead log: under a sustained load of writes, one read of minutes grew the log by gigabytes. So the
runs come in queries of a bounded span of ids (``sqlite.CHILD_QUERY_IDS``; ``REFRESH_QUERY_IDS`` for a
refresh), each over before the next begins, and a refresh leaves the log moments with no reader, in which the
runner's checkpoints reset it.

ADBC's SQLite driver carries its own copy of the SQLite library; it runs here, not in the runner, whose
SQLite file locks a second copy in the same process would break.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...nopandas import NoNumpy, NoPandas
from .arrow import typed_runs, write_stream
from .cache import merge, seal, write_file

#: Threads (each with its own connection) that read the queries; a refresh reads on one, so that its pauses
#: leave the log without a reader.
READERS = 2
#: The most bytes of the store file SQLite maps into this process to read it (capped by SQLite's build: 2 GiB
#: for ADBC's): its pages are read in place, not copied in by a system call each (6% of a long read's CPU).
MAP_BYTES = 1 << 31


class Reader:
    """A connection of ADBC's SQLite driver for one thread's queries. Autocommit: each query's snapshot ends with
    the query, not with the connection, so that one connection serves all the queries of a thread (a new one
    reads the schema again)."""

    def __init__(self, path: str):
        import adbc_driver_sqlite.dbapi

        self.db = adbc_driver_sqlite.dbapi.connect(path, autocommit=True)
        with self.db.cursor() as cursor:
            # Wait, as the store's connections do, while another connection holds a lock for a moment
            # (two of these opening a WAL file that no connection has open, say).
            for pragma in ("PRAGMA busy_timeout = 30000", f"PRAGMA mmap_size = {MAP_BYTES}"):
                cursor.execute(pragma)
                cursor.fetchall()

    def read(self, sql: str, params: list, rows: int, pause: bool = False):
        """One query's rows (at most ``rows``) as a table with the run columns' types (so that parts
        concatenate); ``pause``: then sleep as long as the query took, holding no snapshot."""
        began = time.monotonic()
        with self.db.cursor() as cursor:
            # One batch for the whole result: the driver types each column from the rows of its first batch,
            # and a column NULL there (error, traceback) would get the wrong type. Sized to the query's rows,
            # not to the most any query could have: the driver reserves room for that many values of each
            # column at once.
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(max(rows, 1))})
            cursor.execute(sql, params)
            table = cursor.fetch_arrow_table()
        if pause:
            time.sleep(time.monotonic() - began)
        return typed_runs(table)

    def close(self) -> None:
        self.db.close()


def read_all(path: str, queries: list, rows: int, readers: int, pause: bool = False) -> Iterator:
    """Each query's table, in the order of ``queries``, as it is read: ``readers`` threads read them, each
    query on one of ``readers`` connections."""
    readers = max(1, min(readers, len(queries)))
    idle: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(readers):
        idle.put(Reader(path))

    def one(query: list):
        reader = idle.get()
        try:
            return reader.read(*query, rows, pause=pause)
        finally:
            idle.put(reader)

    try:
        with ThreadPoolExecutor(max_workers=readers) as pool:
            yield from pool.map(one, queries)
    finally:
        for _ in range(readers):
            idle.get().close()


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    # ADBC's DB-API imports pyarrow.dataset, which would import pandas. Putting changed runs in place in a file
    # being merged (``changed.patched``) finds their places with numpy; a read does without it.
    sys.meta_path.insert(0, NoPandas if request.get("merge") else NoNumpy)
    import pyarrow as pa

    if request.get("nice"):
        os.nice(10)
    if request.get("merge"):
        merge(request["merge"], Path(request["file"]))
        return
    pause = bool(request.get("nice"))
    tables = read_all(request["path"], request["queries"], request["rows"], 1 if pause else READERS, pause)
    if request.get("file"):
        write_file(pa.concat_tables(tables), Path(request["file"]))
        seal(Path(request["file"]))
    else:  # each query's rows written as they come, while the next are read
        write_stream(sys.stdout.buffer, tables)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # the tables are not freed one by one (a tenth of a second for a million runs): the process ends
