"""What only the PostgreSQL store does: claims by several runners at once, leases and fences, take-overs,
notifications, its schema's versions, Arrow straight from the server, a runner on it, and copying a home into it.

The contract every store keeps runs on it in tests/test_store.py (``TestPostgresStore``).
"""

from __future__ import annotations

import io
import queue
import threading
import time
from datetime import timedelta

import pyarrow as pa
import pytest
from conftest import HELLO_SERVICE, run_cli, wait_until
from test_store import NOW, claim_next, new_job, retry_of, run_row

import nbsched
from nbsched.errors import Fenced, InvalidInput, NbschedError, RetryStarted, StoreError
from nbsched.model.runs import RUN_FIELDS
from nbsched.store import RunQuery, open_store
from nbsched.store.sqlite import SQLiteStore

pytestmark = pytest.mark.postgres
DEAD = "dead-host:1"


@pytest.fixture
def store(pg_url):
    opened = open_store(pg_url)
    yield opened
    opened.close()


@pytest.fixture
def other(pg_url, store):
    """A second store object on the same schema: what a second runner has."""
    opened = open_store(pg_url)
    yield opened
    opened.close()


def schema_of(url: str) -> str:
    return url.rpartition("schema=")[2]


def at_once(*calls):
    """Run each call in a thread of its own, started together; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


# -- claims by two runners ------------------------------------------------------------
def test_two_runners_claiming_the_same_fires_at_once_get_each_fire_once(store, other):
    jobs = [new_job(f"job{i}") for i in range(30)]
    for job in jobs:
        store.add_job(job)
    for _ in range(5):
        claims = [claim_next(job, store.job(job.spec.name).state.next_fire) for job in jobs]
        mine, theirs = at_once(lambda claims=claims: store.claim(claims), lambda claims=claims: other.claim(claims))
        assert [(a is None) != (b is None) for a, b in zip(mine, theirs, strict=True)] == [True] * len(jobs)
    assert all(job.state.next_fire == NOW + timedelta(minutes=5) for job in store.jobs())
    assert len(store.runs()) == 5 * len(jobs)


def test_a_job_row_another_transaction_holds_is_a_lost_claim_not_a_wait(store, pg_url, pg_admin):
    job = new_job()
    store.add_job(job)
    with pg_admin.transaction():
        pg_admin.execute(f"SELECT 1 FROM {schema_of(pg_url)}.jobs WHERE uid = %s FOR UPDATE", [job.uid])
        started = time.monotonic()
        assert store.claim([claim_next(job, NOW)]) == [None]
        assert time.monotonic() - started < 1
    assert store.claim([claim_next(job, NOW)])[0] is not None


# -- leases and fences ------------------------------------------------------------------
def test_a_lease_is_renewed_with_its_token_and_new_ones_get_higher_tokens(store):
    token = store.lease("a:1", None, 30)
    assert store.lease("a:1", token, 30) == token
    assert store.lease("b:2", None, 30) > token
    assert store.shared is True


def test_runners_are_those_with_a_live_lease_and_a_released_lease_is_taken_over(store, other):
    a = store.lease("a:1", None, 30)
    other.lease("b:2", None, 30)
    assert store.runners() == ["a:1", "b:2"]
    store.release_lease("a:1", a)
    assert other.runners() == ["b:2"]
    assert other.take_over("b:2", NOW).dead == ["a:1"]  # what a stopping runner leaves goes to another


def test_renewing_a_lapsed_lease_raises_fenced(store):
    token = store.lease("a:1", None, 0)  # expires at once
    with pytest.raises(Fenced, match="a:1 lost its lease"):
        store.lease("a:1", token, 30)
    store.release_lease("a:1", token)


def test_a_fenced_store_writes_no_runs_once_its_lease_lapsed(store, other):
    job = new_job()
    store.add_job(job)
    (run_id,) = store.add_runs([run_row(job, NOW, "manual")])
    token = store.lease("test:1", None, 30)
    store.set_fence("test:1", token)
    store.update_runs([{"run_id": run_id, "output": "while leased"}])
    other.lease("test:1", None, 30)  # another runner took the name over: the token is no longer the lease's
    with pytest.raises(Fenced, match="lost its lease"):
        store.update_runs([{"run_id": run_id, "status": "ok", "output": "late"}], [retry_of(run_id, NOW)])
    with pytest.raises(Fenced):
        store.claim([claim_next(job, NOW)])
    with pytest.raises(Fenced):
        store.add_runs([run_row(job, NOW, "manual")])
    assert (store.run(run_id)["status"], store.run(run_id)["output"]) == ("running", "while leased")
    assert store.pending_retries() == [] and store.job("sync").state.fires == 0 and len(store.runs()) == 1
    store.set_fence(None, None)
    assert store.claim([claim_next(job, NOW)])[0] is not None


def test_a_stored_retry_is_started_by_one_runner_only(store, other):
    job = new_job()
    store.add_job(job)
    (failed,) = store.add_runs([run_row(job, NOW, "manual")])
    store.update_runs([{"run_id": failed, "status": "error", "finished_at": NOW}], [retry_of(failed, NOW)])
    assert other.add_runs([run_row(job, NOW, "retry", attempt=2)], retried=[failed])
    with pytest.raises(RetryStarted, match="started by another runner"):
        store.add_runs([run_row(job, NOW, "retry", attempt=2)], retried=[failed])
    assert [run[RUN_FIELDS.index("trigger")] for run in store.runs()] == ["retry", "manual"]


def test_take_over_interrupts_past_runs_and_hands_future_ones_over_once(store, other):
    job = new_job()
    store.add_job(job)
    token = store.lease(DEAD, None, 0)  # a runner that stopped renewing
    past, future, done, alive = store.add_runs(
        [
            run_row(job, NOW - timedelta(seconds=5), "manual", runner=DEAD),
            run_row(job, NOW + timedelta(minutes=1), "manual", runner=DEAD),
            run_row(job, NOW - timedelta(seconds=5), "manual", runner=DEAD, status="ok"),
            run_row(job, NOW - timedelta(seconds=5), "manual", runner="alive:2"),
        ]
    )
    store.lease("alive:2", None, 60)
    first, second = at_once(lambda: store.take_over("me:3", NOW), lambda: other.take_over("you:4", NOW))
    took, idle = (first, second) if first.dead else (second, first)
    assert (took.dead, idle.dead, idle.interrupted, idle.reassigned) == ([DEAD], [], [], [])
    assert [run["run_id"] for run in took.interrupted] == [past]
    assert [run["run_id"] for run in took.reassigned] == [future]
    interrupted = store.run(past)
    assert (interrupted["status"], interrupted["finished_at"]) == ("interrupted", NOW)
    assert f"runner {DEAD} stopped renewing its lease" in interrupted["error"]
    assert took.interrupted[0] == interrupted and list(took.interrupted[0]) == list(RUN_FIELDS)
    taker = "me:3" if took is first else "you:4"
    assert (store.run(future)["status"], store.run(future)["runner"]) == ("running", taker)
    assert store.run(done)["status"] == "ok" and store.run(alive)["status"] == "running"
    assert store.take_over("me:3", NOW).dead == []
    with pytest.raises(Fenced):
        store.lease(DEAD, token, 30)


def test_stores_of_one_runner_have_leases_that_do_nothing(tmp_path):
    sqlite_store = SQLiteStore(tmp_path / "nbsched.db")
    assert sqlite_store.shared is False and sqlite_store.lease("a:1", None, 5) == 1
    sqlite_store.set_fence("a:1", 1)
    sqlite_store.add_runs([run_row(None, NOW, "invoke")])  # no lease to check
    assert sqlite_store.take_over("a:1", NOW).dead == []
    sqlite_store.subscribe(print)()
    sqlite_store.close()


# -- notifications ----------------------------------------------------------------------
def test_a_published_change_reaches_subscribers_and_a_lost_connection_asks_for_a_reload(store, other, pg_url, pg_admin):
    received: queue.Queue[str] = queue.Queue()
    stop = store.subscribe(received.put)
    try:
        other.publish("job:sync")
        assert received.get(timeout=1) == "job:sync"
        killed = pg_admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
            [f'LISTEN "{schema_of(pg_url)}_changes"'],
        ).fetchall()
        assert killed == [(True,)]
        assert received.get(timeout=5) == "*reload"
        other.publish("job:other")
        assert received.get(timeout=1) == "job:other"
    finally:
        stop()
    other.publish("after")
    with pytest.raises(queue.Empty):
        received.get(timeout=0.3)


# -- the schema ---------------------------------------------------------------------------
def test_a_schema_newer_than_this_nbsched_is_refused(store, pg_url, pg_admin):
    pg_admin.execute(f"UPDATE {schema_of(pg_url)}.meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(NbschedError, match="schema version 999, newer than this nbsched understands"):
        open_store(pg_url)


def test_an_older_schema_is_migrated_on_open(store, pg_url, pg_admin, monkeypatch):
    import nbsched.store.postgres as postgres

    newer = postgres.SCHEMA_VERSION + 1
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", newer)
    monkeypatch.setattr(postgres, "MIGRATIONS", {newer - 1: ["ALTER TABLE runs ADD COLUMN note text"]})
    open_store(pg_url).close()
    schema = schema_of(pg_url)
    (version,) = pg_admin.execute(f"SELECT value FROM {schema}.meta WHERE key = 'schema_version'").fetchone()
    columns = pg_admin.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'runs'", [schema]
    ).fetchall()
    assert version == str(newer) and ("note",) in columns


def test_a_version_1_schema_gets_the_job_uid_of_its_runs_filled_in(store, pg_url, pg_admin):
    job = new_job()  # made at NOW
    store.add_job(job)
    earlier, later = store.add_runs(
        [run_row(job, NOW - timedelta(hours=1), "manual"), run_row(job, NOW + timedelta(minutes=1), "manual")]
    )
    schema = schema_of(pg_url)
    pg_admin.execute(f"UPDATE {schema}.meta SET value = '1' WHERE key = 'schema_version'")
    pg_admin.execute(f"DROP INDEX {schema}.runs_by_job_uid")
    pg_admin.execute(f"CREATE INDEX runs_by_job ON {schema}.runs (job, run_id)")
    with _opened(pg_url) as migrated:
        assert (migrated.run(earlier)["job_uid"], migrated.run(later)["job_uid"]) == (None, job.uid)
        assert migrated.job_stats()[job.uid]["runs"] == 1


def test_several_processes_opening_a_new_schema_at_once_all_succeed(pg_url):
    stores = at_once(*[lambda: open_store(pg_url)] * 4)
    assert all(opened.jobs() == [] for opened in stores)
    for opened in stores:
        opened.close()


def test_postgres_urls_of_either_scheme_open_the_schema_they_name(store, pg_url):
    store.add_job(new_job())
    with _opened(pg_url.replace("postgresql://", "postgres://", 1)) as same:
        assert [job.spec.name for job in same.jobs()] == ["sync"]
    with _opened(pg_url.rpartition("?")[0] + f"?schema={schema_of(pg_url)}_b") as elsewhere:
        assert elsewhere.jobs() == []


def test_a_schema_name_that_is_no_plain_identifier_is_refused(pg_database):
    with pytest.raises(InvalidInput, match=r"schema name 'x; drop table' .* \(e\.g\. \?schema=nbsched_team\)"):
        open_store(f"{pg_database}?schema=x; drop table")


def test_a_server_that_cannot_be_reached_is_named_without_its_password():
    with pytest.raises(StoreError, match=r"Cannot connect to the PostgreSQL store at 127\.0\.0\.1:1/db") as caught:
        open_store("postgresql://me:sekrit@127.0.0.1:1/db")
    assert "sekrit" not in str(caught.value)


# -- what PostgreSQL cannot hold, and a lost connection ------------------------------------
def test_a_nul_character_which_postgresql_text_cannot_hold_is_stored_escaped(store):
    (run_id,) = store.add_runs([run_row(None, NOW, "invoke", output="a\x00b")])
    store.update_runs([{"run_id": run_id, "logs": "c\x00d \udce9"}])
    run = store.run(run_id)
    assert (run["output"], run["logs"]) == ("a\\x00b", "c\\x00d \\xe9")


def test_a_lost_connection_fails_one_call_with_store_error_and_the_next_connects_again(store, pg_admin):
    job = new_job()
    store.add_job(job)
    pg_admin.execute("SELECT pg_terminate_backend(%s)", [store.db.info.backend_pid])
    with pytest.raises(StoreError, match=r"PostgreSQL store at \S+/nbsched_test_\w+ could not be used"):
        store.claim([claim_next(job, NOW)])
    assert store.claim([claim_next(job, NOW)])[0] is not None


# -- history --------------------------------------------------------------------------------
def test_history_as_arrow_is_what_the_sqlite_store_gives_for_the_same_runs(store, tmp_path):
    sqlite_store = SQLiteStore(tmp_path / "nbsched.db")
    job = new_job()
    runs = [
        run_row(job, NOW + timedelta(minutes=i), status="ok", started_at=NOW, delay_ms=i * 1.5, output="é ✓")
        for i in range(5)
    ]
    runs.append(run_row(None, NOW, "invoke", attempt=2, error="boom", traceback="tb", logs="line\nline"))
    for each in (store, sqlite_store):
        each.add_job(job)
        each.add_runs(runs)
    for query in (RunQuery(), RunQuery(job="sync", limit=3), RunQuery(status="nothing")):
        tables = []
        for each in (store, sqlite_store):
            with each.history() as history:
                tables.append(pa.ipc.open_stream(io.BytesIO(bytes(history.arrow(query)))).read_all())
        assert tables[0].schema == tables[1].schema
        assert tables[0].equals(tables[1]), query
    sqlite_store.close()


# -- a runner on PostgreSQL, and a home copied into it -------------------------------------
@pytest.mark.slow
def test_a_runner_on_postgresql_runs_jobs_and_invokes_and_gives_history_as_a_dataframe(home, pg_url, monkeypatch):
    monkeypatch.setenv("NBSCHED_STORE", pg_url)
    client = nbsched.connect()
    try:
        client.deploy(str(HELLO_SERVICE))
        client.schedule("api.hello", name="beat", every="1s")
        run_id = client.invoke("api.hello", extra={"who": "postgres"})
        assert client.wait(run_id, timeout=20)["status"] == "ok"
        wait_until(lambda: len(client.history(job="beat", status="ok")) >= 2, timeout=20, what="two fires")
        frame = client.history()
        assert {"beat"} <= set(frame["job"].dropna()) and run_id in set(frame["run_id"])
        assert str(frame["scheduled_at"].dtype).startswith("datetime64")
    finally:
        client.close()
    with _opened(pg_url) as stored:
        assert [job.spec.name for job in stored.jobs()] == ["beat"]


@pytest.mark.slow
def test_store_copy_moves_a_sqlite_home_to_postgresql_and_a_runner_sees_it(home, pg_url, monkeypatch):
    source = SQLiteStore(home / "nbsched.db")
    source.save_source("v1", "services/hello.py", HELLO_SERVICE.read_text(), {"api.hello": "Hello"}, NOW)
    job = new_job("daily", every="1d")
    source.add_job(job)
    ((first,),) = source.claim([claim_next(job, NOW)])
    source.update_runs([{"run_id": first, "status": "error", "finished_at": NOW}], [retry_of(first, NOW)])
    source.add_runs([run_row(None, NOW, "invoke", status="ok")])
    source.save_connection("Mail", "smtp", {"host": "localhost", "port": 25}, NOW)
    source.close()
    copied = run_cli("store", "copy", f"sqlite:///{home / 'nbsched.db'}", pg_url, check=True)
    assert "1 service(s), 1 job(s), 2 run(s), 1 pending retry(ies), 1 connection(s)" in copied.stdout
    again = run_cli("store", "copy", f"sqlite:///{home / 'nbsched.db'}", pg_url)
    assert again.returncode == 1 and "already holds jobs or runs" in again.stderr
    with _opened(pg_url) as stored:
        assert stored.job("daily").state == SQLiteStore(home / "nbsched.db").job("daily").state
        assert [row[0] for row in stored.runs()] == [first + 1, first]
        assert stored.claim([claim_next(job, NOW)]) == [None]  # the copied fire keeps its key
        assert stored.add_runs([run_row(None, NOW, "invoke")]) == [first + 2]
    monkeypatch.setenv("NBSCHED_STORE", pg_url)
    client = nbsched.connect()
    try:
        assert list(client.jobs()["name"]) == ["daily"]
        assert set(client.history()["run_id"]) >= {first, first + 1}
    finally:
        client.close()


class _opened:
    """A store opened for a ``with`` block."""

    def __init__(self, url: str):
        self.store = open_store(url)

    def __enter__(self):
        return self.store

    def __exit__(self, *exc_info):
        self.store.close()
