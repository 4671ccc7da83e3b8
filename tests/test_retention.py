"""Retention and purge: finished runs go with their executed notebooks and out of the runs cache, in steps,
never a running one; ``history_keep`` is applied by the runner on its own; every entry point refuses bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from conftest import run_cli, wait_until
from IPython.core.error import UsageError
from test_bad_input import Raw
from test_notify import SERVICES

from nbsched import config
from nbsched.errors import InvalidInput, JobNotFound, StoreError
from nbsched.frontends.ui import Dashboard
from nbsched.model.retention import Keep
from nbsched.runner.retention import Deleter, Retention
from nbsched.store import Purge, RunQuery
from nbsched.store.history import cache as runs_cache
from nbsched.store.history import sqlite as sqlite_history
from nbsched.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def finished_run(job: str, i: int, status: str = "ok", output: str | None = None) -> dict:
    at = NOW + timedelta(minutes=i)
    return {
        "cid": f"{i:024x}",
        "job": job,
        "job_uid": f"uid-{job}",
        "service": "api.hello",
        "trigger": "schedule",
        "attempt": 1,
        "status": status,
        "scheduled_at": at,
        "started_at": at if status != "running" else None,
        "finished_at": at + timedelta(seconds=1) if status != "running" else None,
        "output": output,
        "runner": "test:1",
    }


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A SQLite store whose listings of over 50 runs come from its runs cache, one file per 60 finished runs."""
    monkeypatch.setattr(sqlite_history, "BULK_ROWS", 50)
    monkeypatch.setattr(runs_cache, "SEGMENT_ROWS", 60)
    monkeypatch.setattr(config, "PURGE_BATCH", 7)
    opened = SQLiteStore(tmp_path / "nbsched.db")
    yield opened
    opened.close()


def arrow_run_ids(store, **query) -> list[int]:
    with store.history() as history:
        return pa.ipc.open_stream(history.arrow(RunQuery(**query))).read_all()["run_id"].to_pylist()


def test_retention_deletes_rows_notebooks_and_cache_entries_together_and_never_a_running_run(store, tmp_path):
    outputs = tmp_path / "outputs"
    runs = [finished_run("daily", i) for i in range(150)] + [finished_run("other", 150 + i) for i in range(20)]
    runs.append(finished_run("daily", 170, status="running"))
    ids = store.add_runs(runs)
    for run_id in ids[:150]:
        (outputs / "daily").mkdir(parents=True, exist_ok=True)
        (outputs / "daily" / f"{run_id}.ipynb").write_text("{}")
        (outputs / "daily" / f"{run_id}.html").write_text("<html/>")
    named = outputs / "elsewhere" / "report.ipynb"  # a notebook the run's output names
    named.parent.mkdir(parents=True)
    named.write_text("{}")
    store.update_runs([{"run_id": ids[0], "output": str(named)}])
    outside = tmp_path / "keep-me.ipynb"  # an output outside outputs/ is never touched
    outside.write_text("{}")
    store.update_runs([{"run_id": ids[1], "output": str(outside)}])
    assert len(arrow_run_ids(store)) == 171  # the cache's files are written now, after the answer
    runs_cache.RunsCache.of(store.path).settle(timeout=60)
    assert list((tmp_path / "nbsched.db.runs-cache").glob("*.arrow"))

    retention = Retention(f"sqlite:///{store.path}", store, tmp_path, default=Keep(count=100))  # a child deletes
    try:
        assert retention.apply([("daily", "uid-daily", 10), ("other", "uid-other", None)], NOW) == 140
    finally:
        retention.close()

    assert arrow_run_ids(store, job="daily") == [ids[170], *reversed(ids[140:150])]
    assert len(arrow_run_ids(store)) == 31 and arrow_run_ids(store, job="other") == list(reversed(ids[150:170]))
    assert sorted(path.name for path in (outputs / "daily").iterdir()) == sorted(
        f"{run_id}{suffix}" for run_id in ids[140:150] for suffix in (".ipynb", ".html")
    )
    assert not named.exists() and outside.exists()


