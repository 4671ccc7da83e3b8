"""Runs read straight into Arrow, in a process of its own: ``python -m nbsched.store.arrow_reader``.

Reads ``{"path", "sql", "params"}`` as JSON on stdin and writes the rows as an Arrow IPC stream
(typed as ``store.base.arrow_stream`` types them) on stdout. ADBC's SQLite driver carries its own
copy of the SQLite library; it runs here, not in the runner, whose SQLite file locks a second
copy in the same process would break.
"""

from __future__ import annotations

import json
import sys

from .base import arrow_stream


def main() -> None:
    import adbc_driver_sqlite.dbapi

    request = json.loads(sys.stdin.buffer.read())
    with adbc_driver_sqlite.dbapi.connect(request["path"]) as db, db.cursor() as cursor:
        # One batch for the whole result: the driver types each column from the rows of its first
        # batch, and a column NULL there (error, traceback) would get the wrong type.
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(1 << 30)})
        cursor.execute(request["sql"], request["params"])
        table = cursor.fetch_arrow_table()
    sys.stdout.buffer.write(arrow_stream(table))


if __name__ == "__main__":
    main()
