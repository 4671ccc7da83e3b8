"""The Arrow files of finished runs beside a SQLite store: a long history read from them equals SQLite's."""

from __future__ import annotations

import contextlib
import io
import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from nbsched.store import Purge, RunQuery
from nbsched.store.history import History
from nbsched.store.history import cache as runs_cache
from nbsched.store.history import changed as changed_runs
from nbsched.store.history import sqlite as sqlite_history
from nbsched.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
QUERIES = [
    {},
    {"limit": 130},
    {"job": "j1"},
    {"service": "s2", "status": "error"},
    {"status": "running"},
    {"since": NOW + timedelta(seconds=250)},
    {"job": "j0", "since": NOW + timedelta(seconds=100), "limit": 120},
]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A store whose reads of more than 100 runs go through the cache, with a file per 150 finished runs."""
    monkeypatch.setattr(sqlite_history, "BULK_ROWS", 100)
    monkeypatch.setattr(runs_cache, "SEGMENT_ROWS", 150)
    opened = SQLiteStore(tmp_path / "nbsched.db")
    yield opened
    opened.close()


def _runs(count: int, start: int = 0, status: str | None = None) -> list[dict]:
    runs = []
    for i in range(start, start + count):
        scheduled = NOW + timedelta(seconds=i)
        run = {
            "cid": f"{i:024x}",
            "job": f"j{i % 3}" if i % 7 else None,
            "service": f"s{i % 4}",
            "trigger": "schedule",
            "attempt": 1,
            "status": status or ("error" if i % 5 == 0 else "ok"),
            "scheduled_at": scheduled,
            "runner": "test:1",
        }
        if run["status"] != "running":
            started = scheduled + timedelta(milliseconds=i % 9)
            run.update(started_at=started, finished_at=started + timedelta(milliseconds=2), delay_ms=float(i % 9))
            run.update(output=str(i), logs="", error="ValueError: x" if run["status"] == "error" else None)
        runs.append(run)
    return runs


def _table(data) -> pa.Table:
    return pa.ipc.open_stream(io.BytesIO(bytes(data))).read_all()


def _files(store) -> list[str]:
    folder = runs_cache.RunsCache.of(store.path).folder
    return sorted(path.name for path in folder.glob("*.arrow")) if folder.is_dir() else []


def _written(store) -> dict[str, tuple[int, int]]:
    """Each cache file's name, inode and modification time: a file written again differs."""
    folder = runs_cache.RunsCache.of(store.path).folder
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.glob("*.arrow")}


def _rows(store) -> dict[str, int]:
    folder = runs_cache.RunsCache.of(store.path).folder
    return {path.name: pa.ipc.open_file(path.read_bytes()).read_all().num_rows for path in folder.glob("*.arrow")}


def _changes_recorded(store) -> int:
    return store.db.execute("SELECT COUNT(*) FROM runs_changed").fetchone()[0]


def _refresh(store) -> None:
    """What the runner does once a minute."""
    with store.history() as history:
        history.refresh()


def _assert_same_as_sqlite(store, query: dict) -> pa.Table:
    query = RunQuery(**{"as_of": NOW + timedelta(seconds=10_000), **query})
    with store.history() as history:
        cached = _table(history.arrow(query))
    runs_cache.RunsCache.of(store.path).settle()  # files a first long read has written after answering
    plain = _table(History(store).arrow(query))  # built from the store's rows, no cache
    assert cached.schema.equals(plain.schema)
    assert cached.to_pylist() == plain.to_pylist(), query
    return cached


def test_finished_runs_are_read_from_files_and_equal_the_store(store):
    store.add_runs(_runs(400))
    store.add_runs(_runs(30, start=400, status="running"))  # the files stop before the first of these
    store.add_runs(_runs(20, start=430))

    for query in QUERIES:
        _assert_same_as_sqlite(store, query)

    names = _files(store)
    assert [name.split(".")[1] for name in names] == ["0-400"], names
    whole = _assert_same_as_sqlite(store, {})
    assert whole.num_rows == 450
    assert whole.column("run_id").to_pylist() == list(range(450, 0, -1))


def test_new_runs_add_files_and_many_files_are_merged(store, monkeypatch):
    monkeypatch.setattr(runs_cache, "MAX_SEGMENTS", 2)
    for batch in range(4):
        store.add_runs(_runs(160, start=160 * batch))
        _assert_same_as_sqlite(store, {})
    names = _files(store)
    assert len(names) <= 2, names
    assert names[0].split(".")[1] == "0-480", names  # the first three merged into one
    for query in QUERIES:
        _assert_same_as_sqlite(store, query)


