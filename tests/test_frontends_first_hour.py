"""A newcomer's first hour (issue 15), where they meet it: the command line, the magics, Python.

Looking starts no runner; changing something starts one and says so; output into a closed pipe
ends quietly; an error's hint names the commands of the front end it is shown in; ``--since``
is read in the user's time zone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import HELLO_SERVICE, alive, run_cli
from IPython.core.error import UsageError

import nbsched

pytestmark = pytest.mark.slow

LOOKING = [
    ("jobs",),
    ("jobs", "--format", "json"),
    ("history",),
    ("logs", "1"),
    ("services",),
    ("show", "hourly"),
    ("connection", "list"),
    ("connection", "test", "mail"),
]
STARTED = re.compile(r"started a runner \(pid (\d+)\) for NBSCHED_HOME=(\S+)")


def no_runner_message(home: Path) -> str:
    return f"nbsched: error: No runner is running for NBSCHED_HOME={home} (start one: nbsched runner start)\n"


# -- looking starts no runner -----------------------------------------------------------------
@pytest.mark.parametrize("args", LOOKING, ids=" ".join)
def test_a_command_that_only_looks_starts_no_runner_and_says_none_runs(home, args):
    result = run_cli(*args, home=home)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", no_runner_message(home))
    assert sorted(path.name for path in home.iterdir()) == []


def test_a_mistyped_home_is_left_uncreated(tmp_path):
    typo = tmp_path / "nbshced"
    result = run_cli("history", home=typo)
    assert (result.returncode, result.stderr) == (1, no_runner_message(typo))
    assert not typo.exists()


def test_a_command_that_changes_something_starts_a_runner_and_says_so_once(home):
    first = run_cli("deploy", str(HELLO_SERVICE), home=home)
    assert first.returncode == 0, first.stderr
    pid, where = STARTED.fullmatch(first.stderr.strip()).groups()
    assert (where, first.stderr.count("\n")) == (str(home), 1)
    assert alive(int(pid)) and (home / "runner.pid").read_text().strip() == pid
    again = run_cli("schedule", "api.hello", "--every", "1h", "--name", "hourly", home=home)
    assert (again.returncode, again.stderr) == (0, "")
    assert run_cli("jobs", home=home).stdout.splitlines()[1].startswith("hourly")


def test_connect_in_python_starts_a_runner_and_says_so_in_one_line(home):
    script = "import nbsched; nbsched.connect(); nbsched.connect()"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    pid, where = STARTED.fullmatch(result.stderr.strip()).groups()
    assert (where, result.stderr.count("\n")) == (str(home), 1)
    assert alive(int(pid))


def test_a_magic_starts_a_runner_and_says_so_in_one_line(ip, home, capsys):
    jobs = ip.run_line_magic("schedule", "list")
    assert jobs.empty
    pid, where = STARTED.fullmatch(capsys.readouterr().out.strip()).groups()
    assert where == str(home) and alive(int(pid))
    ip.run_line_magic("schedule", "list")
    assert capsys.readouterr().out == ""


# -- hints in the words of the front end ---------------------------------------------------------
@pytest.fixture
def hourly(client):
    client.schedule("api.hello", name="hourly", every="1h", start="2099-01-01")
    return client


MISTAKES = [
    # command line, magic line, the runner's message, the CLI's hint, the magics' hint, a Python call, its note
    (
        ("pause", "ghost"),
        "pause ghost",
        "No job named 'ghost'. Jobs: hourly.",
        "See nbsched jobs.",
        "See %schedule list.",
        lambda client: client.pause("ghost"),
        "See client.jobs().",
    ),
    (
        ("logs", "999"),
        "logs 999",
        "No run with id {run_id}.",
        "See nbsched history for run ids.",
        "See %schedule history for run ids.",
        lambda client: client.run(999),
        "See client.history() for run ids.",
    ),
    (
        ("schedule", "api.nope", "--every", "1h"),
        "every 1h api.nope",
        "No service named 'api.nope' is deployed. Services: api.hello.",
        "Deploy it first: nbsched deploy services/.",
        "Deploy it first with %%service.",
        lambda client: client.schedule("api.nope", every="1h"),
        "Deploy it first: client.deploy('services/').",
    ),
    (
        ("connection", "test", "mail"),
        "test mail",
        "No connection named 'mail'. Connections: none.",
        "See nbsched connection list.",
        "See %connection list.",
        lambda client: client.connections.test("mail"),
        "See client.connections.list().",
    ),
]


@pytest.mark.parametrize(
    ("args", "line", "message", "cli_hint", "magic_hint", "call", "note"), MISTAKES, ids=[m[1] for m in MISTAKES]
)
def test_an_error_ends_with_the_hint_of_the_front_end_it_is_shown_in(
    hourly, ip, args, line, message, cli_hint, magic_hint, call, note
):
    magic = "connection" if line.startswith("test ") else "schedule"
    run_id = 999 if args[0] == "logs" else None
    cli = run_cli(*args, home=hourly.settings.home)
    assert (cli.returncode, cli.stderr) == (1, f"nbsched: error: {message.format(run_id=run_id)} {cli_hint}\n")
    with pytest.raises(UsageError) as shown:
        ip.run_line_magic(magic, line)
    assert str(shown.value) == f"{message.format(run_id=repr(str(run_id)))} {magic_hint}"
    with pytest.raises(LookupError) as raised:
        call(hourly)
    assert (str(raised.value), raised.value.__notes__) == (message.format(run_id=run_id), [note])
    assert "%" not in cli.stderr and "client." not in cli.stderr
    assert "nbsched " not in str(shown.value) and "client." not in str(shown.value)


# -- output into a pipe whose reader goes away ---------------------------------------------------
LOUD_SERVICE = """\
from nbsched import Service


