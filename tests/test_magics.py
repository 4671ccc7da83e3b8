"""The notebook front end, driven through a real IPython shell: %%service, %schedule, %connection."""

from __future__ import annotations

import sys
from datetime import timedelta

import pandas as pd
import pytest
from conftest import wait_until
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from servers import SMTP_PASSWORD, SMTP_USER

import nbsched
from nbsched.frontends.magics import NbschedMagics, handle_source
from nbsched.model.runs import RUN_FIELDS
from nbsched.worker.loading import source_version

FAILING_SERVICE = """\
from nbsched import Service


class Flaky(Service):
    name = "demo.flaky"

    def handle(self):
        if self.job and self.job.run_number % 2 == 0:
            raise ValueError("even runs fail")
        self.response.payload = "fine"
"""


def schedule(ip, line: str):
    return ip.run_line_magic("schedule", line)


def usage_error(ip, line: str, magic: str = "schedule") -> str:
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic(magic, line)
    return str(caught.value)


# -- loading -----------------------------------------------------------------------
def test_load_ext_registers_the_three_magics(shell):
    assert {"schedule", "connection"} <= set(shell.magics_manager.magics["line"])
    assert "service" in shell.magics_manager.magics["cell"]
    assert "load_ipython_extension" in nbsched.__all__


def test_schedule_without_arguments_prints_its_help(ip, capsys):
    schedule(ip, "")
    out = capsys.readouterr().out
    assert out.startswith("%schedule SUBCOMMAND")
    for word in ("every", "cron", "once", "history", "runner start|stop|status|restart", "config"):
        assert word in out
    assert not (nbsched.config.settings().home / "runner.pid").exists()  # help starts no runner


# -- %%service ---------------------------------------------------------------------
def test_service_cell_deploys_every_service_class_with_its_version(ip, client, capsys):
    cell = (
        "from nbsched import Service\n\n"
        "class One(Service):\n    name = 'cell.one'\n    def handle(self):\n        self.response.payload = 1\n\n"
        "class Two(Service):\n    name = 'cell.two'\n    def handle(self):\n        self.response.payload = 2\n"
    )
    ip.run_cell_magic("service", "", cell)
    version = source_version(cell)
    assert capsys.readouterr().out.splitlines() == [
        f"deployed cell.one (version {version})",
        f"deployed cell.two (version {version})",
    ]
    assert ip.user_ns["One"].name == "cell.one"  # the cell ran in the kernel too
    services = ip.magics_manager.registry[NbschedMagics.__name__].session.client().services()
    assert set(services["name"]) == {"api.hello", "cell.one", "cell.two"}  # api.hello: the client fixture's


def test_service_cell_with_a_name_becomes_the_body_of_handle(ip, client, capsys):
    ip.run_cell_magic("service", "my.quick-svc", "self.response.payload = {'answer': 41 + 1}\n")
    source = handle_source("my.quick-svc", "self.response.payload = {'answer': 41 + 1}\n")
    assert capsys.readouterr().out == f"deployed my.quick-svc (version {source_version(source)})\n"
    assert ip.user_ns["MyQuickSvc"].name == "my.quick-svc"
    schedule(ip, "invoke my.quick-svc --wait")
    out = capsys.readouterr().out
    assert ": ok in " in out.splitlines()[0]
    assert '"answer": 42' in out


def test_service_cell_warns_about_a_name_from_another_cell(ip, client, capsys):
    ip.user_ns["threshold"] = 10
    ip.run_cell_magic("service", "uses.other.cell", "limit = 3\nif threshold > limit:\n    print('high')\n")
    warning, deployed = capsys.readouterr().out.splitlines()
    assert warning == (
        "warning: <cell>, line 2: 'threshold' is neither defined nor imported here; the runner will not have it "
        "(define or import it in this cell or file)."
    )
    assert deployed.startswith("deployed uses.other.cell (version ")


