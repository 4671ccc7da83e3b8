"""A job's life as users read it: its own runs (not those of a deleted job of its name) and its state."""

from __future__ import annotations

import json

import pytest
from conftest import HELLO_SERVICE, run_cli, stop_runner, wait_until

import nbsched

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def store_client(request, home, monkeypatch):
    """A client of a real runner on each kind of store, with services/hello.py deployed."""
    if request.param == "memory":
        monkeypatch.setenv("NBSCHED_STORE", "memory://")
    elif request.param == "postgresql":
        monkeypatch.setenv("NBSCHED_STORE", request.getfixturevalue("pg_url"))
    client = nbsched.connect()
    client.deploy(str(HELLO_SERVICE))
    yield request.param, client
    client.close()


def ran_once(client: nbsched.Client, name: str) -> int:
    run_id = client.execute(name)
    assert client.wait(run_id, timeout=30)["status"] == "ok"
    return run_id


# -- item 3: a job's runs are its own ------------------------------------------------------
def test_a_job_made_under_a_deleted_jobs_name_does_not_inherit_its_runs(store_client, home):
    kind, client = store_client
    client.schedule("api.hello", name="report", every="1h", start="in 1h")
    old_uid = client.job("report")["uid"]
    old_run = ran_once(client, "report")
    client.delete("report")

    job = client.schedule("api.hello", name="report", every="1h", start="in 1h")

    assert (job.runs, job.last_run, job.last_status) == (0, None, None)
    listed = client.jobs().set_index("name").loc["report"]
    assert (listed["runs"], listed["last_status"]) == (0, None)
    assert client.history(job="report").empty
    earlier = client.history(job_uid=old_uid)
    assert list(earlier["run_id"]) == [old_run] and list(earlier["job"]) == ["report"]

    new_run = ran_once(client, "report")
    new_uid = client.job("report")["uid"]
    assert list(client.history(job="report")["run_id"]) == [new_run]
    every = client.history().set_index("run_id")
    assert (every.loc[old_run, "job_uid"], every.loc[new_run, "job_uid"]) == (old_uid, new_uid)
    assert client.jobs().set_index("name").loc["report", "runs"] == 1
    if kind == "memory":
        return  # nothing of a memory store survives a restart
    stop_runner(home)
    restarted = nbsched.connect()
    try:
        listed = restarted.jobs().set_index("name").loc["report"]
        assert (listed["runs"], listed["last_status"]) == (1, "ok")
        assert list(restarted.history(job="report")["run_id"]) == [new_run]
    finally:
        restarted.close()


def test_the_deleted_jobs_runs_are_what_history_of_a_name_no_job_has_shows(client):
    client.schedule("api.hello", name="gone", every="1h", start="in 1h")
    run_id = ran_once(client, "gone")
    client.delete("gone")
    assert list(client.history(job="gone")["run_id"]) == [run_id]


def test_the_command_line_history_carries_each_runs_job_uid(client, home):
    client.schedule("api.hello", name="report", every="1h", start="in 1h")
    ran_once(client, "report")
    rows = json.loads(run_cli("history", "--job", "report", "--format", "json", home=home, check=True).stdout)
    assert [row["job_uid"] for row in rows] == [client.job("report")["uid"]]


# -- item 7: states you can read -------------------------------------------------------------
def test_the_job_listing_says_whether_a_job_is_active_paused_finished_or_ended(client):
    client.schedule("api.hello", name="hourly", every="1h")
    client.schedule("api.hello", name="resting", every="1h", active=False)
    client.schedule("api.hello", name="once", at="in 1s")
    client.schedule("api.hello", name="twice", every="1s", repeats=2)
    wait_until(
        lambda: len(client.history(job="once", status="ok")) == 1 and len(client.history(job="twice")) == 2,
        timeout=20,
        what="the one-time job's run and the two of the job with repeats",
    )
    jobs = client.jobs().set_index("name")
    assert list(jobs.columns[:5]) == ["type", "definition", "service", "active", "state"]
    assert jobs["state"].to_dict() == {"hourly": "active", "once": "finished", "resting": "paused", "twice": "ended"}
    assert jobs["next_run"].isna()["once"] and jobs["next_run"].isna()["twice"]


def test_a_one_time_job_whose_at_is_past_runs_at_once_and_says_so(client):
    job = client.schedule("api.hello", name="late", at="2020-01-02 03:04")
    assert job.notice == "at is in the past: runs now"
    wait_until(lambda: len(client.history(job="late", status="ok")) == 1, timeout=20, what="the late job's run")
    assert client.jobs().set_index("name").loc["late", "state"] == "finished"
    assert client.schedule("api.hello", name="soon", at="in 1h").notice == ""
    paused = client.schedule("api.hello", name="held", at="2020-01-02 03:04", active=False)
    assert paused.notice == "at is in the past: runs when resumed"


def test_the_command_line_lists_the_state_of_each_job(client, home):
    client.schedule("api.hello", name="hourly", every="1h")
    client.pause("hourly")
    rows = json.loads(run_cli("jobs", "--format", "json", home=home, check=True).stdout)
    assert [(row["name"], row["state"]) for row in rows] == [("hourly", "paused")]


def test_the_schedule_magic_says_a_past_at_runs_now(ip, client, capsys):
    ip.run_line_magic("schedule", 'once "2020-01-02 03:04" api.hello --name late')
    out = capsys.readouterr().out
    assert out.startswith("scheduled late: once at 2020-01-02 03:04:00 (UTC), runs api.hello; next run ")
    assert out.endswith(" (at is in the past: runs now)\n")


def test_the_command_line_says_a_past_at_runs_now_and_lists_one_jobs_runs_by_uid(client, home):
    result = run_cli("schedule", "api.hello", "--name", "late", "--at", "2020-01-01T00:00:00Z", home=home)
    assert result.returncode == 0, result.stderr
    assert "note: at is in the past: runs now" in result.stdout
    wait_until(lambda: client.job("late")["runs"] == 1, what="the late job's run")
    client.delete("late")
    client.schedule("api.hello", name="late", every="1h", start="in 1h")
    ran_once(client, "late")
    uid = client.job("late")["uid"]
    listed = run_cli("history", "--job-uid", uid, "--format", "json", home=home)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row["job_uid"] for row in rows] == [uid] and rows[0]["trigger"] == "manual"
