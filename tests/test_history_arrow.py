"""History as an Arrow stream: the same runs and values as the JSON rows, typed, fast to load."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from conftest import wait_until

from nbsched.errors import InvalidInput
from nbsched.model.jobs import JobSpec, JobState
from nbsched.store import RunQuery, StoredJob
from nbsched.store.history import History
from nbsched.store.history import sqlite as sqlite_history
from nbsched.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MIXED_SERVICE = """
from nbsched import Service


class Mixed(Service):
    name = "test.mixed"

    def handle(self):
        if self.request.payload == "fail":
            raise ValueError("asked to fail")
        print("done")
        self.response.payload = {"ok": 1}
"""


def _table(data) -> pa.Table:
    return pa.ipc.open_stream(io.BytesIO(bytes(data))).read_all()


def _served(store, query: RunQuery) -> pa.Table:
    with store.history() as history:
        return _table(history.arrow(query))


@pytest.fixture(params=["child", "in-process"])
def store(request, tmp_path, monkeypatch):
    """A SQLite store whose large tables are read by the ADBC child process, or all built in-process."""
    monkeypatch.setattr(sqlite_history, "BULK_ROWS", 100 if request.param == "child" else 10**9)
    opened = SQLiteStore(tmp_path / "nbsched.db")
    yield opened
    opened.close()


def test_a_column_null_in_the_first_thousands_of_rows_keeps_its_type(store):
    # The ADBC driver types a column from the rows it reads first; NULL there must not make it a number.
    spec = JobSpec.from_user(now=NOW, default_tz="UTC", name="sync", service="api.hello", every="1s")
    job = StoredJob(uid=uuid.uuid4().hex, spec=spec, state=JobState(next_fire=NOW, created_at=NOW))
    store.add_job(job)
    base = {"job": "sync", "service": "api.hello", "trigger": "schedule", "attempt": 1, "runner": "test:1"}
    runs = [
        {**base, "cid": f"{i:024x}", "status": "ok", "scheduled_at": NOW + timedelta(seconds=i), "delay_ms": 1.5}
        for i in range(3000)
    ]
    runs.insert(0, {**base, "cid": "e" * 24, "status": "error", "scheduled_at": NOW - timedelta(hours=1)})
    runs[0].update(error="ValueError: late text", traceback="Traceback ...", delay_ms=None)
    store.add_runs(runs)  # the oldest run (read last, newest first) is the only one with text in error

    table = _served(store, RunQuery())

    assert table.num_rows == 3001
    assert table.schema.field("error").type == pa.string()
    assert table.schema.field("scheduled_at").type == pa.timestamp("us", tz="UTC")
    last = table.slice(3000).to_pylist()[0]
    assert last["error"] == "ValueError: late text" and last["traceback"] == "Traceback ..."
    assert last["delay_ms"] is None and last["status"] == "error"
    assert last["scheduled_at"] == NOW - timedelta(hours=1)
    assert table.column("delay_ms").to_pylist()[:3] == [1.5, 1.5, 1.5]


@pytest.mark.parametrize("limit", [None, 3001])
def test_a_column_null_in_the_first_rows_of_each_short_query_keeps_its_type(tmp_path, monkeypatch, limit):
    # The child sizes the driver's first batch, from which it types the columns, to a query's most rows: the
    # ids it spans, or its limit. The only text in error is in the middle of the last query's rows.
    monkeypatch.setattr(sqlite_history, "BULK_ROWS", 100)
    monkeypatch.setattr(sqlite_history, "CHILD_QUERY_IDS", 1000)
    store = SQLiteStore(tmp_path / "nbsched.db")
    base = {"job": "sync", "service": "s", "trigger": "schedule", "attempt": 1, "status": "ok", "runner": "test:1"}
    runs = [{**base, "cid": f"{i:024x}", "scheduled_at": NOW + timedelta(seconds=i)} for i in range(3001)]
    runs[500].update(status="error", error="ValueError: late text")
    store.add_runs(runs)

    table = _served(store, RunQuery(limit=limit))
    store.close()

    assert table.num_rows == 3001
    assert table.schema.field("error").type == pa.string()
    assert table.column("error").drop_null().to_pylist() == ["ValueError: late text"]
    assert table.column("run_id").to_pylist() == list(range(3001, 0, -1))


def test_the_span_of_run_ids_and_the_first_run_of_a_window_are_found_without_reading_every_run(tmp_path):
    # SQLite looks MIN(run_id) or MAX(run_id) up at one end of the ids only when it is a query's one aggregate.
    store = SQLiteStore(tmp_path / "nbsched.db")
    base = {"job": "sync", "service": "s", "trigger": "schedule", "attempt": 1, "status": "ok", "runner": "test:1"}
    store.add_runs([{**base, "cid": f"{i:024x}", "scheduled_at": NOW + timedelta(minutes=i)} for i in range(5000)])
    with store.history() as history:
        steps = []
        history.db.set_progress_handler(lambda: steps.append(1), 1)  # once per SQLite instruction
        more = history._more_runs_than(4000, RunQuery())
        counts = history.minute_counts(NOW + timedelta(minutes=4990))
        history.db.set_progress_handler(None, 1)
    store.close()

    assert more and sum(count for _, _, count in counts) == 10
    assert len(steps) < 2000  # reading each of the 5,000 runs would take several instructions per run


@pytest.mark.parametrize(("query", "rows"), [({"limit": 150}, 150), ({}, 400), ({"status": "ok"}, 200)])
def test_the_default_arrow_table_of_a_store_matches_the_sqlite_one(store, query, rows):
    # Without a limit the child reads two halves of the run ids at once; with a limit, one query.
    runs = [
        {"cid": "a" * 24, "job": None, "service": "s", "trigger": "invoke", "attempt": 1, "status": "running"},
        {"cid": "b" * 24, "job": "j", "service": "s", "trigger": "manual", "attempt": 2, "status": "ok"},
    ]
    store.add_runs(runs * 200)
    native = _served(store, RunQuery(**query))
    default = _table(History(store).arrow(RunQuery(**query)))  # what a store without its own reader sends
    assert native.num_rows == rows
    assert native.column("run_id").to_pylist() == sorted(native.column("run_id").to_pylist(), reverse=True)
    assert native.to_pylist() == default.to_pylist()
    assert native.schema.equals(default.schema)


def test_client_history_equals_the_json_rows_with_every_filter(client):
    client.deploy(MIXED_SERVICE)
    ids = [client.invoke("test.mixed", extra) for extra in ("ok", "fail", "ok", "fail", "ok")]
    for run_id in ids:
        client.wait(run_id)
    client.schedule("test.mixed", name="mixed", every="1h", start="2099-01-01T00:00:00Z")
    client.execute("mixed")
    wait_until(lambda: (client.history(job="mixed")["status"] != "running").all(), what="the manual run ended")

    for filters in ({}, {"status": "error"}, {"service": "test.mixed", "limit": 3}, {"job": "mixed"}, {"since": "1h"}):
        frame = client.history(**filters)
        rows = client.history_rows(**filters)
        assert list(frame.columns) == rows["columns"]
        assert len(frame) == len(rows["rows"]) > 0, filters
        for record, row in zip(frame.to_dict("records"), rows["rows"], strict=True):
            for name, value in zip(rows["columns"], row, strict=True):
                got = record[name]
                if name.endswith("_at"):
                    assert (
                        got is None
                        or got != got
                        or got.isoformat() == datetime.fromisoformat(value).astimezone(got.tzinfo).isoformat()
                    ), (name, got, value)
                elif value is None:
                    assert got is None or (isinstance(got, float) and math.isnan(got)), (name, got)
                else:
                    assert got == value, (name, got, value)
    errors = client.history(status="error")
    assert set(errors["error"]) == {"ValueError: asked to fail"}
    assert errors["traceback"].str.contains("asked to fail").all()
    assert str(errors["started_at"].dt.tz) == client.tz


@pytest.mark.parametrize("tz", ["UTC", "Europe/Warsaw", "America/New_York"])
def test_a_frame_from_arrow_has_plain_text_and_the_users_zone_as_pandas_would_convert_it(tz):
    from nbsched.client.frames import RUN_TIME_COLUMNS, from_arrow
    from nbsched.store.history.arrow import arrow_stream, rows_table

    rows = [
        (i, f"{i:024x}", "sync", "api.hello", "v1", "schedule", 1, "ok", f"2026-03-29T0{i}:30:00+00:00",
         f"2026-03-29T0{i}:30:00.001500+00:00", None, 1.5, None, None, None, "out", "", "test:1", "u1")
        for i in range(4)
    ]  # fmt: skip
    sent = _table(arrow_stream(rows_table(rows)))
    assert not any(pa.types.is_dictionary(field.type) for field in sent.schema)  # pandas takes text as it is
    encoded = sent.set_column(2, "job", sent.column("job").dictionary_encode())  # as an older runner sends it

    for table in (sent, encoded):
        frame = from_arrow(table, tz, RUN_TIME_COLUMNS)
        expected = sent.to_pandas()
        for column in RUN_TIME_COLUMNS:
            expected[column] = expected[column].dt.tz_convert(tz)
        pd.testing.assert_frame_equal(frame, expected)
        assert frame["started_at"].dt.tz == expected["started_at"].dt.tz
        assert frame["started_at"][1].isoformat() == expected["started_at"][1].isoformat()


def test_a_value_of_another_type_in_a_row_is_cast_to_its_columns_type():
    from nbsched.store.history.arrow import empty_runs_schema, rows_table

    row = [7, "c" * 24, "sync", "s", "v1", "manual", 1, "ok", "2026-11-25T12:00:00+00:00", None, None, 2, None]
    table = rows_table([(*row, None, None, 42, "", "test:1", None)])  # delay_ms an int, output a number

    assert table.schema.equals(empty_runs_schema())
    assert table.to_pylist()[0]["output"] == "42" and table.to_pylist()[0]["delay_ms"] == 2.0
    assert table.to_pylist()[0]["scheduled_at"] == NOW


def _libraries_of(pid: int) -> set[str]:
    """The top-level Python packages whose compiled modules process ``pid`` has loaded."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split()[-1]
        if "/site-packages/" in path and path.endswith(".so"):
            found.add(path.split("/site-packages/")[1].split("/")[0])
    return found


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps (Linux)")
def test_the_runner_sends_history_as_arrow_without_loading_pandas(client):
    # The client builds the DataFrame; pandas in the runner would stay for its whole life (~47 MB).
    client.wait(client.invoke("api.hello", "x"))
    assert len(client.history()) == 1
    loaded = _libraries_of(client.ping()["pid"])
    assert "pyarrow" in loaded, loaded  # the Arrow reply was built in the runner
    assert "pandas" not in loaded, loaded