def test_service_cell_with_a_syntax_error_is_one_line(ip):
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("service", "", "from nbsched import Service\nclass A(Service)\n    pass\n")
    assert str(caught.value) == "Cannot deploy <cell>, line 2: expected ':'. Fix the syntax and deploy again."


# -- scheduling and history ----------------------------------------------------------
def test_every_job_fires_and_history_is_a_dataframe_in_the_users_time_zone(ip, client, capsys):
    schedule(ip, 'every 1s api.hello --name tick --extra \'{"who": "magic"}\'')
    assert capsys.readouterr().out.startswith("scheduled tick: every 1s, runs api.hello; next run ")
    wait_until(lambda: len(client.history(job="tick")) >= 2, what="two runs of tick")
    frame = schedule(ip, "history tick")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(RUN_FIELDS)
    assert set(frame["status"]) <= {"ok", "running"}
    assert str(frame["scheduled_at"].dt.tz) == "UTC"
    schedule(ip, "config timezone=Europe/Warsaw")
    assert capsys.readouterr().out == "timezone=Europe/Warsaw (for this session; NBSCHED_TIMEZONE)\n"
    local = schedule(ip, "history tick --limit 1")
    assert str(local["scheduled_at"].dt.tz) == "Europe/Warsaw"
    assert len(local) == 1


def test_history_filters_by_status_since_and_limit(ip, client):
    client.deploy(FAILING_SERVICE)
    schedule(ip, "every 1s demo.flaky --name flaky")
    wait_until(lambda: {"ok", "error"} <= set(client.history(job="flaky")["status"]), what="an ok and an error run")
    errors = schedule(ip, "history flaky --status error")
    assert len(errors) >= 1
    assert set(errors["status"]) == {"error"}
    assert set(errors["error"]) == {"ValueError: even runs fail"}
    assert len(schedule(ip, "history --limit 1")) == 1
    assert len(schedule(ip, "history flaky --since 1h")) >= 2
    assert schedule(ip, 'history flaky --since "2999-01-01 00:00"').empty
    assert len(nbsched.history(job="flaky", status="ok")) >= 1  # the module-level convenience


def test_cron_and_once_jobs_from_quoted_arguments(ip, client, capsys):
    schedule(ip, 'cron "*/5 9-17 * * mon-fri" api.hello --name office --tz Europe/Warsaw')
    schedule(ip, 'once "in 10m" api.hello --name later')
    schedule(ip, "once 2099-01-02 03:04 api.hello --name far")  # an unquoted date works too
    jobs = schedule(ip, "list").set_index("name")
    assert jobs.loc["office", "definition"] == "cron */5 9-17 * * mon-fri (Europe/Warsaw)"
    assert jobs.loc["office", "next_run"].minute % 5 == 0
    soon = jobs.loc["later", "next_run"] - pd.Timestamp.now(tz="UTC")
    assert timedelta(minutes=9) < soon <= timedelta(minutes=10)
    assert jobs.loc["far", "next_run"] == pd.Timestamp("2099-01-02 03:04", tz="UTC")


def test_pause_resume_delete_and_show(ip, client, capsys):
    schedule(ip, "every 1h api.hello --name hourly")
    schedule(ip, 'pause hourly --note "until Monday"')
    jobs = schedule(ip, "list").set_index("name")
    assert not jobs.loc["hourly", "active"]
    assert jobs.loc["hourly", "note"] == "until Monday"
    schedule(ip, "resume hourly")
    assert schedule(ip, "list").set_index("name").loc["hourly", "active"]
    capsys.readouterr()
    schedule(ip, "show hourly")
    shown = capsys.readouterr().out
    assert "        name: hourly\n" in shown
    assert "  definition: every 1h\n" in shown
    schedule(ip, "delete hourly")
    assert capsys.readouterr().out == "deleted hourly (its run history is kept)\n"
    assert schedule(ip, "list").empty


