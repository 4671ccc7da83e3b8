"""The dashboard driven from Python: set widget values, click buttons, against a real runner in a temp home."""

from __future__ import annotations

import html
import re
import socket
from collections.abc import Iterator

import pytest
from conftest import wait_until

from nbsched.errors import InvalidJob, NbschedError, ServiceNotFound
from nbsched.frontends.ui import HISTORY, Dashboard
from nbsched.frontends.ui.base import live_widgets
from nbsched.frontends.ui.form import field_of_error

FAILING_SERVICE = """
from nbsched import Service

class Boom(Service):
    name = "api.boom"

    def handle(self):
        raise RuntimeError("boom on purpose")
"""


@pytest.fixture
def dash(client) -> Iterator[Dashboard]:
    dashboard = Dashboard(client, auto_refresh=False)
    yield dashboard
    dashboard.close()


def fill_cron_job(dash: Dashboard, name: str, cron: str) -> None:
    dash.form.name.value = name
    dash.form.service.value = "api.hello"
    dash.form.kind.value = "cron"
    dash.form.cron.value = cron


def text(widget) -> str:
    """What an HTML widget shows, without tags and entities."""
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


def job_names(client) -> list[str]:
    return list(client.jobs()["name"])


def test_form_creates_a_cron_job_the_runner_lists(dash, client):
    fill_cron_job(dash, "weekly-report", "0 9 * * mon")
    dash.form.tz.value = "Europe/Warsaw"

    dash.form.save.click()

    job = client.job("weekly-report")
    assert (job["cron"], job["tz"], job["service"]) == ("0 9 * * mon", "Europe/Warsaw", "api.hello")
    assert "Created job 'weekly-report'" in text(dash.form.result)
    assert dash.jobs.visible_names() == ["weekly-report"]


def test_cron_field_previews_reading_and_next_five_times_as_typed(dash):
    fill_cron_job(dash, "p", "0 9 * * mon")

    assert "Monday" in text(dash.form.cron_preview)
    assert len(dash.form.preview_times) == 5
    assert all(moment.weekday() == 0 and moment.hour == 9 for moment in dash.form.preview_times)
    assert dash.form.errors["cron"].value == ""


def test_invalid_cron_shows_an_inline_message_and_stores_nothing(dash, client):
    fill_cron_job(dash, "bad", "61 * * * *")
    assert "Invalid cron expression" in text(dash.form.errors["cron"])  # live, before saving
    assert dash.form.cron_preview.value == ""

    dash.form.save.click()

    assert "Invalid cron expression" in text(dash.form.errors["cron"])
    assert dash.form.result.value == ""
    assert job_names(client) == []


def test_zero_interval_is_refused_next_to_the_interval_fields(dash, client):
    dash.form.name.value = "never"
    dash.form.kind.value = "interval"
    for field in dash.form.interval.values():
        field.value = 0

    dash.form.save.click()

    assert "interval" in text(dash.form.errors["every"])
    assert job_names(client) == []


def test_interval_fields_start_empty_so_30_hours_saves_every_30_hours(dash, client):
    dash.form.name.value = "long"
    dash.form.kind.value = "interval"
    assert [widget.value for widget in dash.form.interval.values()] == [0, 0, 0, 0, 0]
    assert text(dash.form.interval_text) == "No interval yet: set one of the fields above, e.g. 5 minutes."

    dash.form.interval["hours"].value = 30
    assert text(dash.form.interval_text) == "Saves: every 1d6h (1 day, 6 hours)"  # before Save
    dash.form.save.click()

    job = client.job("long")
    assert (job["every"], job["definition"]) == (108000.0, "every 1d6h")
    assert "Created job 'long': every 1d6h" in text(dash.form.result)


def test_the_interval_in_words_follows_each_field_as_it_changes(dash):
    form = dash.form
    form.interval["minutes"].value = 90
    assert text(form.interval_text) == "Saves: every 1h30m (1 hour, 30 minutes)"
    form.interval["weeks"].value = 1
    form.interval["seconds"].value = 1
    assert text(form.interval_text) == "Saves: every 1w1h30m1s (1 week, 1 hour, 30 minutes, 1 second)"
    for widget in form.interval.values():
        widget.value = 0
    assert text(form.interval_text).startswith("No interval yet")


