"""The storage contract (nbsched/store/base.py), run against every store: one suite, a class per store.

``StoreContract`` holds the tests; each ``Test...Store`` subclass says how to open its store (as huey's
``StorageTests``). A new store (PostgreSQL) adds one subclass and passes the same tests.
"""

from __future__ import annotations

import io
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from nbsched.errors import InvalidInput, JobExists, NbschedError
from nbsched.model.jobs import JobSpec, JobState
from nbsched.model.runs import RUN_FIELDS
from nbsched.model.timeparse import iso
from nbsched.store import Claim, PendingRetry, Purge, RunQuery, Store, StoredJob, open_store
from nbsched.store.history import History
from nbsched.store.memory import MemoryStore
from nbsched.store.sqlite import SCHEMA_VERSION, SQLiteStore

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WARSAW = timezone(timedelta(hours=1))


def new_job(name="sync", every="1m", **raw) -> StoredJob:
    spec = JobSpec.from_user(now=NOW, default_tz="UTC", name=name, service="api.hello", every=every, **raw)
    return StoredJob(uid=uuid.uuid4().hex, spec=spec, state=JobState(next_fire=NOW, created_at=NOW))


def run_row(job: StoredJob | None, scheduled_at: datetime, trigger="schedule", **fields) -> dict:
    row = {
        "cid": uuid.uuid4().hex,
        "job": job.spec.name if job else None,
        "service": job.spec.service if job else "api.hello",
        "trigger": trigger,
        "attempt": 1,
        "status": "running",
        "scheduled_at": scheduled_at,
        "runner": "test:1",
    }
    row.update(fields)
    return row


def later_at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def claim_next(job: StoredJob, expected: datetime) -> Claim:
    return Claim(job.uid, expected, expected + timedelta(minutes=1), job.state.fires + 1, [run_row(job, expected)])


def retry_of(run_id: int, due_at: datetime) -> PendingRetry:
    return PendingRetry(run_id, "sync", "api.hello", 1, 3, NOW, due_at, "c1")