@pytest.mark.parametrize("pieces", [changed_runs.MAX_PIECES, 4])  # 4: the file's table filtered and sorted
def test_a_run_deleted_or_changed_by_hand_is_read_from_sqlite_and_the_files_are_kept(store, monkeypatch, pieces):
    monkeypatch.setattr(changed_runs, "MAX_PIECES", pieces)
    store.add_runs(_runs(300))
    assert _assert_same_as_sqlite(store, {}).num_rows == 300
    written = _written(store)
    with sqlite3.connect(store.path) as db:  # what a user pruning or mending history does
        db.execute("DELETE FROM runs WHERE run_id IN (5, 250)")
        db.execute("UPDATE runs SET logs = 'mended', job = 'j1' WHERE run_id IN (7, 8, 120, 300)")
    for query in QUERIES:
        _assert_same_as_sqlite(store, query)
    whole = _assert_same_as_sqlite(store, {})
    assert whole.num_rows == 298
    assert {5, 250}.isdisjoint(whole.column("run_id").to_pylist())
    assert whole.column("logs").to_pylist()[298 - 7] == "mended"  # in its place: newest first
    assert _written(store) == written  # no file written again


def test_changed_runs_are_put_back_as_slices_not_by_copying_the_files_rows(store):
    store.add_runs(_runs(300))
    _refresh(store)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE runs SET logs = 'mended' WHERE run_id BETWEEN 100 AND 140 OR run_id = 200")
        db.execute("DELETE FROM runs WHERE run_id BETWEEN 10 AND 19")
    cache = runs_cache.RunsCache.of(store.path)
    with store.history() as history, cache.lock:
        (table,) = cache.cached_tables(history)
    # The file's rows 300-201, run 200, 199-141, runs 140-100, 99-20, 9-1: the 41 side by side in one slice.
    assert [len(chunk) for chunk in table["run_id"].chunks if len(chunk)] == [100, 1, 59, 41, 80, 9]
    _assert_same_as_sqlite(store, {})


def test_a_purge_step_is_left_out_of_the_files_without_writing_them_again(store):
    store.add_runs(_runs(400))
    _refresh(store)
    written = _written(store)
    deleted = store.delete_runs(Purge(before=NOW + timedelta(seconds=100)), limit=30)  # one retention step
    assert [run.run_id for run in deleted] == list(range(1, 31))
    for query in QUERIES:
        _assert_same_as_sqlite(store, query)
    assert _written(store) == written
    assert _assert_same_as_sqlite(store, {}).column("run_id").to_pylist() == list(range(400, 30, -1))
    _refresh(store)  # under a tenth of the file changed: it stays
    assert _written(store) == written


def test_a_refresh_writes_again_a_file_much_changed_and_forgets_what_it_recorded(store, monkeypatch):
    monkeypatch.setattr(runs_cache, "MAX_SEGMENTS", 4)
    monkeypatch.setattr(sqlite_history, "FORGET_CHUNK", 7)  # the 330 records forgotten in 48 short transactions
    store.add_runs(_runs(300))
    _refresh(store)
    store.add_runs(_runs(300, start=300))
    _refresh(store)
    first, second = sorted(_written(store))
    store.delete_runs(Purge(before=NOW + timedelta(seconds=300)), limit=300)  # all of the first file
    store.delete_runs(Purge(before=NOW + timedelta(seconds=329)), limit=300)  # 29 of the second
    store.update_runs([{"run_id": 500, "logs": "the notification failed"}])  # and one changed: a tenth
    read_from_sqlite, write = [], sqlite_history.SQLiteHistory.write_runs_file
    monkeypatch.setattr(
        sqlite_history.SQLiteHistory,
        "write_runs_file",
        lambda self, after, upto, *args: read_from_sqlite.append((after, upto)) or write(self, after, upto, *args),
    )
    _refresh(store)
    spans = {name.split(".")[1]: rows for name, rows in _rows(store).items()}
    assert spans == {"0-300": 0, "300-600": 271}  # both written again: of no runs, and without the deleted
    assert read_from_sqlite == []  # from the files, with the changed runs read from SQLite
    assert first not in _written(store) and second not in _written(store)
    assert _changes_recorded(store) == 0  # every file has seen them
    for query in QUERIES:
        _assert_same_as_sqlite(store, query)


