"""The SQLite store's write-ahead log stays bounded while runs are written and history is read meanwhile."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import finished_run

from nbsched.store import RunQuery
from nbsched.store import sqlite as sqlite_store
from nbsched.store.history import sqlite as sqlite_history
from nbsched.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
#: Commits written while a reader is open: each writes a few pages (the row and its indexes) to the log.
COMMITS = 2_000


@pytest.fixture
def store(tmp_path):
    opened = SQLiteStore(tmp_path / "nbsched.db")
    yield opened
    opened.close()


def _run(i: int) -> dict:
    return finished_run(i, NOW, output="x" * 200)


def _write_one_by_one(store: SQLiteStore, count: int, start: int) -> None:
    """``count`` runs, each in a transaction of its own (as the runner writes: many small commits)."""
    for i in range(start, start + count):
        store.add_runs([_run(i)])


def _log_bytes(store: SQLiteStore) -> int:
    wal = Path(f"{store.path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_history_stream_read_slowly_holds_no_snapshot_so_the_log_is_reset(store):
    """A client that takes its time between chunks (``nbsched history | less``) must not keep checkpoints from
    resetting the log: with a snapshot held, every commit meanwhile would add to it."""
    _write_one_by_one(store, 50, 0)
    with store.history() as history:
        chunks = history.row_chunks(RunQuery(), 10)
        first = next(chunks)
        _write_one_by_one(store, COMMITS, 50)
        grown = _log_bytes(store)
        rest = [row for chunk in chunks for row in chunk]
    # The autocheckpoint resets the log every 1,000 pages (about 4 MB); held, it would pass 20 MB.
    assert grown < 8_000_000, f"the log grew to {grown} bytes while a listing was being read"
    assert [row[0] for row in first + rest] == list(range(50, 0, -1))  # the runs there when the listing began


def test_chunks_list_what_one_read_lists_with_limit_and_offset(store):
    _write_one_by_one(store, 95, 0)
    with store.history() as history:
        for query in (RunQuery(), RunQuery(limit=23, offset=7), RunQuery(job="j1", offset=4), RunQuery(limit=0)):
            chunked = [row for chunk in history.row_chunks(query, 10) for row in chunk]
            assert chunked == history.rows(query), query
            assert all(len(chunk) <= 10 for chunk in history.row_chunks(query, 10))


def test_a_log_grown_behind_a_reader_is_cut_back_once_the_reader_is_done(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "WAL_LIMIT_BYTES", 1_000_000)
    store = SQLiteStore(tmp_path / "nbsched.db")
    try:
        reader = sqlite3.connect(store.path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM runs").fetchone()  # a snapshot held: the log cannot be reset
        _write_one_by_one(store, COMMITS, 0)
        grown = _log_bytes(store)
        assert grown > 20_000_000  # far past the limit meanwhile
        reader.execute("COMMIT")
        reader.close()
        _write_one_by_one(store, 300, COMMITS)  # the next checkpoint resets the log, the commit after cuts it
        assert _log_bytes(store) < grown / 4  # to the limit, and what the commits since added
        assert len(store.runs()) == COMMITS + 300
    finally:
        store.close()


def test_the_child_reads_long_spans_in_short_queries_newest_first():
    queries = sqlite_history._id_ranges("", [], 5, 50_007, None)
    spans = [tuple(params[-2:]) for _, params in queries]
    assert spans[0][1] == 50_007 and spans[-1][0] == 5  # newest first, from the top down to the bottom
    assert all(upper > lower and upper - lower <= sqlite_history.CHILD_QUERY_IDS for lower, upper in spans)
    assert all(spans[i][0] == spans[i + 1][1] for i in range(len(spans) - 1))  # no gap, no overlap
    (only,) = sqlite_history._id_ranges("WHERE job=?", ["j"], 5, 50_007, 100)  # a limit: one query
    assert only[1] == ["j", 5, 50_007, 100]
    assert len(sqlite_history._id_ranges("", [], 7, 7, None)) == 1  # no ids: one query, of no rows


def test_runs_read_by_the_child_in_short_queries_are_the_runs_sqlite_lists(store, monkeypatch, tmp_path):
    monkeypatch.setattr(sqlite_history, "REFRESH_QUERY_IDS", 7)  # a refresh's queries
    _write_one_by_one(store, 40, 0)
    with store.history() as history:
        path = tmp_path / "runs.arrow"
        history.write_runs_file(3, 40, path, background=True)  # one reader, pausing after each query
    import pyarrow as pa

    table = pa.ipc.open_file(pa.py_buffer(path.read_bytes())).read_all()
    assert table["run_id"].to_pylist() == list(range(40, 3, -1))
    assert os.path.getsize(path) > 0
