"""The storage contract (nbsched/store/base.py), run against every store implementation."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from nbsched.errors import JobExists, NbschedError
from nbsched.model.jobs import JobSpec, JobState
from nbsched.store import Claim, StoredJob
from nbsched.store.sqlite import SCHEMA_VERSION, SQLiteStore

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite"])
def store(request, tmp_path):
    opened = SQLiteStore(tmp_path / "nbsched.db")
    yield opened
    opened.close()


def new_job(name="sync", every="1m", **raw) -> StoredJob:
    spec = JobSpec.from_user(now=NOW, default_tz="UTC", name=name, service="api.hello", every=every, **raw)
    return StoredJob(uid=uuid.uuid4().hex, spec=spec, state=JobState(next_fire=NOW, created_at=NOW))


def run_row(job: StoredJob, scheduled_at: datetime, trigger="schedule", **fields) -> dict:
    row = {
        "cid": uuid.uuid4().hex,
        "job": job.spec.name,
        "service": job.spec.service,
        "trigger": trigger,
        "attempt": 1,
        "status": "running",
        "scheduled_at": scheduled_at,
        "runner": "test:1",
    }
    row.update(fields)
    return row


def claim_next(job: StoredJob, expected: datetime) -> Claim:
    return Claim(job.uid, expected, expected + timedelta(minutes=1), job.state.fires + 1, [run_row(job, expected)])


def test_jobs_round_trip(store):
    job = new_job(extra={"a": 1})
    store.add_job(job)
    loaded = store.job("sync")
    assert loaded.spec == job.spec
    assert loaded.state.next_fire == NOW
    assert [j.spec.name for j in store.jobs()] == ["sync"]


def test_a_second_job_with_the_same_name_is_refused_and_the_first_kept(store):
    store.add_job(new_job())
    with pytest.raises(JobExists, match="exists already"):
        store.add_job(new_job(every="5m"))
    assert store.job("sync").spec.every == 60


def test_delete_job_keeps_its_history(store):
    job = new_job()
    store.add_job(job)
    store.claim([claim_next(job, NOW)])
    assert store.delete_job("sync") is True
    assert store.delete_job("sync") is False
    assert len(store.runs(job="sync")) == 1


def test_a_fire_is_claimed_once_only(store):
    job = new_job()
    store.add_job(job)
    first = store.claim([claim_next(job, NOW)])
    second = store.claim([claim_next(job, NOW)])  # same expected next_fire: lost the race
    assert first[0] is not None and len(first[0]) == 1
    assert second == [None]
    stored = store.job("sync")
    assert stored.state.fires == 1
    assert stored.state.next_fire == NOW + timedelta(minutes=1)
    assert len(store.runs(job="sync")) == 1


def test_the_unique_key_stops_a_fire_claimed_twice_even_if_the_job_was_reset(store):
    job = new_job()
    store.add_job(job)
    store.claim([claim_next(job, NOW)])
    store.save_job(job)  # next_fire back to NOW, as a buggy writer might do
    assert store.claim([claim_next(job, NOW)]) == [None]
    assert len(store.runs(job="sync")) == 1
    assert store.job("sync").state.fires == 0  # the losing claim rolled back its advance of the job
    assert store.job("sync").state.next_fire == NOW


def test_claims_in_one_batch_succeed_or_fail_one_by_one(store):
    a, b = new_job("a"), new_job("b")
    store.add_job(a)
    store.add_job(b)
    results = store.claim([claim_next(a, NOW), claim_next(b, NOW - timedelta(minutes=5))])
    assert results[0] is not None and results[1] is None
    assert store.job("a").state.fires == 1 and store.job("b").state.fires == 0


def test_runs_are_filtered_and_newest_first(store):
    job = new_job()
    store.add_job(job)
    ids = store.add_runs(
        [run_row(job, NOW + timedelta(minutes=i), status="ok" if i % 2 else "error") for i in range(5)]
    )
    store.update_runs([{"run_id": ids[0], "status": "ok", "finished_at": NOW, "output": "done"}])
    rows = store.runs(job="sync")
    assert [row[0] for row in rows] == sorted(ids, reverse=True)
    assert len(store.runs(status="error")) == 2
    assert len(store.runs(limit=2)) == 2
    assert store.run(ids[0])["output"] == "done"
    assert store.run(ids[0])["finished_at"] == NOW
    assert store.run(10_000) is None


def test_interrupt_running_marks_only_running_runs(store):
    job = new_job()
    store.add_job(job)
    running, done = store.add_runs([run_row(job, NOW), run_row(job, NOW, status="ok")])
    assert store.interrupt_running(NOW) == 1
    assert store.run(running)["status"] == "interrupted"
    assert store.run(done)["status"] == "ok"


def test_sources_and_services(store):
    store.save_source("v1", "services/hello.py", "source one", {"api.hello": "Hello"}, NOW)
    store.save_source("v2", "services/hello.py", "source two", {"api.hello": "Hello"}, NOW)
    assert [(s["name"], s["version"]) for s in store.services()] == [("api.hello", "v2")]
    assert store.sources() == {"v2": "source two"}
    assert store.sources(["v1"]) == {"v1": "source one"}


def test_job_stats_count_runs_and_name_the_last_status(store):
    job = new_job()
    store.add_job(job)
    store.add_runs([run_row(job, NOW, status="ok"), run_row(job, NOW, status="error")])
    assert store.job_stats()["sync"]["runs"] == 2
    assert store.job_stats()["sync"]["last_status"] == "error"


def test_connections_round_trip(store):
    store.save_connection("My Data Source", "rest", {"address": "http://127.0.0.1:1"}, NOW)
    assert store.connections()[0]["definition"] == {"address": "http://127.0.0.1:1"}
    assert store.delete_connection("My Data Source") is True
    assert store.connections() == []


def test_sqlite_store_uses_wal_and_records_its_schema_version(tmp_path):
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