def test_a_refresh_writes_again_a_file_with_many_runs_changed_that_the_store_still_has(store, monkeypatch):
    monkeypatch.setattr(runs_cache, "CHANGED_KEPT", 5)
    store.add_runs(_runs(300))
    _refresh(store)
    written = _written(store)
    store.delete_runs(Purge(before=NOW + timedelta(seconds=10)), limit=100)  # 10 deleted side by side
    _refresh(store)
    assert _written(store) == written
    store.update_runs([{"run_id": run_id, "logs": "the notification failed"} for run_id in range(100, 300, 40)])
    _refresh(store)
    assert _written(store).keys().isdisjoint(written) and list(_rows(store).values()) == [290]
    assert _changes_recorded(store) == 0
    _assert_same_as_sqlite(store, {})


def test_a_long_read_that_finds_a_file_much_changed_has_it_written_again_after_answering(store):
    store.add_runs(_runs(300))
    _refresh(store)
    (first,) = _written(store)
    store.delete_runs(Purge(before=NOW + timedelta(seconds=40)), limit=100)  # over a tenth of the file
    assert _assert_same_as_sqlite(store, {}).num_rows == 260  # from the file; then written again (settled)
    assert list(_rows(store).values()) == [260] and first not in _written(store)
    store.delete_runs(Purge(before=NOW + timedelta(seconds=45)), limit=100)  # a few more: the file stays
    written = _written(store)
    assert _assert_same_as_sqlite(store, {}).num_rows == 255
    assert _written(store) == written


def test_a_much_changed_file_overwritten_behind_the_runners_back_is_written_again_from_sqlite(store):
    store.add_runs(_runs(300))
    _refresh(store)
    (name,) = _written(store)
    path = runs_cache.RunsCache.of(store.path).folder / name
    path.write_bytes(bytes(path.stat().st_size))  # the same size: only its sum tells
    store.delete_runs(Purge(before=NOW + timedelta(seconds=40)), limit=100)
    _refresh(store)
    assert list(_rows(store).values()) == [260]
    _assert_same_as_sqlite(store, {})


def test_runs_that_take_the_ids_of_deleted_newest_runs_are_read_as_sqlite_has_them(store):
    store.add_runs(_runs(300))
    _refresh(store)
    written = _written(store)
    store.add_runs(_runs(20, start=300))  # not in a file yet
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM runs WHERE run_id > 310")
    assert store.add_runs(_runs(5, start=1000, status="error")) == list(range(311, 316))  # ids of deleted runs
    assert _assert_same_as_sqlite(store, {}).num_rows == 315
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM runs WHERE run_id > 290")  # the newest runs the file holds too
    store.add_runs(_runs(30, start=2000, status="error"))
    whole = _assert_same_as_sqlite(store, {})
    assert _written(store) == written  # the runs of reused ids are read from SQLite, the file kept
    assert whole.column("cid").to_pylist()[:30] == [f"{i:024x}" for i in range(2029, 1999, -1)]
    for query in QUERIES:
        _assert_same_as_sqlite(store, query)


def test_a_runner_started_again_leaves_out_the_changes_recorded_before(store):
    store.add_runs(_runs(400))
    _refresh(store)
    written = _written(store)
    store.delete_runs(Purge(before=NOW + timedelta(seconds=100)), limit=30)
    store.update_runs([{"run_id": 200, "output": "mended"}])
    runs_cache.RunsCache._by_path.pop(os.path.realpath(store.path))  # as a runner started afresh finds it
    whole = _assert_same_as_sqlite(store, {})
    assert whole.num_rows == 370 and whole.column("output").to_pylist()[200] == "mended"
    assert _written(store) == written


def test_runs_loaded_with_ids_of_their_own_are_not_missed(store):
    runs = [{**run, "run_id": i + 1} for i, run in enumerate(_runs(300))]
    store.load_runs(runs[:149] + runs[150:])  # no run 150
    _refresh(store)
    store.load_runs([runs[149]])  # an id below the file's newest, never recorded as changed
    whole = _assert_same_as_sqlite(store, {})
    assert whole.num_rows == 300