def test_bad_jitter_opens_more_options_and_shows_the_message_there(dash, client):
    fill_cron_job(dash, "jittery", "*/5 * * * *")
    dash.form.jitter.value = "soon"

    dash.form.save.click()

    assert "Invalid jitter" in text(dash.form.errors["jitter"])
    assert dash.form.more.selected_index == 0
    assert job_names(client) == []


def test_extra_that_looks_like_json_must_be_json(dash, client):
    fill_cron_job(dash, "extra-job", "*/5 * * * *")
    dash.form.extra.value = '{"who": '
    assert "not valid JSON" in text(dash.form.errors["extra"])

    dash.form.save.click()
    assert job_names(client) == []

    dash.form.extra.value = '{"who": "form"}'
    dash.form.save.click()
    assert client.job("extra-job")["extra"] == '{"who": "form"}'


REFUSALS = [
    ({"cron": "61 * * * *"}, "cron"),
    ({"every": "0s"}, "every"),
    ({"every": "100ms"}, "every"),
    ({"every": "5m", "tz": "Mars/Base"}, "tz"),
    ({"every": "5m", "name": "no spaces please"}, "name"),
    ({"every": "5m", "start": "soonish"}, "start"),
    ({"every": "5m", "start": "2030-02-01", "end": "2030-01-01"}, "end"),
    ({"at": "tomorrowish"}, "at"),
    ({}, "kind"),
    ({"every": "5m", "repeats": "0"}, "repeats"),
    ({"every": "5m", "jitter": "soon"}, "jitter"),
    ({"every": "5m", "timeout": "-1s"}, "timeout"),
    ({"every": "5m", "retries": "lots"}, "retries"),
    ({"every": "5m", "overlap": "never"}, "overlap"),
    ({"every": "5m", "misfire": "never"}, "misfire"),
    ({"every": "5m", "catchup": "0s"}, "catchup"),
    ({"every": "5m", "isolation": "thread"}, "isolation"),
    ({"every": "5m", "name": "taken"}, "name"),
]


@pytest.mark.parametrize(("args", "field"), REFUSALS, ids=[field for _, field in REFUSALS])
def test_runner_refusals_name_the_form_field_they_concern(client, args, field):
    client.schedule("api.hello", name="taken", every="1h")
    with pytest.raises(NbschedError) as caught:
        client.schedule("api.hello", **{"name": "job", **args})
    assert field_of_error(caught.value) == field


def test_an_unknown_service_is_shown_next_to_the_service_field(client):
    with pytest.raises(ServiceNotFound) as caught:
        client.schedule("api.nope", every="5m")
    assert field_of_error(caught.value) == "service"


@pytest.mark.parametrize(
    "error",
    [InvalidJob("Something nobody expected."), InvalidJob("Invalid note: too long.", field="note")],
    ids=["no field", "a field the form has not"],
)
def test_an_error_about_no_field_of_the_form_is_shown_under_the_form(error):
    assert field_of_error(error) == "form"


def test_execute_button_records_a_manual_run(dash, client):
    client.schedule("api.hello", name="nightly", cron="0 2 * * *")
    dash.jobs.refresh()

    dash.jobs.rows["nightly"].execute.click()

    wait_until(lambda: len(client.history(job="nightly", status="ok")) == 1, what="the run to finish")
    assert list(client.history(job="nightly")["trigger"]) == ["manual"]
    assert "started" in text(dash.jobs.status)


def test_jobs_table_shows_jobs_with_and_without_runs_side_by_side(dash, client):
    client.schedule("api.hello", name="ran", cron="0 2 * * *")
    client.wait(client.execute("ran"))
    client.schedule("api.hello", name="never-ran", cron="0 3 * * *")

    dash.jobs.refresh()

    assert dash.jobs.status.value == ""
    assert ">ok<" in dash.jobs.rows["ran"].cells.value
    assert "never-ran" in text(dash.jobs.rows["never-ran"].cells)


def test_pause_and_resume_buttons_switch_the_job(dash, client):
    client.schedule("api.hello", name="hourly", cron="0 * * * *")
    dash.jobs.refresh()
    row = dash.jobs.rows["hourly"]

    assert row.toggle.tooltip == (
        "Pause this job: its schedule starts no runs until Resume "
        "(a run already going finishes; Execute still runs it now)"
    )

    assert ">active<" in row.cells.value
    row.toggle.click()
    assert (bool(client.job("hourly")["active"]), row.toggle.description) == (False, "Resume")
    assert ">paused<" in row.cells.value  # the row shows the job's state
    assert row.toggle.tooltip == (
        "Resume this job: its schedule starts runs again from its next time (missed times are not run)"
    )

    row.toggle.click()
    assert (bool(client.job("hourly")["active"]), row.toggle.description) == (True, "Pause")
    assert row.toggle.tooltip.startswith("Pause this job: its schedule starts no runs until Resume")