class StoreContract:
    """The tests every store passes. A subclass gives ``open``, and may add tests of its own store."""

    def open(self, tmp_path) -> Store:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path):
        opened = self.open(tmp_path)
        yield opened
        opened.close()

    # -- jobs -------------------------------------------------------------------
    def test_jobs_round_trip(self, store):
        job = new_job(extra={"a": [1, 2]})
        store.add_job(job)
        loaded = store.job("sync")
        assert (loaded.uid, loaded.spec, loaded.state) == (job.uid, job.spec, job.state)
        assert store.job("other") is None

    def test_jobs_are_listed_by_name(self, store):
        for name in ("b", "c", "a"):
            store.add_job(new_job(name))
        assert [job.spec.name for job in store.jobs()] == ["a", "b", "c"]

    def test_a_job_read_is_a_copy(self, store):
        job = new_job(extra={"a": 1})
        store.add_job(job)
        job.state.fires = 7  # nor is the job given kept by reference
        loaded = store.job("sync")
        loaded.state.fires = 99
        loaded.spec.extra["changed"] = True
        assert store.job("sync").state.fires == 0 and store.job("sync").spec.extra == {"a": 1}
        assert store.jobs()[0].state.fires == 0

    def test_a_second_job_with_the_same_name_is_refused_and_the_first_kept(self, store):
        store.add_job(new_job())
        with pytest.raises(JobExists, match="exists already"):
            store.add_job(new_job(every="5m"))
        assert store.job("sync").spec.every == 60

    def test_save_job_replaces_spec_and_state_of_the_job_with_its_uid(self, store):
        job = new_job()
        store.add_job(job)
        paused = StoredJob(job.uid, new_job(every="5m").spec, JobState(fires=3, next_fire=None, paused_note="why"))
        store.save_job(paused)
        loaded = store.job("sync")
        assert loaded.spec.every == 300
        assert (loaded.state.fires, loaded.state.next_fire, loaded.state.paused_note) == (3, None, "why")
        store.save_job(new_job())  # a uid the store does not have: nothing happens
        assert [j.uid for j in store.jobs()] == [job.uid]

    def test_times_come_back_in_utc(self, store):
        job = new_job()
        job.state.next_fire = datetime(2026, 11, 24, 13, 0, tzinfo=WARSAW)
        store.add_job(job)
        loaded = store.job("sync").state.next_fire
        assert loaded == NOW and loaded.utcoffset() == timedelta(0)

    def test_delete_job_keeps_its_history(self, store):
        job = new_job()
        store.add_job(job)
        store.claim([claim_next(job, NOW)])
        assert store.delete_job("sync") is True
        assert store.delete_job("sync") is False
        assert store.job("sync") is None
        assert len(store.runs(RunQuery(job="sync"))) == 1

    # -- claims -----------------------------------------------------------------
    def test_a_fire_is_claimed_once_only(self, store):
        job = new_job()
        store.add_job(job)
        first = store.claim([claim_next(job, NOW)])
        second = store.claim([claim_next(job, NOW)])  # same expected next_fire: lost the race
        assert first[0] is not None and len(first[0]) == 1
        assert second == [None]
        stored = store.job("sync")
        assert stored.state.fires == 1
        assert stored.state.next_fire == NOW + timedelta(minutes=1)
        assert stored.state.last_fire == NOW
        assert len(store.runs(RunQuery(job="sync"))) == 1

    def test_the_unique_key_stops_a_fire_claimed_twice_even_if_the_job_was_reset(self, store):
        job = new_job()
        store.add_job(job)
        store.claim([claim_next(job, NOW)])
        store.save_job(job)  # next_fire back to NOW, as a buggy writer might do
        assert store.claim([claim_next(job, NOW)]) == [None]
        assert len(store.runs(RunQuery(job="sync"))) == 1
        assert store.job("sync").state.fires == 0  # the losing claim rolled back its advance of the job
        assert store.job("sync").state.next_fire == NOW

    def test_claims_in_one_batch_succeed_or_fail_one_by_one(self, store):
        a, b, c = new_job("a"), new_job("b"), new_job("c")
        for job in (a, b, c):
            store.add_job(job)
        results = store.claim([claim_next(a, NOW), claim_next(b, NOW - timedelta(minutes=5)), claim_next(c, NOW)])
        assert results[0] is not None and results[1] is None and results[2] is not None
        assert [store.job(name).state.fires for name in "abc"] == [1, 0, 1]
        assert [row[2] for row in store.runs()] == ["c", "a"]

    def test_a_claim_of_a_deleted_job_loses(self, store):
        job = new_job()
        store.add_job(job)
        store.delete_job("sync")
        assert store.claim([claim_next(job, NOW)]) == [None]
        assert store.runs() == []

    def test_a_claim_records_all_its_runs_or_none(self, store):
        job = new_job(misfire="all")
        store.add_job(job)
        fires = [NOW + timedelta(minutes=i) for i in range(3)]
        missed = run_row(job, NOW - timedelta(minutes=9), "misfire", status="missed", finished_at=NOW)
        runs = [missed, *(run_row(job, fire, "misfire") for fire in fires)]
        (ids,) = store.claim([Claim(job.uid, NOW, NOW + timedelta(minutes=3), 3, runs)])
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert store.job("sync").state.last_fire == fires[-1]
        # A backfill (the job's next fire unchanged) of a window holding one of those fires loses whole.
        again = [run_row(job, fire, "misfire") for fire in (NOW + timedelta(hours=1), fires[1])]
        assert store.claim([Claim(job.uid, NOW + timedelta(minutes=3), NOW + timedelta(minutes=3), 3, again)]) == [None]
        assert len(store.runs()) == 4 and store.job("sync").state.fires == 3

    def test_a_claim_without_runs_moves_the_job_on_and_keeps_its_last_fire(self, store):
        job = new_job()
        store.add_job(job)
        store.claim([claim_next(job, NOW)])
        assert store.claim([Claim(job.uid, NOW + timedelta(minutes=1), NOW + timedelta(hours=1), 1)]) == [[]]
        state = store.job("sync").state
        assert (state.next_fire, state.last_fire) == (NOW + timedelta(hours=1), NOW)

    def test_other_runs_of_a_claimed_fire_are_recorded(self, store):
        job = new_job()
        store.add_job(job)
        ((first,),) = store.claim([claim_next(job, NOW)])
        retry, manual = store.add_runs(
            [run_row(job, NOW, attempt=2, job_uid=job.uid), run_row(job, NOW, "manual", job_uid=job.uid)]
        )
        assert first < retry < manual
        assert [row[0] for row in store.runs()] == [manual, retry, first]

    # -- runs -------------------------------------------------------------------
    def test_run_ids_grow_across_claims_and_added_runs(self, store):
        job = new_job()
        store.add_job(job)
        (a,) = store.add_runs([run_row(None, NOW, "invoke")])
        ((b,),) = store.claim([claim_next(job, NOW)])
        c, d = store.add_runs([run_row(job, NOW, "manual"), run_row(job, NOW, "manual")])
        assert a < b < c < d

    def test_many_runs_added_at_once_each_get_their_own_record_in_the_order_given(self, store):
        given = [run_row(None, NOW, "invoke", cid=f"c{i:04d}") for i in range(1000)]
        ids = store.add_runs(given)
        assert ids == sorted(set(ids)) and len(ids) == 1000
        assert [store.run(run_id)["cid"] for run_id in ids] == [run["cid"] for run in given]

    def test_runs_added_at_once_are_all_recorded_or_none_is(self, store):
        job = new_job()
        store.add_job(job)
        store.claim([claim_next(job, NOW)])
        twice = run_row(job, NOW, "schedule", job_uid=job.uid)  # the claimed fire's run again
        with pytest.raises(ValueError, match=r"claim fires with Store\.claim"):
            store.add_runs([run_row(None, NOW, "invoke"), twice])
        assert [run[RUN_FIELDS.index("trigger")] for run in store.runs()] == ["schedule"]

    def test_a_run_has_every_field_with_the_values_given(self, store):
        given = run_row(None, datetime(2026, 11, 24, 13, 0, tzinfo=WARSAW), "invoke", delay_ms=3, output="x")
        (run_id,) = store.add_runs([given])
        run = store.run(run_id)
        assert list(run) == list(RUN_FIELDS)
        assert run["run_id"] == run_id and run["job"] is None and run["error"] is None
        assert run["scheduled_at"] == NOW and run["scheduled_at"].utcoffset() == timedelta(0)
        assert run["delay_ms"] == 3.0 and isinstance(run["delay_ms"], float)
        assert (run["attempt"], run["status"], run["output"]) == (1, "running", "x")
        assert store.run(10_000) is None

    def test_runs_are_filtered_and_newest_first(self, store):
        job = new_job()
        store.add_job(job)
        ids = store.add_runs(
            [run_row(job, NOW + timedelta(minutes=i), status="ok" if i % 2 else "error") for i in range(5)]
        )
        store.add_runs([run_row(None, NOW, "invoke", service="other", status="ok")])
        rows = store.runs(RunQuery(job="sync"))
        assert [row[0] for row in rows] == sorted(ids, reverse=True)
        assert all(isinstance(row, tuple) and len(row) == len(RUN_FIELDS) for row in rows)
        assert len(store.runs(RunQuery(status="error"))) == 3
        assert len(store.runs(RunQuery(service="other"))) == 1
        assert len(store.runs(RunQuery(job="sync", status="ok"))) == 2
        assert [row[0] for row in store.runs(RunQuery(limit=2))] == [ids[-1] + 1, ids[-1]]
        assert store.runs(RunQuery(limit=0)) == []
        assert len(store.runs()) == 6

    def test_since_selects_by_start_or_for_runs_not_started_by_schedule(self, store):
        late = NOW + timedelta(hours=1)
        early_started_late, late_not_started, early = store.add_runs(
            [
                run_row(None, NOW, "invoke", started_at=late),
                run_row(None, late, "invoke"),
                run_row(None, NOW, "invoke", started_at=NOW),
            ]
        )
        selected = [row[0] for row in store.runs(RunQuery(since=late))]
        assert selected == [late_not_started, early_started_late]
        assert len(store.runs(RunQuery(since=NOW))) == 3 and early

    def test_as_of_leaves_out_runs_claimed_ahead_of_it(self, store):
        ahead, due, finished_ahead = store.add_runs(
            [
                run_row(None, NOW + timedelta(seconds=2), "invoke"),
                run_row(None, NOW, "invoke"),
                run_row(None, NOW + timedelta(seconds=2), "invoke", status="skipped"),
            ]
        )
        assert [row[0] for row in store.runs(RunQuery(as_of=NOW))] == [finished_ahead, due]
        assert [row[0] for row in store.runs(RunQuery(as_of=NOW + timedelta(seconds=2)))] == [
            finished_ahead,
            due,
            ahead,
        ]

    def test_updates_change_only_their_fields_of_existing_runs(self, store):
        first, second = store.add_runs([run_row(None, NOW, "invoke"), run_row(None, NOW, "invoke")])
        store.update_runs(
            [
                {"run_id": first, "status": "ok", "finished_at": NOW, "output": "done", "duration_ms": 2.5},
                {"run_id": 10_000, "status": "ok"},  # no such run: nothing happens
            ]
        )
        run = store.run(first)
        assert (run["status"], run["finished_at"], run["output"], run["duration_ms"]) == ("ok", NOW, "done", 2.5)
        assert run["cid"] is not None and store.run(second)["status"] == "running"
        assert store.run(10_000) is None

    def test_values_no_store_can_hold_as_they_are_are_kept_in_a_safe_form(self, store):
        (run_id,) = store.add_runs([run_row(None, NOW, "invoke", output="caf\udce9")])
        assert store.run(run_id)["output"] == "caf\\xe9"
        store.update_runs([{"run_id": run_id, "logs": "lone \ud800", "output": 2**70}])
        run = store.run(run_id)
        assert (run["logs"], run["output"]) == ("lone \\ud800", str(2**70))

    def test_retries_are_recorded_with_updates_and_removed_when_started(self, store):
        a, b = store.add_runs([run_row(None, NOW, "invoke"), run_row(None, NOW, "invoke")])
        later, sooner = retry_of(a, NOW + timedelta(minutes=5)), retry_of(b, NOW + timedelta(minutes=1))
        store.update_runs([{"run_id": a, "status": "error"}], [later, sooner])
        assert store.pending_retries() == [sooner, later]
        moved = retry_of(a, NOW)
        store.update_runs([], [moved])  # a run's retry replaces the one it had
        assert store.pending_retries() == [moved, sooner]
        (attempt,) = store.add_runs([run_row(None, NOW, "retry", attempt=2)], retried=[a])
        assert store.pending_retries() == [sooner] and store.run(attempt)["attempt"] == 2

    def test_interrupt_running_marks_only_running_runs_of_the_runner_asked(self, store):
        mine, done, other = store.add_runs(
            [run_row(None, NOW, "invoke"), run_row(None, NOW, "invoke", status="ok"), run_row(None, NOW, "invoke")]
        )
        store.update_runs([{"run_id": other, "runner": "other:2"}])
        assert store.interrupt_running(NOW, runner="test:1") == 1
        run = store.run(mine)
        assert (run["status"], run["finished_at"]) == ("interrupted", NOW)
        assert "runner stopped" in run["error"]
        assert store.run(done)["status"] == "ok" and store.run(other)["status"] == "running"
        assert store.interrupt_running(NOW) == 1 and store.run(other)["status"] == "interrupted"

    def test_delete_runs_deletes_finished_runs_oldest_first_in_batches_never_a_running_one(self, store):
        job = new_job()
        store.add_job(job)
        finished = [later_at(i) for i in range(5)]
        ids = store.add_runs(
            [
                run_row(job, NOW, "manual", status="ok", finished_at=at, job_uid=job.uid, output=f"o{i}")
                for i, at in enumerate(finished)
            ]
            + [run_row(job, NOW, "manual", job_uid=job.uid)]
        )
        first = store.delete_runs(Purge(job="sync"), limit=2)
        assert [(run.run_id, run.job, run.output) for run in first] == [(ids[0], "sync", "o0"), (ids[1], "sync", "o1")]
        rest = store.delete_runs(Purge(job="sync"), limit=10)
        assert [run.run_id for run in rest] == ids[2:5]
        assert [row[0] for row in store.runs()] == [ids[5]] and store.run(ids[0]) is None
        assert store.delete_runs(Purge(), limit=10) == []

    def test_delete_runs_before_a_time_and_keeping_the_newest(self, store):
        a, b = new_job("a"), new_job("b")
        store.add_job(a)
        store.add_job(b)
        a_ids = store.add_runs(
            [run_row(a, NOW, "manual", status="error", finished_at=later_at(i), job_uid=a.uid) for i in range(4)]
        )
        (b_id,) = store.add_runs([run_row(b, NOW, "manual", status="ok", finished_at=later_at(0), job_uid=b.uid)])
        (skipped,) = store.add_runs([run_row(None, later_at(-5), "invoke", status="skipped")])  # no finish time
        old = store.delete_runs(Purge(before=later_at(1)), limit=100)
        assert sorted(run.run_id for run in old) == sorted([a_ids[0], b_id, skipped])
        kept = store.delete_runs(Purge(job="a", job_uid=a.uid, keep=2), limit=100)
        assert [run.run_id for run in kept] == [a_ids[1]]
        assert store.delete_runs(Purge(job="a", keep=2), limit=100) == []
        assert [row[0] for row in store.runs()] == [a_ids[3], a_ids[2]]
        assert store.delete_runs(Purge(job="a", keep=5), limit=100) == []

    def test_job_stats_count_runs_and_name_the_last_status(self, store):
        job = new_job()
        store.add_job(job)
        started = NOW + timedelta(seconds=3)
        ok = run_row(job, NOW, "manual", status="ok", job_uid=job.uid)
        store.add_runs([ok, run_row(job, NOW, "manual", status="error", started_at=started, job_uid=job.uid)])
        store.add_runs([run_row(None, NOW, "invoke")])
        assert store.job_stats() == {job.uid: {"runs": 2, "last_status": "error", "last_run": started}}

    def test_a_job_made_under_a_deleted_jobs_name_has_no_runs_of_its_own_yet(self, store):
        old = new_job()
        store.add_job(old)
        store.claim([claim_next(old, NOW)])
        store.add_runs([run_row(old, NOW, "manual", status="ok", job_uid=old.uid)])
        store.delete_job("sync")
        new = new_job()
        store.add_job(new)
        assert set(store.job_stats()) == {old.uid}
        assert store.claim([claim_next(new, NOW)])[0] is not None  # the same fire time: another job, another fire
        assert store.job_stats()[new.uid] == {"runs": 1, "last_status": "running", "last_run": NOW}
        assert store.job_stats()[old.uid]["runs"] == 2

    def test_runs_carry_their_jobs_uid_and_are_selected_by_it(self, store):
        old, new = new_job(), new_job()
        store.add_job(old)
        (first,) = store.claim([claim_next(old, NOW)])[0]
        store.delete_job("sync")
        store.add_job(new)
        (second,) = store.add_runs([run_row(new, NOW, "manual", job_uid=new.uid)])
        assert (store.run(first)["job_uid"], store.run(second)["job_uid"]) == (old.uid, new.uid)
        uid_at = RUN_FIELDS.index("job_uid")
        assert [row[uid_at] for row in store.runs(RunQuery(job="sync"))] == [new.uid, old.uid]
        assert [row[0] for row in store.runs(RunQuery(job="sync", job_uid=old.uid))] == [first]
        with store.history() as history:
            assert [row[0] for row in history.rows(RunQuery(job_uid=new.uid))] == [second]
            table = pa.ipc.open_stream(history.arrow(RunQuery(job="sync"))).read_all()
        assert table.column("job_uid").cast(pa.string()).to_pylist() == [new.uid, old.uid]

    def test_runs_copied_in_keep_their_ids_and_later_runs_get_higher_ones(self, store):
        job = new_job()
        store.add_job(job)
        copied = [
            {**run_row(job, NOW), "run_id": 7, "job_uid": job.uid},
            {**run_row(None, NOW, "invoke"), "run_id": 40},
        ]
        store.load_runs(copied)
        assert [row[0] for row in store.runs()] == [40, 7]
        assert store.run(7)["scheduled_at"] == NOW and store.run(40)["trigger"] == "invoke"
        assert store.claim([claim_next(job, NOW)]) == [None]  # the copied run keeps its fire
        assert store.add_runs([run_row(None, NOW, "invoke")]) == [41]

    # -- services and connections -----------------------------------------------
    def test_sources_and_services(self, store):
        store.save_source("v1", "services/hello.py", "source one", {"api.hello": "Hello"}, NOW)
        store.save_source("v2", "services/hello.py", "source two", {"api.hello": "Hello", "api.b": "B"}, NOW)
        store.save_source("v1", "elsewhere.py", "changed", {"api.c": "C"}, NOW)  # a version keeps its source
        services = store.services()
        assert [(s["name"], s["version"], s["class_name"]) for s in services] == [
            ("api.b", "v2", "B"),
            ("api.c", "v1", "C"),
            ("api.hello", "v2", "Hello"),
        ]
        assert services[1]["origin"] == "services/hello.py" and services[1]["deployed_at"] == NOW.isoformat()
        assert store.sources() == {"v1": "source one", "v2": "source two"}
        assert store.sources(["v1", "v9"]) == {"v1": "source one"}

    def test_connections_round_trip(self, store):
        store.save_connection("My Data Source", "rest", {"address": "http://127.0.0.1:1"}, NOW)
        store.save_connection("Mail", "smtp", {"host": "localhost", "port": 25}, NOW)
        store.save_connection("My Data Source", "rest", {"address": "http://127.0.0.1:2"}, NOW)
        assert store.connections() == [
            {"name": "Mail", "kind": "smtp", "definition": {"host": "localhost", "port": 25}, "updated_at": NOW},
            {
                "name": "My Data Source",
                "kind": "rest",
                "definition": {"address": "http://127.0.0.1:2"},
                "updated_at": NOW,
            },
        ]
        assert store.delete_connection("My Data Source") is True
        assert store.delete_connection("My Data Source") is False
        assert [c["name"] for c in store.connections()] == ["Mail"]

    # -- history ----------------------------------------------------------------
    def test_history_rows_carry_times_as_utc_iso_text(self, store):
        job = new_job()
        store.add_job(job)
        ids = store.add_runs([run_row(job, NOW + timedelta(minutes=i), status="ok", delay_ms=1.5) for i in range(3)])
        store.add_runs([run_row(job, NOW + timedelta(hours=1))])  # claimed ahead of the listing
        query = RunQuery(job="sync", as_of=NOW + timedelta(minutes=30))
        with store.history() as history:
            rows = history.rows(query)
        assert [row[0] for row in rows] == sorted(ids, reverse=True)
        expected = [
            tuple(value.isoformat() if isinstance(value, datetime) else value for value in row)
            for row in store.runs(query)
        ]
        assert rows == expected
        assert rows[0][RUN_FIELDS.index("scheduled_at")] == "2026-11-24T12:02:00+00:00"

    def test_history_as_arrow_holds_the_same_runs_typed(self, store):
        store.add_runs([run_row(None, NOW + timedelta(minutes=i), "invoke", attempt=i + 1) for i in range(3)])
        query = RunQuery(limit=2)
        with store.history() as history:
            table = pa.ipc.open_stream(io.BytesIO(bytes(history.arrow(query)))).read_all()
        generic = pa.ipc.open_stream(io.BytesIO(bytes(History(store).arrow(query)))).read_all()
        assert table.column_names == list(RUN_FIELDS)
        assert table.schema.field("scheduled_at").type == pa.timestamp("us", tz="UTC")
        assert table.column("attempt").to_pylist() == [3, 2]
        assert table.column("scheduled_at").to_pylist() == [NOW + timedelta(minutes=2), NOW + timedelta(minutes=1)]
        assert table.equals(generic)

    def test_a_listing_pages_with_an_offset_and_comes_in_chunks(self, store):
        ids = store.add_runs([run_row(None, NOW + timedelta(minutes=i), "invoke", status="ok") for i in range(5)])
        newest_first = sorted(ids, reverse=True)
        with store.history() as history:
            page = [row[0] for row in history.rows(RunQuery(limit=2, offset=1))]
            rest = [row[0] for row in history.rows(RunQuery(offset=3))]
            chunks = [[row[0] for row in chunk] for chunk in history.row_chunks(RunQuery(), 2)]
            table = pa.ipc.open_stream(io.BytesIO(bytes(history.arrow(RunQuery(limit=2, offset=3))))).read_all()
        assert (page, rest) == (newest_first[1:3], newest_first[3:])
        assert chunks == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
        assert table.column("run_id").to_pylist() == newest_first[3:5]
        assert [row[0] for row in store.runs(RunQuery(limit=1, offset=4))] == newest_first[4:]

    def test_runs_are_counted_per_minute_and_status_from_a_time_on(self, store):
        started = [NOW + timedelta(seconds=s) for s in (5, 30, 70, 200)]
        ids = store.add_runs([run_row(None, at, "invoke") for at in started])
        statuses = ["ok", "error", "ok", "ok"]
        store.update_runs(
            [{"run_id": i, "status": st, "started_at": at} for i, st, at in zip(ids, statuses, started, strict=True)]
        )
        store.add_runs([run_row(None, NOW + timedelta(seconds=80), "invoke")])  # running, not started: its due time
        with store.history() as history:
            counts = sorted(history.minute_counts(NOW + timedelta(minutes=1)))
            running = history.oldest_running()
        assert counts == [
            ("2026-11-24T12:01", "ok", 1),
            ("2026-11-24T12:01", "running", 1),
            ("2026-11-24T12:03", "ok", 1),
        ]
        assert running == NOW + timedelta(seconds=80)