def test_list_pages_filters_and_sorts_like_nbsched_jobs(ip, client):
    for name in ("sync-a", "sync-b", "report"):
        schedule(ip, f"every 1h api.hello --name {name}")
    schedule(ip, "pause sync-b")
    assert list(schedule(ip, "list")["name"]) == ["report", "sync-a", "sync-b"]
    assert list(schedule(ip, "list --search SYNC --sort name --desc")["name"]) == ["sync-b", "sync-a"]
    assert list(schedule(ip, "list --state paused")["name"]) == ["sync-b"]
    assert list(schedule(ip, "list --limit 1 --offset 1")["name"]) == ["sync-a"]
    assert len(schedule(ip, "list --all")) == 3
    assert (
        usage_error(ip, "list --limit -1")
        == "Invalid --limit -1: use a whole number, 0 or more (or --all for every one)."
    )


def test_run_wait_and_logs_show_the_runs_logs(ip, client, capsys):
    client.schedule("api.hello", name="greet", every="1d", start="2099-01-01", extra='{"who": "logs"}')
    schedule(ip, "run greet --wait")
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("run ") and " of greet (manual, " in first and ": ok in " in first
    assert "hello, logs" in out
    run_id = int(first.split()[1])
    schedule(ip, f"logs {run_id}")
    assert "--- logs\n" in capsys.readouterr().out
    schedule(ip, "run greet")
    assert capsys.readouterr().out.startswith("run ")


def test_preview_prints_next_fire_times_and_a_reading(ip, client, capsys):
    schedule(ip, 'preview "0 9 * * mon" --tz Europe/Warsaw --count 2')
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "At 09:00 on Monday (Europe/Warsaw)"
    assert len(lines) == 3
    assert all(line.strip().endswith(("T09:00:00+01:00", "T09:00:00+02:00")) for line in lines[1:])


def test_history_plot_shows_a_timeline_png(ip, client):
    run_id = client.invoke("api.hello")
    client.wait(run_id)
    with capture_output() as captured:
        assert schedule(ip, "history --plot") is None
    assert len(captured.outputs) == 1
    assert captured.outputs[0].data["image/png"]


def test_timeline_has_a_row_per_job_and_a_colour_per_status(client):
    from nbsched.frontends.display import STATUS_COLOURS, timeline

    client.deploy(FAILING_SERVICE)
    client.schedule("demo.flaky", name="flaky", every="1d", start="2099-01-01")
    for _ in range(2):
        client.wait(client.execute("flaky"))
    client.wait(client.invoke("api.hello"))
    figure = timeline(client.history())
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["flaky", "invoke: api.hello"]
    colours = {c.get_label(): tuple(c.get_facecolor()[0][:3]) for c in axes.collections}
    assert colours == {status: rgb(STATUS_COLOURS[status]) for status in ("error", "ok")}  # manual runs of flaky fail
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["error", "ok"]


def rgb(hex_colour: str) -> tuple:
    return tuple(int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))


def test_dollar_name_is_replaced_by_a_notebook_variable_and_braces_are_left_alone(ip, client, capsys):
    ip.user_ns["job_name"] = "from.variable"
    schedule(ip, 'every 1h api.hello --name $job_name --start 2099-01-01 --extra \'{"who": "braces"}\'')
    jobs = schedule(ip, "list")
    assert list(jobs["name"]) == ["from.variable"]
    assert client.job("from.variable")["extra"] == '{"who": "braces"}'


def test_every_subcommand_has_help(ip, capsys):
    schedule(ip, "every --help")
    out = capsys.readouterr().out
    assert out.startswith("usage: %schedule every")
    assert "--extra EXTRA" in out