def test_delete_needs_a_confirmation(dash, client):
    client.schedule("api.hello", name="doomed", cron="0 3 * * *")
    dash.jobs.refresh()

    dash.jobs.rows["doomed"].delete.click()
    assert job_names(client) == ["doomed"]  # only asked
    assert "doomed" in text(dash.jobs.confirm_text)
    dash.jobs.confirm_no.click()
    assert job_names(client) == ["doomed"]

    dash.jobs.rows["doomed"].delete.click()
    dash.jobs.confirm_yes.click()
    assert job_names(client) == []
    assert "doomed" not in dash.jobs.rows


def test_filter_box_shows_only_matching_jobs(dash, client):
    for name in ("sales-sync", "sales-report", "cleanup"):
        client.schedule("api.hello", name=name, cron="0 4 * * *")
    dash.jobs.refresh()

    dash.jobs.filter.value = "sales"

    assert dash.jobs.visible_names() == ["sales-report", "sales-sync"]


def test_edit_loads_the_job_and_saves_only_what_changed(dash, client):
    client.schedule("api.hello", name="poll", every="5m", extra={"who": "edit"})
    dash.jobs.refresh()

    dash.jobs.rows["poll"].edit.click()
    assert dash.tabs.selected_index == 1
    assert (dash.form.name.value, dash.form.name.disabled, dash.form.interval["minutes"].value) == ("poll", True, 5)
    dash.form.interval["minutes"].value = 10
    dash.form.save.click()

    job = client.job("poll")
    assert (job["every"], job["extra"]) == (600.0, {"who": "edit"})
    assert "Saved job 'poll'" in text(dash.form.result)


def test_history_filters_by_status_and_shows_a_runs_traceback(dash, client):
    client.deploy(FAILING_SERVICE)
    ok_run, bad_run = client.invoke("api.hello"), client.invoke("api.boom")
    client.wait(ok_run)
    client.wait(bad_run)
    dash.tabs.selected_index = HISTORY

    dash.history.status_filter.value = "error"

    assert [record["run_id"] for record in dash.history.records] == [bad_run]
    assert len(dash.history.body.children) == 2  # one row of the grid: its button and its cells
    row = dash.history.rows[0]
    assert (row.button.description, row.button.button_style) == (f"#{bad_run}", "danger")
    row.button.click()
    assert "RuntimeError: boom on purpose" in text(dash.history.details)

    dash.history.status_filter.value = ""
    assert {record["run_id"] for record in dash.history.records} == {ok_run, bad_run}


def test_history_chart_counts_the_runs_per_minute_by_status(dash, client):
    client.deploy(FAILING_SERVICE)
    for run_id in [client.invoke("api.hello") for _ in range(3)] + [client.invoke("api.boom")]:
        client.wait(run_id)

    dash.history.refresh()

    chart = dash.history.chart.value
    assert chart.startswith("<svg") and chart.endswith("</svg>")
    assert "ok 3" in text(dash.history.chart) and "error 1" in text(dash.history.chart)
    assert "skipped 0" in text(dash.history.chart)


def test_jobs_tab_pages_through_many_jobs_with_one_page_of_rows(client):
    names = [f"job-{i:03d}" for i in range(23)]
    for name in names:
        client.schedule("api.hello", name=name, cron="0 2 * * *")
    dash = Dashboard(client, auto_refresh=False)
    dash.jobs.page_rows = 10
    try:
        dash.jobs.refresh()
        first_rows = list(dash.jobs.slots)
        dash.jobs.next.click()
        dash.jobs.next.click()

        assert dash.jobs.visible_names() == names[20:]
        assert "jobs 21\u201323 of 23" in text(dash.jobs.where)
        assert (dash.jobs.next.disabled, dash.jobs.previous.disabled) == (True, False)
        assert dash.jobs.slots == first_rows  # the same ten rows, refilled
        dash.jobs.rows["job-021"].execute.click()
        assert list(client.history(job="job-021")["trigger"]) == ["manual"]
        dash.jobs.previous.click()
        assert dash.jobs.visible_names() == names[10:20]
    finally:
        dash.close()