class Loud(Service):
    name = "test.loud"

    def handle(self):
        print("a line of output\\n" * 20_000)
"""


@pytest.fixture
def busy(client):
    """A runner with 1,000 runs in its history, 600 jobs and a run with long logs (run 1)."""
    client.deploy(LOUD_SERVICE)
    client.wait(client.invoke("test.loud"))
    run_ids = [client.invoke("api.hello") for _ in range(1000)]
    client.wait(run_ids[-1])
    for number in range(600):
        client.schedule("api.hello", name=f"job-{number:03}", every="1h", start="2099-01-01")
    return client


@pytest.mark.parametrize(
    "command",
    [
        "history --format json --limit 1000",
        "history --limit 1000",
        "history --format csv --limit 1000",
        "jobs",
        "logs 1",
    ],
)
def test_output_into_a_pipe_whose_reader_has_gone_ends_quietly(busy, command):
    line = f"{sys.executable} -m nbsched {command} | head -1"
    env = {**os.environ, "NBSCHED_HOME": str(busy.settings.home)}
    result = subprocess.run(line, shell=True, capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode, result.stderr, len(result.stdout.splitlines())) == (0, "", 1)
    status = subprocess.run(
        f"{sys.executable} -m nbsched {command} | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (status.stdout, status.stderr) == ("0\n", "")


# -- --since in the user's time zone --------------------------------------------------------------
@pytest.fixture
def before_and_after(client):
    """Two runs on a runner in UTC, and the moment between them as a Kolkata wall-clock time without an offset."""
    first = client.invoke("api.hello")
    client.wait(first)
    time.sleep(0.05)
    boundary = datetime.now(UTC)
    time.sleep(0.05)
    second = client.invoke("api.hello")
    client.wait(second)
    kolkata = boundary.astimezone(ZoneInfo("Asia/Kolkata")).replace(tzinfo=None).isoformat()
    return client, first, second, kolkata


def test_history_since_reads_a_time_without_offset_in_the_users_zone_on_the_command_line(before_and_after, monkeypatch):
    client, first, second, kolkata = before_and_after
    home = client.settings.home

    def run_ids(*args):
        result = run_cli("history", "--format", "json", *args, home=home)
        assert result.returncode == 0, result.stderr
        return [row["run_id"] for row in json.loads(result.stdout)]

    monkeypatch.setenv("NBSCHED_TIMEZONE", "Asia/Kolkata")
    assert (run_ids(), run_ids("--since", kolkata)) == ([second, first], [second])
    monkeypatch.setenv("NBSCHED_TIMEZONE", "UTC")  # the same wall-clock time in UTC is 5h30 later: no runs yet
    assert run_ids("--since", kolkata) == []


def test_history_since_reads_a_time_without_offset_in_the_sessions_zone_in_a_notebook(
    before_and_after, ip, monkeypatch
):
    _, _, second, kolkata = before_and_after
    monkeypatch.setenv("NBSCHED_TIMEZONE", "UTC")  # restored after the test, whatever %schedule config sets
    ip.run_line_magic("schedule", "config timezone=Asia/Kolkata")
    frame = ip.run_line_magic("schedule", f"history --since {kolkata}")
    assert list(frame["run_id"]) == [second]
    assert str(frame["started_at"].dt.tz) == "Asia/Kolkata"
    ip.run_line_magic("schedule", "config timezone=UTC")
    assert ip.run_line_magic("schedule", f"history --since {kolkata}").empty


# -- the times inside a run's logs in the user's time zone ------------------------------------------
KOLKATA_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30 INFO .*hello, zones$", re.MULTILINE)


def test_the_times_in_a_runs_logs_are_shown_in_the_users_zone_everywhere(client, ip, capsys, monkeypatch):
    run_id = client.invoke("api.hello", {"who": "zones"})
    client.wait(run_id)
    stored = client.history_rows(limit=1)
    logs = dict(zip(stored["columns"], stored["rows"][0], strict=True))["logs"]
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO .*hello, zones$", logs, re.MULTILINE)  # as stored

    monkeypatch.setenv("NBSCHED_TIMEZONE", "Asia/Kolkata")
    shown = run_cli("logs", str(run_id), home=client.settings.home)
    assert shown.returncode == 0 and KOLKATA_LOG_LINE.search(shown.stdout), shown.stdout
    assert KOLKATA_LOG_LINE.search(nbsched.connect().run(run_id)["logs"])
    monkeypatch.setenv("NBSCHED_TIMEZONE", "UTC")
    ip.run_line_magic("schedule", "config timezone=Asia/Kolkata")
    capsys.readouterr()
    ip.run_line_magic("schedule", f"logs {run_id}")
    assert KOLKATA_LOG_LINE.search(capsys.readouterr().out)
    ip.run_line_magic("schedule", "config timezone=UTC")
