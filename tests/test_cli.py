"""The ``nbsched`` command line end to end against a real runner in a temp home."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import REPO, run_cli, wait_until

from nbsched.model.jobs import JOB_LIST_FIELDS
from nbsched.model.runs import RUN_FIELDS

pytestmark = pytest.mark.slow


def cli(home, *args, code=0):
    result = run_cli(*args, home=home)
    assert result.returncode == code, f"nbsched {' '.join(args)} -> {result.returncode}: {result.stderr}"
    return result


def test_the_readme_tour_works_end_to_end(home):
    assert "runner started" in cli(home, "runner", "start").stdout
    assert "deployed api.hello (version " in cli(home, "deploy", str(REPO / "services")).stdout
    out = cli(home, "schedule", "api.hello", "--every", "1s", "--name", "hello", "--extra", '{"who": "me"}').stdout
    assert out.startswith("scheduled hello: every 1s; next run ")
    cli(home, "schedule", "api.hello", "--cron", "*/2 * * * *", "--tz", "Europe/Warsaw", "--name", "hello-cron")
    cli(home, "schedule", "api.hello", "--at", "2030-11-25 10:00", "--name", "once")

    jobs = json.loads(cli(home, "jobs", "--format", "json").stdout)
    assert [job["name"] for job in jobs] == ["hello", "hello-cron", "once"]
    assert set(jobs[0]) == set(JOB_LIST_FIELDS)
    assert jobs[1]["definition"] == "cron */2 * * * * (Europe/Warsaw)"
    assert jobs[2]["next_run"] == "2030-11-25T10:00:00+00:00"

    wait_until(
        lambda: json.loads(cli(home, "history", "--job", "hello", "--format", "json").stdout),
        timeout=20,
        what="a scheduled run of hello",
    )
    ran = cli(home, "run", "hello", "--wait")
    assert ran.stdout.splitlines()[0].endswith("ms") and '"channel": "cli"' in ran.stdout

    history = json.loads(cli(home, "history", "--job", "hello", "--limit", "20", "--format", "json").stdout)
    assert set(history[0]) == set(RUN_FIELDS)
    assert {row["trigger"] for row in history} >= {"schedule", "manual"}
    table = cli(home, "history", "--job", "hello").stdout
    assert table.splitlines()[0].split()[:3] == ["run_id", "job", "service"]

    rows = list(csv.DictReader(io.StringIO(cli(home, "jobs", "--format", "csv").stdout)))
    assert rows[0]["name"] == "hello" and rows[0]["active"] == "True"

    cli(home, "pause", "hello", "--note", "lunch")
    paused = json.loads(cli(home, "jobs", "--format", "json").stdout)[0]
    assert paused["active"] is False and paused["note"] == "lunch"
    assert "resumed hello; next run" in cli(home, "resume", "hello").stdout
    cli(home, "delete", "hello-cron")
    assert [job["name"] for job in json.loads(cli(home, "jobs", "--format", "json").stdout)] == ["hello", "once"]

    assert "runner " in cli(home, "runner", "status").stdout
    assert "stopped" in cli(home, "runner", "stop").stdout
    status = cli(home, "runner", "status", code=1)
    assert status.stderr.strip() == f"nbsched: no runner is running for {home}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("schedule", "api.hello", "--every", "0s"),
            "nbsched: error: Invalid interval '0s' for job 'api.hello': it must be positive",
        ),
        (("schedule", "api.hello", "--cron", "* * * *"), "nbsched: error: Invalid cron expression '* * * *': it has 4"),
        (("schedule", "api.hello", "--every", "1m", "--tz", "Nowhere/City"), "nbsched: error: Unknown time zone"),
        (("schedule", "api.nope", "--every", "1m"), "nbsched: error: No service named 'api.nope' is deployed."),
        (("schedule", "api.hello", "--at", "tomorrowish"), "nbsched: error: Invalid at 'tomorrowish'"),
        (("pause", "ghost"), "nbsched: error: No job named 'ghost'."),
        (("logs", "999"), "nbsched: error: No run with id 999"),
        (("deploy", "does/not/exist.py"), "nbsched: error: Cannot deploy does/not/exist.py: no such file or folder."),
    ],
)
def test_refusals_are_one_line_on_stderr_with_exit_1_and_store_nothing(client, args, message):
    result = run_cli(*args, home=client.settings.home)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert client.jobs().empty


def test_a_command_line_that_does_not_parse_exits_2_with_one_line(home):
    result = run_cli("schedule", "api.hello", "--every", "1m", "--cron", "* * * * *", home=home)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "nbsched schedule: error: argument --cron: not allowed with argument --every (see nbsched schedule --help)"
    )
    assert run_cli("frobnicate", home=home).returncode == 2


def test_deploying_a_file_with_a_syntax_error_names_the_file_and_line(client, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("from nbsched import Service\n\nclass Bad(Service)\n    pass\n")
    result = run_cli("deploy", str(broken), home=client.settings.home)
    assert result.returncode == 1
    assert result.stderr.startswith(f"nbsched: error: Cannot deploy {broken}, line 3: expected ':'")


def test_invoke_with_extra_from_the_command_line(client):
    result = run_cli("invoke", "api.hello", "--extra", "who=cli", "--wait", home=client.settings.home)
    assert result.returncode == 0, result.stderr
    assert '{"greeted": "cli", "channel": "cli"}' in result.stdout


def test_preview_prints_the_reading_and_times(client):
    result = run_cli("preview", "0 9 * * mon", "--tz", "Europe/Warsaw", "--count", "2", home=client.settings.home)
    lines = result.stdout.splitlines()
    assert lines[0] == "At 09:00 on Monday (Europe/Warsaw)"
    assert len(lines) == 3 and lines[1].strip().endswith("09:00:00+01:00")