def test_the_triggers_of_an_older_nbsched_count_changes_and_are_replaced_at_opening(store, tmp_path):
    store.add_runs(_runs(300))
    _refresh(store)
    written = _written(store)
    # An older nbsched makes its triggers again at opening; they count every change in runs_generation.
    store.db.executescript(OLDER_TRIGGERS)
    store.db.execute("DELETE FROM runs WHERE run_id = 10")
    assert _assert_same_as_sqlite(store, {}).num_rows == 299
    assert set(_written(store)).isdisjoint(written)  # a change counted there: all read again
    store.close()
    reopened = SQLiteStore(tmp_path / "nbsched.db")
    triggers = reopened.db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'runs'")
    assert sorted(name for (name,) in triggers) == [
        "runs_changed_deleted",
        "runs_changed_inserted",
        "runs_changed_updated",
    ]
    reopened.close()


#: The triggers of nbsched's store schema version 2, which an older nbsched makes at opening.
OLDER_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS runs_deleted_one_by_one AFTER DELETE ON runs
    WHEN NOT EXISTS (SELECT 1 FROM meta WHERE key = 'runs_purging') BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'runs_generation'; END;
CREATE TRIGGER IF NOT EXISTS runs_rewritten AFTER UPDATE ON runs WHEN OLD.status IS NOT 'running' BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'runs_generation'; END;
"""


def test_results_of_running_runs_do_not_count_as_changes(store):
    store.add_runs(_runs(200, status="running"))
    _assert_same_as_sqlite(store, {})
    assert _files(store) == []  # nothing finished yet
    finished = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
    store.update_runs([{"run_id": i, "status": "ok", "finished_at": finished} for i in range(1, 201)])
    _assert_same_as_sqlite(store, {})
    written = _files(store)
    assert len(written) == 1
    store.add_runs(_runs(10, start=200))
    _assert_same_as_sqlite(store, {"status": "ok"})
    assert _files(store) == written  # the same generation: the file is still good


def test_a_new_store_at_the_same_path_and_broken_files_are_not_used(store, tmp_path):
    store.add_runs(_runs(300))
    _assert_same_as_sqlite(store, {})
    old = _files(store)
    folder = runs_cache.RunsCache.of(store.path).folder
    (folder / "junk.arrow").write_bytes(b"not arrow")
    store.close()
    (tmp_path / "nbsched.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"nbsched.db{suffix}").unlink(missing_ok=True)

    fresh = SQLiteStore(tmp_path / "nbsched.db")  # a new store: new id, run ids from 1 again
    fresh.add_runs(_runs(200, start=1000))
    whole = _assert_same_as_sqlite(fresh, {})
    assert whole.num_rows == 200 and whole.column("cid").to_pylist()[-1] == f"{1000:024x}"
    assert set(_files(fresh)).isdisjoint(old) and "junk.arrow" not in _files(fresh)

    # A file of this store's name that is not Arrow is deleted and read again.
    (name,) = _files(fresh)
    (folder / name).write_bytes(b"broken")
    runs_cache.RunsCache._by_path.pop(os.path.realpath(fresh.path))  # as a runner started afresh finds it
    assert _assert_same_as_sqlite(fresh, {}).num_rows == 200
    fresh.close()


def test_a_refresh_writes_the_files_before_any_long_read(store):  # what the runner does once a minute
    store.add_runs(_runs(300))
    _refresh(store)
    assert len(_files(store)) == 1
    _assert_same_as_sqlite(store, {"job": "j2"})


def test_history_is_still_read_when_the_cache_cannot_be_written(store, caplog):
    store.add_runs(_runs(300))
    blocker = runs_cache.RunsCache.of(store.path).folder
    blocker.write_text("a file where the cache folder would go")  # mkdir fails, as on a full or read-only disk
    for query in ({}, {"job": "j1"}, {"limit": 120}):
        _assert_same_as_sqlite(store, query)
    assert blocker.is_file()
    assert "runs cache" in caplog.text and "not usable" in caplog.text


def test_records_of_changes_do_not_pile_up_while_the_cache_cannot_be_written(store):
    store.add_runs(_runs(300))
    runs_cache.RunsCache.of(store.path).folder.write_text("a file where the cache folder would go")
    for step in range(5):
        store.delete_runs(Purge(before=NOW + timedelta(seconds=300)), limit=20)
        with pytest.raises(OSError):
            _refresh(store)
        assert _changes_recorded(store) == 0, step
    _assert_same_as_sqlite(store, {})


def test_a_refresh_with_nothing_to_cache_does_not_load_pyarrow(tmp_path):
    # The runner refreshes once a minute; pyarrow costs ~40 MB of its memory, so it waits for a long history.
    code = (
        "import sys; from nbsched.store.sqlite import SQLiteStore; "
        f"store = SQLiteStore({str(tmp_path / 'nbsched.db')!r}); store.history().refresh(); "
        "print('pyarrow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False", done.stderr


def test_files_left_half_written_by_a_dead_writer_are_removed_later(store):
    folder = runs_cache.RunsCache.of(store.path).folder
    folder.mkdir()
    old, fresh = folder / ".x.0-9.arrow.123.456", folder / ".x.0-9.arrow.123.789"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"being written")
    two_hours_ago = datetime.now(UTC).timestamp() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    store.add_runs(_runs(300))
    _assert_same_as_sqlite(store, {})
    assert not old.exists() and fresh.exists()


def _add_mixed(store, rng: random.Random, made: int) -> int:
    """20 to 90 runs added one by one, most finished, some running (as ``rng`` picks); the number of the next."""
    for status in rng.choices(["ok", "error", "running"], weights=[6, 2, 1], k=rng.randint(20, 90)):
        store.add_runs(_runs(1, start=made, status=status))
        made += 1
    return made


def _by_hand(store, sql: str, *params) -> None:
    """A statement on a connection of its own, as someone with ``sqlite3`` runs it."""
    with sqlite3.connect(store.path) as db:
        db.execute(sql, params)


def test_after_any_mix_of_runs_added_finished_purged_deleted_and_mended_a_long_read_is_what_sqlite_holds(
    store, monkeypatch
):
    monkeypatch.setattr(runs_cache, "MAX_SEGMENTS", 3)
    rng = random.Random(7)  # a fixed mix: the same steps at each run of the test
    made = 0

    def add() -> None:
        nonlocal made
        made = _add_mixed(store, rng, made)

    def finish() -> None:
        running = [run_id for (run_id,) in store.db.execute("SELECT run_id FROM runs WHERE status = 'running'")]
        finished = NOW + timedelta(days=1)
        store.update_runs([{"run_id": run_id, "status": "ok", "finished_at": finished} for run_id in running[:10]])

    def by_hand(sql: str) -> None:
        _by_hand(store, sql)

    steps = {
        "add": add,
        "finish": finish,
        "purge": lambda: store.delete_runs(Purge(before=NOW + timedelta(seconds=rng.randint(0, made))), 40),
        "delete the newest": lambda: by_hand("DELETE FROM runs WHERE run_id > (SELECT MAX(run_id) - 15 FROM runs)"),
        "delete some": lambda: by_hand(f"DELETE FROM runs WHERE run_id % {rng.randint(5, 40)} = 3"),
        "mend some": lambda: by_hand(f"UPDATE runs SET logs = 'mended' WHERE run_id % {rng.randint(5, 40)} = 1"),
        "refresh": lambda: _refresh(store),
        "restart": lambda: runs_cache.RunsCache._by_path.pop(os.path.realpath(store.path), None),
    }
    add()
    for name in rng.choices(list(steps), weights=[4, 2, 2, 1, 1, 1, 2, 1], k=30):
        steps[name]()
        _assert_same_as_sqlite(store, {})
    for query in QUERIES:
        _assert_same_as_sqlite(store, query)


@pytest.mark.parametrize("new_runs", [200, 500])  # fewer runs than the files hold, or as many and more
def test_a_store_put_back_from_a_copy_is_not_served_from_newer_files(store, tmp_path, new_runs):
    store.add_runs(_runs(50))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "nbsched.db").read_bytes())
    store.add_runs(_runs(400, start=50))
    _refresh(store)
    assert _files(store)
    store.close()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"nbsched.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "nbsched.db").write_bytes(copy.read_bytes())  # same id, same generation, fewer runs
    runs_cache.RunsCache._by_path.pop(os.path.realpath(store.path))  # as a runner started afresh finds it

    restored = SQLiteStore(tmp_path / "nbsched.db")
    restored.add_runs(_runs(new_runs, start=10_000, status="error"))  # new runs take the ids the files hold
    whole = _assert_same_as_sqlite(restored, {})
    assert whole.num_rows == 50 + new_runs
    restored.close()


def test_a_store_put_back_from_a_copy_older_than_a_change_is_not_served_from_files_written_after_it(store, tmp_path):
    store.add_runs(_runs(300))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "nbsched.db").read_bytes())
    store.delete_runs(Purge(before=NOW + timedelta(seconds=40)), limit=100)  # the file is written without them
    _refresh(store)
    assert list(_rows(store).values()) == [260]
    store.close()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"nbsched.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "nbsched.db").write_bytes(copy.read_bytes())  # same id, generation, newest runs; no change yet
    runs_cache.RunsCache._by_path.pop(os.path.realpath(store.path))

    restored = SQLiteStore(tmp_path / "nbsched.db")
    assert _assert_same_as_sqlite(restored, {}).num_rows == 300
    restored.close()


def test_a_run_left_running_long_keeps_the_cache_in_use(store, caplog):
    # More than BULK_ROWS runs after the oldest running one: they are read by the child, then joined to the files.
    store.add_runs(_runs(200))
    store.add_runs(_runs(1, start=200, status="running"))
    store.add_runs(_runs(150, start=201))
    for query in ({}, {"job": "j1"}, {"limit": 300}):
        _assert_same_as_sqlite(store, query)
    assert len(_files(store)) == 1
    assert "not usable" not in caplog.text


def test_a_first_long_read_answers_from_sqlite_and_the_files_are_written_after_it(store, monkeypatch):
    store.add_runs(_runs(400))
    cache = runs_cache.RunsCache.of(store.path)
    write_later, started = cache.write_later, []
    monkeypatch.setattr(cache, "write_later", started.append)  # held back: not written yet

    with store.history() as history:
        first = _table(history.arrow(RunQuery()))

    assert first.num_rows == 400 and _files(store) == [] and len(started) == 1
    write_later(started[0])  # let go: the files are written in a thread, from a reader of their own
    cache.settle()
    assert [name.split(".")[1] for name in _files(store)] == ["0-400"]
    reads, read = [], runs_cache._read
    monkeypatch.setattr(runs_cache, "_read", lambda fd, segment: reads.append(segment.upto) or read(fd, segment))
    with store.history() as history:  # now read from the file
        again = _table(history.arrow(RunQuery()))
    assert reads == [400] and again.to_pylist() == first.to_pylist()


def test_reader_connections_are_kept_for_the_next_read_and_closed_with_the_store(tmp_path):
    opened = SQLiteStore(tmp_path / "nbsched.db")
    with opened.history() as history:
        first = history.db
    with opened.history() as history:
        assert history.db is first  # no new connection, no schema read again
        with opened.history() as other:  # a read meanwhile, in another thread say: a connection of its own
            assert other.db is not first
    opened.close()
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")


REFRESH = """
import sys
from nbsched.store.history import cache as runs_cache
from nbsched.store.history import changed as changed_runs
from nbsched.store.sqlite import SQLiteStore