def test_jobs_tab_filters_by_state_and_sorts_in_the_runner(dash, client):
    for name in ("alpha", "beta", "gamma"):
        client.schedule("api.hello", name=name, cron="0 2 * * *")
    client.pause("beta")
    dash.jobs.refresh()

    dash.jobs.state_filter.value = "active"
    assert dash.jobs.visible_names() == ["alpha", "gamma"]
    dash.jobs.sort.value = "-name"
    assert dash.jobs.visible_names() == ["gamma", "alpha"]
    dash.jobs.state_filter.value = ""
    dash.jobs.status_filter.value = "none"
    assert dash.jobs.visible_names() == ["gamma", "beta", "alpha"]
    dash.jobs.filter.value = "nothing-like-it"
    assert (dash.jobs.visible_names(), text(dash.jobs.where)) == ([], "no jobs that match")


def test_refresh_sends_only_the_rows_that_changed(dash, client):
    for name in ("one", "two", "three"):
        client.schedule("api.hello", name=name, cron="0 2 * * *")
    dash.jobs.refresh()
    changed = []
    for row in dash.jobs.shown:
        row.cells.observe(lambda change, row=row: changed.append(row.name), names="value")

    client.pause("two")
    dash.jobs.refresh()

    assert changed == ["two"]
    assert ">paused<" in dash.jobs.rows["two"].cells.value


def test_a_dashboard_of_many_jobs_holds_a_page_of_widgets(client):
    for i in range(120):
        client.schedule("api.hello", name=f"many-{i:03d}", cron="0 2 * * *")
    before = live_widgets()
    dash = Dashboard(client, auto_refresh=False)
    try:
        built = live_widgets() - before
        dash.tabs.selected_index = HISTORY
        with_history = live_widgets() - before
    finally:
        dash.close()
    assert len(dash.jobs.shown) == 50
    assert built <= 400 and with_history <= 500, (built, with_history)


def test_history_tab_pages_from_the_newest_run(dash, client):
    run_ids = [client.invoke("api.hello") for _ in range(5)]
    for run_id in run_ids:
        client.wait(run_id)
    dash.history.page_rows = 2
    dash.tabs.selected_index = HISTORY

    dash.history.older.click()
    dash.history.older.click()

    assert [record["run_id"] for record in dash.history.records] == [run_ids[0]]
    assert (dash.history.older.disabled, text(dash.history.where)) == (True, "runs 5\u20135")
    dash.history.rows[0].button.click()
    assert f"Run {run_ids[0]}" in text(dash.history.details)
    dash.history.job.value = "no-such-job"
    assert (dash.history.records, text(dash.history.where)) == ([], "no runs")


def test_background_refresh_lists_a_job_created_elsewhere(client):
    dashboard = Dashboard(client, refresh_seconds=0.1)
    try:
        client.schedule("api.hello", name="from-elsewhere", cron="0 5 * * *")
        wait_until(lambda: "from-elsewhere" in dashboard.jobs.rows, timeout=10, what="the refresh thread")
    finally:
        dashboard.close()
    assert not dashboard._thread.is_alive()


def test_connection_form_never_shows_a_stored_password(dash, client):
    dash.tabs.selected_index = 4
    tab = dash.connections
    tab.kind.value = "rest"
    tab.name.value = "Data Source"
    tab.address.value = "https://api.example.com/v1"
    tab.username.value = "analyst"
    tab.password.value = "s3cret-Pa55"

    tab.save.click()

    assert "Saved rest connection 'Data Source'" in text(tab.status)
    assert "s3cret-Pa55" not in text(tab.table)
    tab.pick.value = ""
    tab.pick.value = "Data Source"
    assert (tab.address.value, tab.username.value, tab.password.value) == ("https://api.example.com/v1", "analyst", "")
    assert "never shown" in text(tab.secret_hint)


def test_connection_test_runs_in_the_background_and_reports_failure(dash, client):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client.connections.add_rest("Nowhere", f"http://127.0.0.1:{port}")
    dash.connections.refresh()
    dash.connections.pick.value = "Nowhere"

    dash.connections.test.click()
    dash.connections.test_thread.join(timeout=60)

    assert "Nowhere:" in text(dash.connections.status)
    assert "#cf222e" in dash.connections.status.value  # shown in the error colour
    assert (dash.connections.test.disabled, dash.connections.test.description) == (False, "Test")