def test_a_purge_child_that_hangs_is_stopped_with_a_clear_error_and_a_closed_retention_starts_none(
    store, tmp_path, monkeypatch
):
    monkeypatch.setattr(config, "PURGE_CHILD_TIMEOUT", 1.0)
    monkeypatch.setattr("sys.executable", str(tmp_path / "hang.sh"))  # the child: a program that never answers
    (tmp_path / "hang.sh").write_text("#!/bin/sh\nexec sleep 60\n")
    (tmp_path / "hang.sh").chmod(0o755)
    retention = Retention(f"sqlite:///{store.path}", store, tmp_path)
    with pytest.raises(StoreError, match=r"took longer than 1s and was stopped"):
        retention.purge([Purge(job="daily", keep=1)])
    assert retention.child is None
    retention.close()
    assert retention.purge([Purge(job="daily", keep=1)]) == 0  # closed: no child starts


def test_a_purge_goes_in_steps_and_says_how_many_went(store, tmp_path):
    store.add_runs([finished_run("a", i) for i in range(30)] + [finished_run("b", 30 + i) for i in range(30)])
    steps = []
    deleter = Deleter(store, tmp_path)
    deleter.remove_files = steps.append
    assert deleter.purge(Purge(before=NOW + timedelta(minutes=40))) == 40
    assert [len(step) for step in steps] == [7] * 5 + [5]  # config.PURGE_BATCH runs a step
    assert deleter.purge(Purge(job="b")) == 20
    assert [row[0] for row in store.runs()] == [] and deleter.purge(Purge(job="b")) == 0


# -- through a real runner ----------------------------------------------------------------------
@pytest.mark.slow
def test_purge_from_the_api_the_cli_and_the_magic_removes_finished_runs_and_says_how_many(client, home, ip):
    client.schedule("api.hello", name="sync", every="1h", start="in 1h")
    for _ in range(3):
        client.wait(client.execute("sync"), timeout=30)
    assert client.purge(job="sync") == 3
    assert len(client.history(job="sync")) == 0

    client.wait(client.execute("sync"), timeout=30)
    assert client.purge(before=timedelta(seconds=0)) == 1
    client.wait(client.execute("sync"), timeout=30)
    result = run_cli("purge", "--job", "sync", "--before", "0s", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "removed 1 finished run(s) of job 'sync' finished before 0s ago (and their executed notebooks)"
    )
    client.wait(client.execute("sync"), timeout=30)
    ip.run_line_magic("schedule", f"purge --before '{datetime.now(UTC) + timedelta(minutes=5):%Y-%m-%d %H:%M}'")
    assert len(client.history()) == 0


@pytest.mark.slow
def test_purge_refuses_bad_input_at_every_entry_point(client, home, ip):
    client.schedule("api.hello", name="sync", every="1h", start="in 1h")
    with pytest.raises(InvalidInput, match=r"A purge needs job= or before="):
        client.purge()
    with pytest.raises(InvalidInput, match=r"use an age, e\.g\. '30d'") as caught:
        client.purge(before="whenever")
    assert caught.value.field == "before"
    with pytest.raises(JobNotFound, match="Did you mean 'sync'"):
        client.purge(job="synk")

    result = run_cli("purge", "--before", "soonish", home=home)
    assert result.returncode == 1 and result.stderr.startswith("nbsched: error: Invalid before 'soonish'")
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(UsageError, match=r"A purge needs job= or before="):
        ip.run_line_magic("schedule", "purge")
    with pytest.raises(UsageError, match=r"Invalid notify target 'mailto:x@y\.z'"):
        ip.run_line_magic("schedule", "every 5m api.hello --notify mailto:x@y.z")
    with pytest.raises(UsageError, match="Invalid history_keep '0'"):
        ip.run_line_magic("schedule", "every 5m api.hello --history-keep 0")
    raw = Raw(home)
    try:
        for args, piece in [({"job": 5}, "Invalid job 5"), ({"before": [1]}, "Invalid before"), ({"x": 1}, "Unknown")]:
            reply = raw.request("purge", args)
            assert reply["ok"] is False and piece in reply["error"]["message"], args
        job = {"service": "api.hello", "name": "x", "every": "5m", "notify": 5}
        reply = raw.request("schedule", job)
        assert reply["ok"] is False and "Invalid notify target 5: a target is text" in reply["error"]["message"]
        reply = raw.request("schedule", {**job, "notify": None, "history_keep": True})
        assert reply["ok"] is False and reply["error"]["field"] == "history_keep"
        assert raw.request("ping")["ok"] is True
    finally:
        raw.close()


