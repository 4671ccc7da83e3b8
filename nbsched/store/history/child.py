"""The child process that reads a SQLite store's runs straight into Arrow: ``python -m nbsched.store.history.child``.

Reads ``{"path", "queries": [[sql, params], ...], "file"}`` as JSON on stdin, runs the queries at
once (one connection and thread each), and writes their rows, one query's after another's, as an
Arrow IPC stream (typed as ``arrow.arrow_stream`` types them) on stdout, or, given ``file``,
as an Arrow IPC file there (typed as ``arrow.typed_runs`` types them, for ``cache``), sealed
(``cache.seal``: checked, its sums beside it); given ``merge`` instead of ``queries`` (cache
files, oldest first), it writes them as one file at ``file`` (``cache.merge``). So the runner,
which keeps the cache up to date, never loads pyarrow for it.
``"nice": true`` lowers its CPU priority (a cache refresh no one waits for). ADBC's SQLite
driver carries its own copy of the SQLite library; it runs here, not in the runner, whose
SQLite file locks a second copy in the same process would break.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .arrow import arrow_stream, typed_runs
from .cache import merge, seal, write_file


def read(path: str, sql: str, params: list):
    """One query's rows as a table with the run columns' types (so that parts concatenate)."""
    import adbc_driver_sqlite.dbapi

    with adbc_driver_sqlite.dbapi.connect(path) as db, db.cursor() as cursor:
        # Wait, as the store's connections do, while another connection holds a lock for a moment
        # (two of these opening a WAL file that no connection has open, say).
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.fetchall()
        # One batch for the whole result: the driver types each column from the rows of its first
        # batch, and a column NULL there (error, traceback) would get the wrong type.
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(1 << 30)})
        cursor.execute(sql, params)
        table = cursor.fetch_arrow_table()
    return typed_runs(table, encode=False)


def main() -> None:
    import pyarrow as pa

    request = json.loads(sys.stdin.buffer.read())
    if request.get("nice"):
        os.nice(10)
    if request.get("merge"):
        merge(request["merge"], Path(request["file"]))
        return
    path, queries = request["path"], request["queries"]
    with ThreadPoolExecutor(max_workers=len(queries)) as pool:
        table = pa.concat_tables(pool.map(lambda query: read(path, *query), queries))
    if request.get("file"):
        write_file(table, Path(request["file"]))
        seal(Path(request["file"]))
    else:
        sys.stdout.buffer.write(arrow_stream(table))


if __name__ == "__main__":
    main()