class DurableStore:
    """What a store on disk or on a server passes besides the contract: it outlives the object that wrote it."""

    def test_what_it_holds_outlives_it(self, tmp_path):
        store = self.open(tmp_path)
        store.add_job(new_job())
        store.close()
        reopened = self.open(tmp_path)
        assert [job.spec.name for job in reopened.jobs()] == ["sync"]
        reopened.close()


class TestSQLiteStore(DurableStore, StoreContract):
    def open(self, tmp_path) -> Store:
        return SQLiteStore(tmp_path / "nbsched.db")

    def test_it_uses_wal_and_records_its_schema_version(self, tmp_path):
        path = tmp_path / "nbsched.db"
        SQLiteStore(path).close()
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
        db.commit()
        db.close()
        with pytest.raises(NbschedError, match="newer than this nbsched understands"):
            SQLiteStore(path)

    def test_a_claim_rewrites_the_jobs_state_row_not_its_definition(self, tmp_path):
        store = SQLiteStore(tmp_path / "nbsched.db")
        job = new_job()
        store.add_job(job)
        before = store.db.execute("SELECT * FROM jobs").fetchall()
        assert store.claim([claim_next(job, NOW)]) == [[1]]
        assert store.db.execute("SELECT * FROM jobs").fetchall() == before  # its spec's row is not written
        state = store.job("sync").state
        assert (state.next_fire, state.fires, state.last_fire) == (NOW + timedelta(minutes=1), 1, NOW)
        assert store.claim([claim_next(job, NOW)]) == [None]  # the state row still guards the fire
        store.delete_job("sync")
        assert store.db.execute("SELECT COUNT(*) FROM job_state").fetchone() == (0,)
        store.close()

    def test_a_version_1_store_gets_its_jobs_state_on_opening(self, tmp_path):
        path = tmp_path / "nbsched.db"
        store = SQLiteStore(path)
        job = new_job()
        store.add_job(job)
        store.claim([claim_next(job, NOW)])
        # As nbsched with schema version 1 left it: the state in the jobs' rows, no job_state table.
        store.db.execute(
            "UPDATE jobs SET fires=1, next_fire=?, last_fire=?", (iso(NOW + timedelta(minutes=1)), iso(NOW))
        )
        store.db.executescript(
            "DROP TRIGGER job_state_added; DROP TRIGGER job_state_saved; DROP TRIGGER job_state_deleted;"
            "DROP TABLE job_state; UPDATE meta SET value='1' WHERE key='schema_version';"
        )
        store.close()
        reopened = SQLiteStore(path)
        state = reopened.job("sync").state
        assert (state.next_fire, state.fires, state.last_fire) == (NOW + timedelta(minutes=1), 1, NOW)
        assert reopened.claim([claim_next(reopened.job("sync"), NOW + timedelta(minutes=1))]) == [[2]]
        version = reopened.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),) == ("2",)
        reopened.close()

    def test_runs_recorded_before_runs_carried_their_job_uid_get_the_uid_of_the_job_they_were_run_by(self, tmp_path):
        path = tmp_path / "nbsched.db"
        store = SQLiteStore(path)
        job = new_job()  # made at NOW
        store.add_job(job)
        earlier, later = store.add_runs(
            [run_row(job, NOW - timedelta(hours=1), "manual"), run_row(job, NOW + timedelta(minutes=1), "manual")]
        )
        store.db.execute("DELETE FROM meta WHERE key='runs_job_uid'")  # as a store of nbsched 0.2 left it
        store.close()
        reopened = SQLiteStore(path)
        assert (reopened.run(earlier)["job_uid"], reopened.run(later)["job_uid"]) == (None, job.uid)
        assert reopened.job_stats() == {job.uid: {"runs": 1, "last_status": "running", "last_run": later_at(1)}}
        reopened.close()


class TestPostgresStore(DurableStore, StoreContract):
    """The contract on PostgreSQL: each test on a schema of its own in the session's database."""

    @pytest.fixture(autouse=True)
    def _schema(self, pg_url):
        self.url = pg_url

    def open(self, tmp_path) -> Store:
        return open_store(self.url)


class TestMemoryStore(StoreContract):
    def open(self, tmp_path) -> Store:
        return open_store("memory://")


def test_open_store_opens_the_store_a_url_names(tmp_path):
    sqlite_store = open_store(f"sqlite:///{tmp_path / 'nbsched.db'}")
    assert isinstance(sqlite_store, SQLiteStore)
    sqlite_store.close()
    assert isinstance(open_store("memory://"), MemoryStore)
    assert open_store("memory://") is not open_store("memory://")
    with pytest.raises(InvalidInput, match=r"Unsupported NBSCHED_STORE 'redis://x'.*sqlite:////absolute/path"):
        open_store("redis://x")
    with pytest.raises(InvalidInput, match=r"redis://u:\*\*\*@h.*sqlite:///.*postgresql://.*memory://"):
        open_store("redis://u:secret@h/0")