runs_cache.SEGMENT_ROWS, runs_cache.MAX_SEGMENTS = 150, 2
store = SQLiteStore(sys.argv[1])
with store.history() as history:
    history.refresh()
print(sorted(path.name.split(".")[1] for path in runs_cache.RunsCache.of(str(store.path)).folder.glob("*.arrow")))
print("pyarrow" in sys.modules, "numpy" in sys.modules)
"""


def test_a_refresh_writes_and_merges_files_without_loading_pyarrow(store):
    """The runner refreshes its cache now and then: the child process writes, checks and merges the files, so
    that pyarrow (~40 MB) stays out of the runner."""
    seen = []
    for batch in range(3):
        store.add_runs(_runs(160, start=160 * batch))
        done = subprocess.run([sys.executable, "-c", REFRESH, str(store.path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        seen.append(done.stdout.splitlines())
    assert seen == [
        ["['0-160']", "False False"],
        ["['0-160', '160-320']", "False False"],
        ["['0-480']", "False False"],  # three files: merged into one
    ]
    for query in QUERIES:  # what the child wrote reads as SQLite's rows
        _assert_same_as_sqlite(store, query)


def test_a_store_an_older_nbsched_used_counts_a_change_at_opening_so_a_downgrade_reads_its_files_again(store, tmp_path):
    # An older nbsched's cache files are named by runs_generation, which this one no longer counts deletes in:
    # after this one purged, an older nbsched started again would serve the purged runs from its files.
    generation = "SELECT value FROM meta WHERE key = 'runs_generation'"
    store.db.executescript(OLDER_TRIGGERS)  # as an older nbsched leaves the store
    (before,) = store.db.execute(generation).fetchone()
    store.close()
    reopened = SQLiteStore(tmp_path / "nbsched.db")
    (after,) = reopened.db.execute(generation).fetchone()
    assert int(after) == int(before) + 1
    reopened.close()
    reopened = SQLiteStore(tmp_path / "nbsched.db")  # opened again by this nbsched: nothing more counted
    assert reopened.db.execute(generation).fetchone() == (after,)
    reopened.close()


def test_runs_that_reuse_ids_of_newest_runs_deleted_and_forgotten_are_read(store):
    store.add_runs(_runs(300))
    _refresh(store)
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM runs WHERE run_id > 260")  # the file's newest runs, over a tenth of it
    _refresh(store)  # the file written again without them, their records forgotten
    assert list(_rows(store).values()) == [260]
    store.add_runs(_runs(60, start=1000, status="error"))  # ids 261..320: 261..300 within the file's span
    assert _assert_same_as_sqlite(store, {}).num_rows == 320


def test_a_copy_put_back_that_changed_as_often_since_is_not_served_from_newer_files(store, tmp_path):
    store.add_runs(_runs(300))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "nbsched.db").read_bytes())
    store.delete_runs(Purge(before=NOW + timedelta(seconds=40)), limit=100)
    _refresh(store)
    assert list(_rows(store).values()) == [260]
    store.close()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"nbsched.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "nbsched.db").write_bytes(copy.read_bytes())
    runs_cache.RunsCache._by_path.pop(os.path.realpath(store.path))

    restored = SQLiteStore(tmp_path / "nbsched.db")
    # As many changes of its own as the live store made: its change numbers catch up with the files'.
    restored.update_runs([{"run_id": run_id, "logs": "mended"} for run_id in range(100, 150)])
    assert _assert_same_as_sqlite(restored, {}).num_rows == 300
    restored.close()


def test_two_stores_opened_by_two_spellings_of_one_path_share_one_cache(store, tmp_path):
    # Each cache forgets the records of changes its own files have seen: two caches of one store would forget
    # what the other's files still need, and the other would serve the runs as they were.
    other = SQLiteStore(f"{tmp_path}/./nbsched.db")
    store.add_runs(_runs(300))
    _refresh(store)
    _assert_same_as_sqlite(other, {})

    def mend(first: int, count: int) -> None:
        store.update_runs([{"run_id": run_id, "logs": f"mended {first}"} for run_id in range(first, first + count)])

    mend(1, 40)  # a tenth of the file: written again at the next refresh
    _refresh(store)
    mend(100, 1)
    _assert_same_as_sqlite(other, {})
    mend(200, 40)
    _refresh(store)
    _assert_same_as_sqlite(other, {})
    other.close()


def test_a_run_put_back_by_hand_below_the_newest_is_read(store):
    store.add_runs(_runs(300))
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM runs WHERE run_id = 100")
    _refresh(store)
    written = _written(store)
    with sqlite3.connect(store.path) as db:  # put back from a backup, say: no change of runs_generation
        db.execute("INSERT INTO runs (run_id, cid, service, status, logs) VALUES (100, 'back', 's1', 'ok', 'put back')")
    whole = _assert_same_as_sqlite(store, {})
    assert whole.num_rows == 300 and _written(store) == written
    store.add_runs(_runs(20, start=300))  # new runs, above all others: not recorded
    assert _changes_recorded(store) == 1  # the run put back


def _open_cache_files(store) -> list[str]:
    folder = str(runs_cache.RunsCache.of(store.path).folder)
    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [link for link in links if link.startswith(folder)]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_a_long_read_that_fails_after_opening_the_files_closes_them(store, monkeypatch, caplog):
    store.add_runs(_runs(400))
    _refresh(store)

    def fails(self, after, query):
        raise OSError("the runs after the files could not be read")

    monkeypatch.setattr(sqlite_history.SQLiteHistory, "_runs_after", fails)
    for _ in range(3):
        _assert_same_as_sqlite(store, {})  # answered from SQLite instead
    assert "reading the runs from SQLite" in caplog.text
    assert _open_cache_files(store) == []


def test_a_file_left_beside_the_one_written_again_in_its_place_is_not_served_after_a_restart(store):
    store.add_runs(_runs(300))
    _refresh(store)
    folder = runs_cache.RunsCache.of(store.path).folder
    old = {path.name: path.read_bytes() for path in folder.iterdir()}
    store.update_runs([{"run_id": run_id, "logs": "mended"} for run_id in range(1, 41)])
    _refresh(store)  # the file written again (a tenth changed), the records of its changes forgotten
    for name, data in old.items():  # as a runner killed before it deleted the old file leaves it
        (folder / name).write_bytes(data)
    runs_cache.RunsCache._by_path.pop(os.path.realpath(store.path))  # as a runner started afresh finds it
    _assert_same_as_sqlite(store, {})
    assert len(_files(store)) == 1  # the old one deleted


def test_a_long_read_that_writes_a_file_while_another_holds_the_stores_write_lock_waits_a_second_at_most(store):
    store.add_runs(_runs(300))
    _refresh(store)
    store.add_runs(_runs(200, start=300))  # a file's worth more: the next long read writes it
    with sqlite3.connect(store.path) as holder:
        holder.execute("BEGIN IMMEDIATE")  # another process's write in progress
        began = time.monotonic()
        _assert_same_as_sqlite(store, {})
        assert time.monotonic() - began < 10
        holder.execute("ROLLBACK")
    assert len(_files(store)) == 2


@pytest.mark.parametrize("seed", [4, 12])
def test_after_runs_put_back_moved_or_reopened_and_files_damaged_or_left_a_long_read_is_what_sqlite_holds(
    store, tmp_path, monkeypatch, seed
):
    monkeypatch.setattr(runs_cache, "MAX_SEGMENTS", 3)
    rng = random.Random(seed)  # a fixed mix (review2's fuzz: these seeds found runs put back by hand left out)
    other = SQLiteStore(f"{tmp_path}/./nbsched.db")  # the same store by another spelling of its path
    folder = runs_cache.RunsCache.of(store.path).folder
    made = 0

    def add() -> None:
        nonlocal made
        made = _add_mixed(store, rng, made)

    def by_hand(sql: str, *params) -> None:
        _by_hand(store, sql, *params)

    def put_back() -> None:  # a deleted run inserted again by hand, at its id
        have = {run_id for (run_id,) in store.db.execute("SELECT run_id FROM runs")}
        holes = [run_id for run_id in range(1, max(have, default=0)) if run_id not in have]
        if holes:
            run_id = rng.choice(holes)
            by_hand(
                "INSERT INTO runs (run_id, cid, service, status, logs) VALUES (?, ?, 's1', 'ok', 'back')", run_id, "b"
            )

    def damage(cut: bool) -> None:
        files = sorted(folder.glob("*.arrow"))
        if files:
            path = rng.choice(files)
            os.truncate(path, rng.randint(0, path.stat().st_size)) if cut else path.write_bytes(
                bytes(path.stat().st_size)
            )

    def refresh_leaving_the_old_files() -> None:  # as a runner killed before it deleted them leaves them
        old = {path.name: path.read_bytes() for path in folder.glob("*")} if folder.is_dir() else {}
        _refresh(other)
        for name, data in old.items():
            if not (folder / name).exists():
                (folder / name).write_bytes(data)

    steps = {
        "add": add,
        "finish": lambda: by_hand(
            "UPDATE runs SET status = 'ok' WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'running' LIMIT 10)"
        ),
        "purge": lambda: store.delete_runs(Purge(before=NOW + timedelta(seconds=rng.randint(0, made))), 40),
        "delete some": lambda: by_hand(f"DELETE FROM runs WHERE run_id % {rng.randint(5, 40)} = 3"),
        "mend some": lambda: by_hand(
            f"UPDATE runs SET logs = '{rng.random()}' WHERE run_id % {rng.randint(5, 40)} = 1"
        ),
        "put back": put_back,
        "move": lambda: by_hand(
            "UPDATE runs SET run_id = (SELECT MAX(run_id) + 1000 FROM runs) WHERE run_id = "
            "(SELECT MIN(run_id) FROM runs WHERE status <> 'running')"
        ),
        "cut": lambda: damage(cut=True),
        "overwrite": lambda: damage(cut=False),
        "refresh": lambda: _refresh(store),
        "refresh leaving the old files": refresh_leaving_the_old_files,
        "restart": lambda: runs_cache.RunsCache._by_path.pop(os.path.realpath(store.path), None),
    }
    add()
    for name in rng.choices(list(steps), weights=[4, 2, 2, 1, 1, 2, 1, 1, 1, 2, 2, 1], k=40):
        steps[name]()
        _assert_same_as_sqlite(rng.choice([store, other]), rng.choice(QUERIES))
    other.close()