# -- runner, ui, config --------------------------------------------------------------
def test_runner_status_stop_and_start(ip, home, capsys):
    schedule(ip, "runner status")
    assert capsys.readouterr().out == f"no runner is running for {home}; start one with %schedule runner start\n"
    schedule(ip, "runner start")
    assert capsys.readouterr().out.startswith("started a runner (pid ")
    schedule(ip, "runner start")
    assert capsys.readouterr().out.startswith("runner ")
    schedule(ip, "runner status")
    assert " up since " in capsys.readouterr().out
    schedule(ip, "runner stop")
    assert capsys.readouterr().out.endswith(" stopped\n")
    assert not (home / "runner.sock").exists()


def test_ui_without_the_dashboard_module_says_so_in_one_line(ip, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nbsched.frontends.ui", None)
    assert schedule(ip, "ui") is None
    out = capsys.readouterr().out
    assert out.startswith("The dashboard is not available (")
    assert out.count("\n") == 1


def test_ui_returns_the_dashboard_on_the_sessions_client(ip, client):
    pytest.importorskip("nbsched.frontends.ui")
    dashboard = schedule(ip, "ui")
    try:
        assert dashboard is not None
        assert hasattr(dashboard, "_repr_mimebundle_") or hasattr(dashboard, "_ipython_display_")
    finally:
        getattr(dashboard, "close", lambda: None)()


def test_config_alone_shows_the_settings(ip, home, capsys):
    schedule(ip, "config")
    assert capsys.readouterr().out == (f"timezone=UTC\nhome={home}\nstore=sqlite:///{home / 'nbsched.db'}\nworkers=2\n")


# -- a user's mistakes: one line that says what to do --------------------------------
LOCAL_MISTAKES = [
    (
        "evry 5m api.hello",
        "Unknown subcommand 'evry'. Did you mean 'every'? Subcommands: every, cron, once, list, history, run, invoke, "
        "deploy, pause, resume, delete, purge, show, logs, import, preview, runner, ui, config, help. "
        "See %schedule help.",
    ),
    (
        "cron */5 9-17 * * mon-fri api.hello",
        '%schedule cron: put the cron line in quotes: %schedule cron "*/5 9-17 * * mon-fri" api.hello',
    ),
    (
        "every 5m api.hello --extra '{region: eu}'",
        "Invalid JSON in --extra: Expecting property name enclosed in double quotes at column 2. "
        'Quote it whole, e.g. --extra \'{"region": "eu"}\'.',
    ),
    (
        "every 5m api.hello --nmae sync",
        "%schedule every: unknown option '--nmae'. Did you mean '--name'? Example: %schedule every 5m api.hello "
        "--name hello",
    ),
    (
        "every 5 mins api.hello",
        "%schedule every: write the interval without spaces, then the service, e.g. %schedule every 1h30m api.hello",
    ),
    ("every 5m", "%schedule every: give an interval and a service. Example: %schedule every 5m api.hello --name hello"),
    (
        'cron "0 9 * * mon api.hello',
        '%schedule: No closing quotation (close the quote). Example: %schedule cron "0 9 * * mon" api.hello',
    ),
    (
        "pause",
        "%schedule pause: the following arguments are required: job. Example: %schedule pause sync",
    ),
    (
        "history --status eror",
        "Unknown status 'eror'. Did you mean 'error'? Statuses: running, ok, error, timeout, skipped, missed, "
        "interrupted.",
    ),
    (
        "history --limit ten",
        "%schedule history: argument --limit: invalid int value: 'ten'. Example: %schedule history sync "
        "--status error --since 1h --limit 20",
    ),
    (
        "runner stat",
        "%schedule runner: argument action: invalid choice: 'stat' (choose from 'start', 'stop', 'status', "
        "'restart'). Example: %schedule runner status",
    ),
    (
        "config timezon=Europe/Warsaw",
        "%schedule config: unknown setting 'timezon=Europe/Warsaw'. Did you mean 'timezone'? Use KEY=VALUE with KEY "
        "one of timezone, home, store, workers, e.g. %schedule config timezone=Europe/Warsaw",
    ),
    (
        "config timezone=Europe/Warsw",
        "Unknown time zone 'Europe/Warsw': use an IANA name such as 'Europe/Warsaw', 'America/New_York' or 'UTC'.",
    ),
]


@pytest.mark.parametrize(("line", "message"), LOCAL_MISTAKES, ids=[line for line, _ in LOCAL_MISTAKES])
def test_a_mistake_caught_in_the_notebook_is_one_line_and_starts_no_runner(ip, home, line, message):
    assert usage_error(ip, line) == message
    assert not (home / "runner.pid").exists()


RUNNER_MISTAKES = [
    ("every 5x api.hello", "Invalid interval '5x': a duration looks like '90s', '5m', '2h', '1d', '1w' or '1h30m'."),
    (
        'cron "61 * * * *" api.hello',
        "Invalid cron expression '61 * * * *': the minute field '61' is out of range 0-59. A line has 5 fields "
        "(minute hour day-of-month month day-of-week), e.g. '*/5 9-17 * * mon-fri', or 6 with seconds first, or an "
        "alias such as @hourly or @daily.",
    ),
    (
        "cron bad api.hello",
        "Invalid cron expression 'bad': it has 1 fields. A line has 5 fields (minute hour day-of-month month "
        "day-of-week), e.g. '*/5 9-17 * * mon-fri', or 6 with seconds first, or an alias such as @hourly or @daily.",
    ),
    (
        "once tomorrow api.hello",
        "Invalid at 'tomorrow': dates look like '2026-11-25 10:00', '2026-11-25T10:00:00+01:00', 'now' or 'in 10m'.",
    ),
    (
        "every 5m api.helo",
        "No service named 'api.helo' is deployed. Did you mean 'api.hello'? Services: api.hello. "
        "Deploy it first with %%service.",
    ),
    ("pause hourli", "No job named 'hourli'. Did you mean 'hourly'? Jobs: hourly. See %schedule list."),
    ("run hourli --wait", "No job named 'hourli'. Did you mean 'hourly'? Jobs: hourly. See %schedule list."),
    ("delete nothing", "No job named 'nothing'. Jobs: hourly. See %schedule list."),
    ("show hourli", "No job named 'hourli'. Did you mean 'hourly'? Jobs: hourly. See %schedule list."),
    (
        "history hourli",
        "No job named 'hourli' and no runs of it. Did you mean 'hourly'? Jobs: hourly. See %schedule list.",
    ),
    ("logs 999", "No run with id '999'. See %schedule history for run ids."),
    (
        "every 5m api.hello --tz Mars/Olympus",
        "Unknown time zone 'Mars/Olympus': use an IANA name such as 'Europe/Warsaw', 'America/New_York' or 'UTC'.",
    ),
]


@pytest.fixture
def hourly(client):
    client.schedule("api.hello", name="hourly", every="1h", start="2099-01-01")
    return client


@pytest.mark.parametrize(("line", "message"), RUNNER_MISTAKES, ids=[line for line, _ in RUNNER_MISTAKES])
def test_a_mistake_the_runner_refuses_is_one_line_with_what_to_do(ip, hourly, line, message):
    error = usage_error(ip, line)
    assert error == message
    assert "\n" not in error
    assert list(hourly.jobs()["name"]) == ["hourly"]  # nothing was stored


def test_a_usage_error_in_a_cell_prints_one_line_and_no_traceback(ip, capsys):
    result = ip.run_cell("%schedule evry 5m api.hello")
    captured = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError)
    assert captured.err.startswith("UsageError: Unknown subcommand 'evry'. Did you mean 'every'?")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.out + captured.err