def test_an_unknown_history_format_is_refused_and_the_runner_goes_on(client):
    for bad in ("parquet", "", 3, ["arrow"], None):
        with pytest.raises(InvalidInput, match="history format"):
            client.call("history", format=bad)
    assert client.ping()["pid"] > 0
    assert client.history().empty


def test_the_history_child_reads_without_loading_numpy_or_pandas(tmp_path):
    # Loading numpy is half of pyarrow's import, and a first long read waits for the child to start.
    store = SQLiteStore(tmp_path / "nbsched.db")
    store.add_runs([{"cid": "a" * 24, "job": "j", "service": "s", "trigger": "manual", "attempt": 1, "status": "ok"}])
    store.close()
    queries = sqlite_history._id_ranges("", [], 0, 1, None)
    request = json.dumps({"path": str(tmp_path / "nbsched.db"), "queries": queries, "rows": 1, "file": None})
    run_child = (
        "import sys; from nbsched.store.history import child; child.main(); "
        "sys.stderr.write(repr(sorted({'numpy', 'pandas'} & set(sys.modules))))"
    )
    done = subprocess.run([sys.executable, "-c", run_child], input=request.encode(), capture_output=True, check=True)

    assert _table(done.stdout).column("cid").to_pylist() == ["a" * 24]
    assert done.stderr.decode().splitlines()[-1] == "[]"