@pytest.mark.slow
def test_the_runner_applies_history_keep_on_its_own_and_deletes_the_notebooks_too(home, monkeypatch):
    import nbsched

    monkeypatch.setenv("NBSCHED_RETENTION_SECONDS", "0.3")
    client = nbsched.connect()
    try:
        client.deploy(SERVICES)
        client.schedule("api.report", name="report", every="1h", start="in 1h", history_keep=2)
        outputs = [client.wait(client.execute("report"), timeout=30)["output"] for _ in range(4)]
        wait_until(lambda: len(client.history(job="report")) == 2, timeout=20, what="two runs kept")
        assert sorted(client.history(job="report")["output"]) == sorted(outputs[2:])
        assert [(home / "outputs" / "report" / path.rsplit("/", 1)[-1]).exists() for path in outputs] == [
            False,
            False,
            True,
            True,
        ]
        assert client.job("report")["history_keep"] == 2
    finally:
        client.close()


@pytest.mark.slow
def test_job_options_reach_the_runner_from_the_cli_and_the_form_and_bad_ones_are_refused_by_field(client, home):
    result = run_cli(
        "schedule", "api.hello", "--every", "1h", "--name", "cli-job", "--notify", "service:api.hello",
        "--notify", "webhook:https://example.com/h", "--notify-on", "error,success", "--history-keep", "30d",
        home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = client.job("cli-job")
    assert (job["notify"], job["notify_on"], job["history_keep"]) == (
        ["service:api.hello", "webhook:https://example.com/h"],
        ["error", "success"],
        "30d",
    )
    bad = run_cli("schedule", "api.hello", "--every", "1h", "--notify", "mailto:x@y.z", home=home)
    assert bad.returncode == 1 and "use smtp:CONNECTION:to@example.com" in bad.stderr
    bad = run_cli("schedule", "api.hello", "--every", "1h", "--history-keep", "-3", home=home)
    assert bad.returncode == 1 and "e.g. 1000, or an age" in bad.stderr

    dash = Dashboard(client, auto_refresh=False)
    try:
        form = dash.form
        form.name.value, form.service.value = "form-job", "api.hello"
        form.interval["hours"].value = 1
        form.options["notify"].value = "webhook:nowhere"
        form.save.click()
        assert "a webhook needs an http or https URL" in form.errors["notify"].value
        form.options["notify"].value = "service:api.hello, webhook:https://example.com/h"
        form.options["history_keep"].value = "500"
        form.save.click()
        assert client.job("form-job")["history_keep"] == 500
        form.load("form-job")
        assert form.options["notify"].value == "service:api.hello, webhook:https://example.com/h"
        assert form.options["notify_on"].value == "error, timeout"
        form.options["notify"].value = ""
        form.options["history_keep"].value = ""
        form.save.click()
        job = client.job("form-job")
        assert (job["notify"], job["notify_on"], job["history_keep"]) == ([], [], None)
    finally:
        dash.close()
    assert json.dumps(client.job("cli-job"))  # what the runner sends stays JSON
