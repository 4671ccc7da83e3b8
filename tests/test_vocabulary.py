"""One vocabulary for the three front ends: the CLI, the magics and the dashboard's form accept the same spellings."""

from __future__ import annotations

import json
import shlex
import threading
from datetime import datetime

import pytest
from conftest import REPO, run_cli
from IPython.core.error import UsageError

from nbsched import protocol
from nbsched.errors import InvalidInput, InvalidJob, NbschedError, ServiceNotFound
from nbsched.frontends import commands, connection_options
from nbsched.frontends.commands import JOB_OPTIONS, STATUS_COLOURS, STATUSES, SWITCHES, TRIGGERS
from nbsched.frontends.ui.services import ConnectionsTab
from nbsched.model.jobs import JobSpec

FRONTENDS = REPO / "nbsched" / "frontends"

#: One job, every option given, as a command line spells it.
EVERY_OPTION = [
    "--tz",
    "Europe/Warsaw",
    "--start",
    "2030-01-01 10:00",
    "--end",
    "2030-06-01 10:00",
    "--repeats",
    "3",
    "--extra",
    '{"a": 1}',
    "--jitter",
    "5s",
    "--timeout",
    "30s",
    "--retries",
    "2",
    "--overlap",
    "queue",
    "--misfire",
    "once",
    "--catchup",
    "1h",
    "--isolation",
    "process",
    "--paused",
    "--allow-subsecond",
]


@pytest.fixture
def dash(client):
    from nbsched.frontends.ui import Dashboard

    dashboard = Dashboard(client, auto_refresh=False)
    yield dashboard
    dashboard.close()


def spec_of(client, name: str) -> dict:
    """What a job is, whoever made it: its JobSpec fields but the name."""
    record = client.job(name)
    return {key: record[key] for key in JobSpec.__dataclass_fields__ if key != "name"}


# -- defined once ----------------------------------------------------------------------
def test_every_field_of_a_job_a_user_sets_has_one_option_in_the_vocabulary():
    keys = [option.key for option in JOB_OPTIONS] + [switch.key for switch in SWITCHES] + list(TRIGGERS)
    assert len(keys) == len(set(keys))
    assert set(keys) == set(JobSpec.__dataclass_fields__) - {"kind", "service", "note"}  # note: pause --note


def test_every_status_has_a_colour_and_a_button_style():
    pytest.importorskip("ipywidgets")
    from nbsched.frontends.ui.base import STATUS_BUTTON_STYLES

    assert tuple(STATUS_COLOURS) == STATUSES
    assert tuple(STATUS_BUTTON_STYLES) == STATUSES


# -- the same spellings ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Accept: application/json", ("Accept", "application/json")),
        ("Accept=application/json", ("Accept", "application/json")),
        ("Authorization: Basic YWxhZGRpbg==", ("Authorization", "Basic YWxhZGRpbg==")),
        ("X-Range=bytes:0-99", ("X-Range", "bytes:0-99")),
    ],
)
def test_a_header_is_name_colon_value_or_name_equals_value(typed, expected):
    assert connection_options.header(typed) == expected


@pytest.mark.parametrize("typed", ["Accept", ":json", "=json"])
def test_a_header_without_a_name_is_refused_with_both_spellings_shown(typed):
    with pytest.raises(InvalidInput) as caught:
        connection_options.header(typed)
    assert str(caught.value) == (
        f"Invalid --header {typed!r}: use NAME:VALUE or NAME=VALUE, e.g. --header 'Accept: application/json'."
    )


@pytest.mark.parametrize(("typed", "expected"), [("10", 10.0), ("10s", 10.0), ("1m30s", 90.0), ("0.5", 0.5)])
def test_a_timeout_is_seconds_or_a_duration(typed, expected):
    assert commands.seconds(typed) == expected


@pytest.mark.slow
def test_cli_magic_and_form_make_the_same_job_from_the_same_options(ip, client, dash):
    result = run_cli(
        "schedule", "api.hello", "--every", "5m", "--name", "from-cli", *EVERY_OPTION, home=client.settings.home
    )
    assert result.returncode == 0, result.stderr
    ip.run_line_magic("schedule", f"every 5m api.hello --name from-magic {shlex.join(EVERY_OPTION)}")
    fill_form(dash.form, "from-form")
    dash.form.save.click()
    assert [field for field, widget in dash.form.errors.items() if widget.value] == []

    made = {name: spec_of(client, name) for name in ("from-cli", "from-magic", "from-form")}
    assert made["from-cli"] == made["from-magic"] == made["from-form"]
    expected = {
        "kind": "interval",
        "every": 300.0,
        "tz": "Europe/Warsaw",
        "start": "2030-01-01T09:00:00+00:00",
        "end": "2030-06-01T08:00:00+00:00",
        "repeats": 3,
        "extra": '{"a": 1}',
        "jitter": 5.0,
        "timeout": 30.0,
        "retries": 2,
        "overlap": "queue",
        "misfire": "once",
        "catchup": 3600.0,
        "isolation": "process",
        "active": False,
        "allow_subsecond": True,
    }
    assert {key: made["from-cli"][key] for key in expected} == expected


