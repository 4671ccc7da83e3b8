"""Runs read straight into Arrow, in a process of its own: ``python -m nbsched.store.arrow_reader``.

Reads ``{"path", "queries": [[sql, params], ...]}`` as JSON on stdin, runs the queries at once
(one connection and thread each), and writes their rows, one query's after another's, as an
Arrow IPC stream (typed as ``store.base.arrow_stream`` types them) on stdout. ADBC's SQLite
driver carries its own copy of the SQLite library; it runs here, not in the runner, whose
SQLite file locks a second copy in the same process would break.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

from .base import arrow_stream, typed_runs


def read(path: str, sql: str, params: list):
    """One query's rows as a table with the run columns' types (so that parts concatenate)."""
    import adbc_driver_sqlite.dbapi

    with adbc_driver_sqlite.dbapi.connect(path) as db, db.cursor() as cursor:
        # One batch for the whole result: the driver types each column from the rows of its first
        # batch, and a column NULL there (error, traceback) would get the wrong type.
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(1 << 30)})
        cursor.execute(sql, params)
        table = cursor.fetch_arrow_table()
    return typed_runs(table, encode=False)


def main() -> None:
    import pyarrow as pa

    request = json.loads(sys.stdin.buffer.read())
    path, queries = request["path"], request["queries"]
    with ThreadPoolExecutor(max_workers=len(queries)) as pool:
        parts = list(pool.map(lambda query: read(path, *query), queries))
    sys.stdout.buffer.write(arrow_stream(pa.concat_tables(parts)))


if __name__ == "__main__":
    main()