# -- %connection ---------------------------------------------------------------------
def connection(ip, line: str):
    return ip.run_line_magic("connection", line)


def test_connections_are_added_listed_tested_and_deleted_without_showing_secrets(
    ip, client, http_server, smtp_server_auth, monkeypatch, capsys
):
    http_server.route("/data", body="a,b\n1,2\n")
    monkeypatch.setenv("SOURCE_PASSWORD", "Top-Secret-991")
    connection(ip, f'rest "My Data Source" {http_server.url}/data --username me --password-env SOURCE_PASSWORD')
    smtp = f'smtp "My SMTP" {smtp_server_auth.address} --username {SMTP_USER} --password {SMTP_PASSWORD}'
    connection(ip, smtp)
    connection(ip, 'test "My Data Source"')
    connection(ip, 'test "My SMTP"')
    listing = connection(ip, "list")
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        f"REST connection 'My Data Source' -> {http_server.url}/data (secret stored, not shown)",
        f"SMTP connection 'My SMTP' -> {smtp_server_auth.address} (secret stored, not shown)",
    ]
    assert out.splitlines()[2].startswith("connection 'My Data Source': ok (GET ")
    assert out.splitlines()[3].startswith("connection 'My SMTP': ok (")
    assert list(listing["name"]) == ["My Data Source", "My SMTP"]
    shown = listing.to_string() + out
    assert "Top-Secret-991" not in shown and SMTP_PASSWORD not in shown
    connection(ip, 'delete "My SMTP"')
    assert capsys.readouterr().out == "deleted connection 'My SMTP'\n"
    assert list(connection(ip, "list")["name"]) == ["My Data Source"]


