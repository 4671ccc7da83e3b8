"""The child process that reads a SQLite store's runs straight into Arrow: ``python -m nbsched.store.history.child``.

Reads ``{"path", "queries": [[sql, params], ...], "file"}`` as JSON on stdin, runs the queries on
``READERS`` threads (one for a refresh), each query a read of its own (a short snapshot: see below), and
writes their rows, one query's after another's, as an Arrow IPC stream (typed as ``arrow.arrow_stream``
types them) on stdout, or, given ``file``, as an Arrow IPC file there (typed as ``arrow.typed_runs`` types
them, for ``cache``), sealed (``cache.seal``: checked, its sums beside it); given ``merge`` instead of
``queries`` (cache files, oldest first), it writes them as one file at ``file`` (``cache.merge``), so the
runner, which keeps the cache up to date, never loads pyarrow for it. ``"nice": true`` (a cache refresh no
one waits for) lowers its CPU priority and pauses after each query as long as it took.

A read holds a snapshot of the store, and while any snapshot is held, no checkpoint can reset the store's
write-ahead log: under a sustained load of writes, one read of minutes grew the log by gigabytes. So the
runs come in queries of a bounded span of ids (``sqlite.CHILD_QUERY_IDS``), each over before the next
begins, and a refresh leaves the log moments with no reader, in which the runner's checkpoints reset it.

ADBC's SQLite driver carries its own copy of the SQLite library; it runs here, not in the runner, whose
SQLite file locks a second copy in the same process would break.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...nopandas import NoPandas
from .arrow import arrow_stream, typed_runs
from .cache import merge, seal, write_file

#: Threads (each with its own connection) that read the queries; a refresh reads on one, so that its pauses
#: leave the log without a reader.
READERS = 2


def read(path: str, sql: str, params: list, pause: bool = False):
    """One query's rows as a table with the run columns' types (so that parts concatenate); ``pause``: then
    sleep as long as the query took, holding no snapshot."""
    import adbc_driver_sqlite.dbapi

    began = time.monotonic()
    # Autocommit: the snapshot ends with the query, not with the connection.
    with adbc_driver_sqlite.dbapi.connect(path, autocommit=True) as db, db.cursor() as cursor:
        # Wait, as the store's connections do, while another connection holds a lock for a moment
        # (two of these opening a WAL file that no connection has open, say).
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.fetchall()
        # One batch for the whole result: the driver types each column from the rows of its first
        # batch, and a column NULL there (error, traceback) would get the wrong type.
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(1 << 30)})
        cursor.execute(sql, params)
        table = cursor.fetch_arrow_table()
    if pause:
        time.sleep(time.monotonic() - began)
    return typed_runs(table)


def main() -> None:
    sys.meta_path.insert(0, NoPandas)  # ADBC's DB-API imports pyarrow.dataset, which would import pandas
    import pyarrow as pa

    request = json.loads(sys.stdin.buffer.read())
    if request.get("nice"):
        os.nice(10)
    if request.get("merge"):
        merge(request["merge"], Path(request["file"]))
        return
    path, queries, pause = request["path"], request["queries"], bool(request.get("nice"))
    with ThreadPoolExecutor(max_workers=min(1 if pause else READERS, len(queries))) as pool:
        table = pa.concat_tables(pool.map(lambda query: read(path, *query, pause=pause), queries))
    if request.get("file"):
        write_file(table, Path(request["file"]))
        seal(Path(request["file"]))
    else:
        sys.stdout.buffer.write(arrow_stream(table))


if __name__ == "__main__":
    main()
