"""Listings that page and stream: jobs a page at a time (filtered and sorted in the runner), history pages,
history streamed in chunks to the CLI and to Python, runs counted per minute; and every bad paging value refused."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from conftest import run_cli, wait_until
from IPython.core.error import UsageError
from test_bad_input import Raw

from nbsched import config, protocol
from nbsched.errors import InvalidInput
from nbsched.model.runs import RUN_FIELDS


def schedule(client, names, cron="0 2 * * *") -> None:
    for name in names:
        client.schedule("api.hello", name=name, cron=cron)


def run_ids(client, runs: int, job: str | None = None) -> list[int]:
    """Run ``job`` (or invoke api.hello) ``runs`` times, waiting for each; their run ids, oldest first."""
    ids = [client.execute(job) if job else client.invoke("api.hello") for _ in range(runs)]
    for run_id in ids:
        client.wait(run_id)
    return ids


def stderr_on_a_terminal(home, *args: str) -> str:
    """What ``nbsched ARGS`` writes to its stderr when that is a terminal (a pseudo-terminal here)."""
    leader, follower = pty.openpty()
    try:
        env = {**os.environ, "NBSCHED_HOME": str(home)}
        command = [sys.executable, "-m", "nbsched", *args]
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=follower, env=env, timeout=60, check=True)
        os.close(follower)
        follower = None
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed and all is read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)
        if follower is not None:
            os.close(follower)


# -- jobs -----------------------------------------------------------------------------------------
def test_jobs_page_returns_one_page_and_how_many_the_filter_selects(client):
    schedule(client, [f"sales-{i:02d}" for i in range(7)] + ["cleanup"])

    page = client.jobs_page(limit=3, offset=3, filter={"search": "SALES"})

    assert [row["name"] for row in page.rows] == ["sales-03", "sales-04", "sales-05"]
    assert (page.total, page.offset, page.more, page.end) == (7, 3, True, 6)
    last = client.jobs_page(limit=3, offset=6, filter={"search": "sales"})
    assert ([row["name"] for row in last.rows], last.more) == (["sales-06"], False)


def test_jobs_filter_by_state_and_last_status_and_sort_by_last_run(client):
    schedule(client, ["a", "b", "c", "d"])
    client.pause("d")
    run_ids(client, 1, job="c")
    run_ids(client, 1, job="a")

    assert list(client.jobs(filter={"state": "paused"})["name"]) == ["d"]
    assert list(client.jobs(filter={"status": "ok"}, sort="-last_run")["name"]) == ["a", "c"]
    assert list(client.jobs(filter={"status": "none"})["name"]) == ["b", "d"]
    assert list(client.jobs(sort="last_run")["name"]) == ["c", "a", "b", "d"]  # never ran: last
    assert list(client.jobs(sort="-name", limit=2)["name"]) == ["d", "c"]


BAD_PAGING = [
    ({"filter": {"serch": "x"}}, "Unknown jobs filter 'serch'. Did you mean 'search'?"),
    ({"filter": {"state": "asleep"}}, "Invalid state filter 'asleep'. Use one of active, paused"),
    ({"filter": {"status": "fine"}}, "Invalid status filter 'fine'."),
    ({"filter": {"search": 3}}, "Invalid search filter 3: use text"),
    ({"filter": "sales"}, "Invalid jobs filter 'sales': use an object such as"),
    ({"sort": "size"}, "Invalid sort 'size'. Use one of name, next_run, last_run, -name"),
    ({"limit": -1}, "Invalid limit -1: use a whole number, 0 or more."),
    ({"limit": 5, "offset": "2"}, "Invalid offset '2': use a whole number"),
]


def test_bad_paging_values_are_refused_by_name(client):
    schedule(client, ["kept"])
    for args, message in BAD_PAGING:
        with pytest.raises(InvalidInput, match="^" + re.escape(message)):
            client.jobs(**args)
        with pytest.raises(InvalidInput, match="^" + re.escape(message)):
            client.jobs_page(**{"limit": 10, **args})
    assert list(client.jobs()["name"]) == ["kept"]


def test_cli_jobs_pages_and_says_how_to_see_the_rest(client, home):
    schedule(client, [f"j{i}" for i in range(5)])
    client.pause("j4")

    shown = run_cli("jobs", "--limit", "2", "--offset", "1", "--format", "json", home=home, check=True)
    backwards = run_cli("jobs", "--sort", "name", "--desc", "--limit", "1", "--format", "json", home=home, check=True)
    paused = run_cli("jobs", "--state", "paused", "--format", "csv", home=home, check=True)

    assert [job["name"] for job in json.loads(shown.stdout)] == ["j1", "j2"]
    assert [job["name"] for job in json.loads(backwards.stdout)] == ["j4"]
    assert shown.stderr == ""  # not a terminal: nothing said
    assert "(2 of 5 jobs shown; --offset 3 shows the next, --all every one)" in stderr_on_a_terminal(
        home, "jobs", "--limit", "2", "--offset", "1"
    )
    assert [row["name"] for row in csv.DictReader(io.StringIO(paused.stdout))] == ["j4"]
    assert paused.stderr == ""


def test_cli_jobs_refuses_bad_paging_in_one_line(client, home):
    for args, message in [
        (("--state", "asleep"), "Invalid state filter 'asleep'."),
        (("--sort", "size"), "Invalid sort 'size'."),
        (("--limit", "-3"), "Invalid --limit -3: use a whole number, 0 or more (or --all for every one)."),
        (("--offset", "-1"), "Invalid offset -1: use a whole number, 0 or more."),
    ]:
        result = run_cli("jobs", *args, home=home)
        assert (result.returncode, result.stdout) == (1, ""), args
        assert result.stderr.startswith(f"nbsched: error: {message}"), args


# -- history --------------------------------------------------------------------------------------
def test_history_page_goes_from_the_newest_and_says_whether_older_runs_follow(client):
    ids = run_ids(client, 5)

    first = client.history_page(limit=2)
    last = client.history_page(limit=2, offset=4)

    assert ([row["run_id"] for row in first.rows], first.more, first.total) == (ids[:2:-1], True, None)
    assert ([row["run_id"] for row in last.rows], last.more) == ([ids[0]], False)
    assert str(first.rows[0]["started_at"].tzinfo) == client.tz


def test_history_stream_yields_every_run_and_the_connection_serves_on_after_a_stream_left_early(client):
    ids = run_ids(client, 4)

    rows = list(client.history_stream())
    partial = client.history_stream(limit=3)
    next(partial)
    partial.close()  # the rest is unread: the client drops that connection

    assert [row[RUN_FIELDS.index("run_id")] for row in rows] == ids[::-1]
    assert len(rows[0]) == len(RUN_FIELDS)
    assert [row[0] for row in client.history_stream(limit=2, offset=1)] == ids[2:0:-1]
    assert client.ping()["jobs"] == 0
    assert client.history_rows(format="chunks")["rows"] == [list(row) for row in rows]  # call(): all at once


def test_the_client_answers_other_calls_while_one_of_its_streams_is_read(client):
    ids = run_ids(client, 3)
    seen = []
    for row in client.history_stream():  # each row looked up with the same client, mid-stream (it hung before)
        seen.append(client.run(row[RUN_FIELDS.index("run_id")])["status"])
    assert seen == ["ok"] * 3 and len(ids) == 3
    with pytest.raises(InvalidInput):
        list(client.history_stream(status="nope"))  # a refused stream says why, and the client serves on
    assert client.ping()["jobs"] == 0


def test_clients_that_stop_reading_streams_never_starve_the_runners_other_reads(client, home):
    ids = [run_id for _ in range(12) for run_id in client.invoke_many("api.hello", [None] * 500)]
    wait_until(lambda: client.run(ids[-1])["status"] != "running", timeout=60, what="6,000 runs to end")
    stalled = []
    for request_id in range(8):  # more streams than the runner's shared thread pool has threads
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(config.settings().socket_path))
        token = config.settings().token_path.read_text().strip()
        sock.sendall(protocol.request("history", {"format": "chunks", "limit": 6000}, token, request_id))
        assert b'"stream"' in sock.recv(4096)  # the header; the chunks (megabytes) are never read
        stalled.append(sock)
    try:
        began = time.monotonic()
        assert len(client.history(limit=None)) >= 6000  # a long read: before, it queued behind the streams for good
        assert time.monotonic() - began < 30
    finally:
        for sock in stalled:
            sock.close()


def test_cli_history_all_streams_json_and_csv_with_every_field(client, home):
    ids = run_ids(client, 3)

    as_json = json.loads(run_cli("history", "--all", "--format", "json", home=home, check=True).stdout)
    as_csv = list(csv.DictReader(io.StringIO(run_cli("history", "--format", "csv", home=home, check=True).stdout)))
    table = run_cli("history", "--limit", "1", home=home, check=True).stdout.splitlines()

    assert [run["run_id"] for run in as_json] == ids[::-1]
    assert list(as_json[0]) == list(RUN_FIELDS)
    assert [int(row["run_id"]) for row in as_csv] == ids[::-1]
    assert (table[0].split()[:2], table[1].split()[0], len(table)) == (["run_id", "job"], str(ids[-1]), 2)
    assert run_cli("history", "--status", "error", "--format", "json", home=home, check=True).stdout == "[]\n"


def test_cli_history_refuses_all_with_a_limit_and_a_negative_limit(client, home):
    both = run_cli("history", "--all", "--limit", "5", home=home)
    negative = run_cli("history", "--limit", "-1", home=home)

    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert negative.returncode == 1
    assert (
        negative.stderr
        == "nbsched: error: Invalid --limit -1: use a whole number, 0 or more (or --all for every one).\n"
    )


def test_schedule_history_magic_takes_all_or_a_limit(ip, client):
    run_ids(client, 3)

    assert len(ip.run_line_magic("schedule", "history --all")) == 3
    assert len(ip.run_line_magic("schedule", "history --limit 2")) == 2
    with pytest.raises(UsageError, match="not allowed with argument"):
        ip.run_line_magic("schedule", "history --all --limit 2")
    with pytest.raises(UsageError, match=re.escape("Invalid --limit -2: use a whole number, 0 or more")):
        ip.run_line_magic("schedule", "history --limit -2")


def test_run_counts_are_per_minute_and_status_over_the_window(client):
    run_ids(client, 3)

    counts = client.run_counts(minutes=5)

    assert counts["minutes"] == 5
    assert sum(counts["counts"]["ok"]) == 3 and len(counts["counts"]["ok"]) == 5
    assert str(counts["start"].tzinfo) == client.tz
    with pytest.raises(InvalidInput, match=r"^Invalid minutes 0: use a whole number from 1 to 1440, e.g. 60."):
        client.run_counts(minutes=0)


def test_the_socket_refuses_bad_paging_and_serves_on(client, home):
    raw = Raw(home)
    try:
        bad = [
            ("jobs_page", {"offset": -5}, "Invalid offset -5"),
            ("jobs_page", {"filter": [1]}, "Invalid jobs filter [1]"),
            ("jobs", {"sort": 1}, "Invalid sort 1."),
            ("history", {"format": "chunks", "offset": "x"}, "Invalid offset 'x'"),
            ("history", {"format": "ndjson"}, "Invalid history format 'ndjson': use one of json, arrow, chunks."),
            ("run_counts", {"minutes": "60"}, "Invalid minutes '60'"),
        ]
        for op, args, message in bad:
            reply = raw.request(op, args)
            assert (reply["ok"], reply["error"]["message"].startswith(message)) == (False, True), (op, reply)
        assert raw.request("jobs_page")["result"] == {"total": 0, "offset": 0, "rows": []}
    finally:
        raw.close()


def test_a_page_sorted_by_time_keeps_ties_in_name_order_and_jobs_without_a_time_last():
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from nbsched.model.jobs import JobSpec, JobState
    from nbsched.runner.control import JobStats
    from nbsched.runner.listing import job_page
    from nbsched.store import StoredJob

    now = datetime(2026, 11, 30, tzinfo=UTC)
    jobs, stats = {}, {}
    for i in range(200):  # added out of name order, as jobs made after the runner started are
        name = f"job-{(i * 37) % 200:03d}"
        spec = JobSpec.from_user(now=now, default_tz="UTC", name=name, service="api.hello", every="1h", start=now)
        jobs[name] = StoredJob(f"uid-{name}", spec, JobState(next_fire=now + timedelta(minutes=i % 7)))
        if i % 3:
            stats[f"uid-{name}"] = JobStats(runs=1, last_run=now - timedelta(minutes=i % 5), last_status="ok")
    for name in ("job-001", "job-100"):
        jobs[name] = StoredJob(f"uid-{name}", replace(jobs[name].spec, active=False), jobs[name].state)
    engine = SimpleNamespace(jobs=jobs, stats=stats)

    for sort in ("next_run", "-next_run", "last_run", "-last_run", "name", "-name"):
        key = sort.removeprefix("-")

        def moment(name, key=key):
            if key == "next_run":
                return jobs[name].state.next_fire if jobs[name].spec.active else None
            return getattr(stats.get(jobs[name].uid), "last_run", None)

        timed = sorted((name for name in jobs if moment(name) is not None), reverse=sort.startswith("-"))
        timed.sort(key=moment, reverse=sort.startswith("-"))  # ties: names in the direction of the times
        untimed = sorted(name for name in jobs if moment(name) is None)
        expected = sorted(jobs, reverse=sort.startswith("-")) if key == "name" else timed + untimed
        whole = [row["name"] for row in job_page(engine, sort=sort)["rows"]]
        first = [row["name"] for row in job_page(engine, limit=10, sort=sort)["rows"]]  # the smallest few only
        deep = job_page(engine, limit=10, offset=190, sort=sort)
        assert whole == expected, sort
        assert first == expected[:10], sort
        assert [row["name"] for row in deep["rows"]] == expected[190:] and deep["total"] == 200, sort