def fill_form(form, name: str) -> None:
    """The form's fields set to what ``EVERY_OPTION`` says."""
    form.name.value = name
    form.service.value = "api.hello"
    form.kind.value = "interval"
    for unit, widget in form.interval.items():
        widget.value = 5 if unit == "minutes" else 0
    form.tz.value = "Europe/Warsaw"
    form.start.value = datetime(2030, 1, 1, 10, 0)
    form.end.value = datetime(2030, 6, 1, 10, 0)
    form.repeats.value = 3
    form.extra.value = '{"a": 1}'
    values = {"jitter": "5s", "timeout": "30s", "retries": 2, "overlap": "queue", "misfire": "once"}
    for key, value in {**values, "catchup": "1h", "isolation": "process"}.items():
        form.options[key].value = value
    form.active.value = False
    form.allow_subsecond.value = True


@pytest.mark.slow
def test_cli_magic_and_form_take_headers_and_timeouts_in_either_spelling(ip, client):
    url = "http://127.0.0.1:9/data"
    cli_lines = [
        ["cli-colon", url, "--header", "Accept: application/json", "--header", "X-Two=2", "--timeout", "10"],
        ["cli-equals", url, "--header", "Accept=application/json", "--header", "X-Two:2", "--timeout", "10s"],
    ]
    for args in cli_lines:
        result = run_cli("connection", "rest", *args, home=client.settings.home)
        assert result.returncode == 0, result.stderr
    ip.run_line_magic(
        "connection", f'rest magic-colon {url} --header "Accept: application/json" --header X-Two=2 --timeout 10'
    )
    ip.run_line_magic(
        "connection", f"rest magic-equals {url} --header Accept=application/json --header X-Two:2 --timeout 10s"
    )

    for name, lines, timeout in [
        ("form-colon", "Accept: application/json\nX-Two=2", "10"),
        ("form-equals", "Accept=application/json\n\nX-Two:2\n", "10s"),
    ]:
        tab = ConnectionsTab(client, threading.RLock())
        tab.kind.value = "rest"
        tab.name.value, tab.address.value, tab.headers.value, tab.timeout.value = name, url, lines, timeout
        tab.submit()

    definitions = {record["name"]: record["definition"] for record in client.call("connections")}
    assert len(definitions) == 6
    assert all(definition == definitions["cli-colon"] for definition in definitions.values())
    assert definitions["cli-colon"]["headers"] == {"Accept": "application/json", "X-Two": "2"}
    assert definitions["cli-colon"]["timeout"] == 10.0
    tab = ConnectionsTab(client, threading.RLock())
    tab.refresh()
    tab.pick.value = "form-equals"
    assert (tab.headers.value, tab.timeout.value) == ("Accept: application/json\nX-Two: 2", "10s")


@pytest.mark.slow
def test_the_form_refuses_a_bad_header_or_timeout_and_a_masked_secret_by_field(client):
    tab = ConnectionsTab(client, threading.RLock())
    tab.name.value, tab.address.value = "api", "http://127.0.0.1:9/"
    for headers, timeout, field, words in [
        ("no separator", "10s", "headers", "use NAME:VALUE or NAME=VALUE"),
        ("Authorization: ***", "10s", "headers", "is a secret and is never shown"),
        ("", "soon", "timeout", "soon"),
    ]:
        tab.headers.value, tab.timeout.value = headers, timeout
        with pytest.raises(InvalidInput, match=words) as caught:
            tab.submit()
        assert caught.value.field == field
    assert client.call("connections") == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cli_args", "magic_line"),
    [
        (["schedule", "api.hello", "--every", "5m", "--extra", "{a: 1}"], "every 5m api.hello --extra '{a: 1}'"),
        (["history", "--status", "eror"], "history --status eror"),
        (["run", "job", "--timeout", "soon"], "run job --timeout soon"),
    ],
    ids=["extra", "status", "timeout"],
)
def test_cli_and_magic_refuse_a_bad_value_in_the_same_words_without_a_runner(ip, home, cli_args, magic_line):
    result = run_cli(*cli_args, home=home)
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("schedule", magic_line)
    assert (result.returncode, result.stderr) == (1, f"nbsched: error: {caught.value}\n")
    assert not (home / "runner.pid").exists()


# -- errors name their field, across the socket ----------------------------------------
@pytest.mark.parametrize(
    "error",
    [InvalidJob("Invalid cron expression 'x'.", field="cron"), ServiceNotFound("No service named 'x'.")],
)
def test_an_error_reply_carries_the_field_the_error_is_about(error):
    reply = json.loads(protocol.error_reply(7, error))
    assert reply["error"]["field"] == error.field
    again = protocol.remote_error(reply["error"])
    assert (type(again), str(again), again.field) == (type(error), str(error), error.field)


def test_an_error_about_no_field_travels_as_before():
    reply = json.loads(protocol.error_reply(7, NbschedError("Something went wrong.")))
    assert reply["error"] == {"type": "NbschedError", "message": "Something went wrong."}
    assert protocol.remote_error(reply["error"]).field is None


@pytest.mark.slow
def test_the_runner_names_the_field_of_a_refused_job(client):
    with pytest.raises(InvalidJob) as caught:
        client.schedule("api.hello", cron="61 * * * *")
    assert caught.value.field == "cron"
    with pytest.raises(InvalidJob) as caught:
        client.schedule("api.hello", every="5m", jitter="soon")
    assert caught.value.field == "jitter"