def test_a_service_reaches_a_connection_added_with_the_magic(ip, client, http_server, capsys):
    http_server.route("/data", body="fresh data")
    connection(ip, f'rest "My Data Source" {http_server.url}/data --header X-From=nbsched --header "X-Two: 2"')
    ip.run_cell_magic(
        "service", "fetch", 'self.response.payload = self.out.plain_http["My Data Source"].conn.get(self.cid).text\n'
    )
    schedule(ip, "invoke fetch --wait")
    assert "--- output\nfresh data\n" in capsys.readouterr().out
    assert http_server.requests[-1].headers["X-From"] == "nbsched"
    assert http_server.requests[-1].headers["X-Two"] == "2"


def test_kvdb_url_hides_its_password(ip, client, capsys):
    connection(ip, "kvdb redis://:hunter2@127.0.0.1:6379/13")
    assert capsys.readouterr().out == "kvdb -> redis://:***@127.0.0.1:6379/13\n"
    assert "hunter2" not in connection(ip, "list").to_string()


CONNECTION_MISTAKES = [
    (
        "tset x",
        "Unknown subcommand 'tset'. Did you mean 'test'? Subcommands: rest, smtp, kvdb, list, delete, test, help. "
        "See %connection help.",
    ),
    ("smtp mail nohost", "Invalid SMTP address 'nohost': use HOST:PORT, e.g. smtp.example.com:587."),
    (
        "rest src http://h --header Accept",
        "Invalid --header 'Accept': use NAME:VALUE or NAME=VALUE, e.g. --header 'Accept: application/json'.",
    ),
    (
        "rest src http://h --timeout soon",
        "Invalid timeout 'soon': a duration looks like '90s', '5m', '2h', '1d', '1w' or '1h30m'.",
    ),
    (
        "kvdb localhost:6379",
        "Invalid kvdb URL 'localhost:6379': use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0.",
    ),
    (
        "rest src http://h --password-env NO_SUCH_VARIABLE_X",
        "No environment variable 'NO_SUCH_VARIABLE_X'; set it, or use --ask-password.",
    ),
]


@pytest.mark.parametrize(("line", "message"), CONNECTION_MISTAKES, ids=[line for line, _ in CONNECTION_MISTAKES])
def test_a_connection_mistake_is_one_line(ip, home, line, message):
    assert usage_error(ip, line, magic="connection") == message


def test_an_unknown_connection_gets_a_did_you_mean(ip, client, smtp_server):
    connection(ip, f'smtp "My SMTP" {smtp_server.address}')
    assert usage_error(ip, 'test "My SMT"', magic="connection").startswith(
        "No connection named 'My SMT'. Did you mean 'My SMTP'?"
    )
