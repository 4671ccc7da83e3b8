"""Notifications of finished runs, against a real runner, a real SMTP server (aiosmtpd) and a real HTTP server:
one per final run record, with the run's data; one that fails is written into the run's logs and changes nothing
else; a server that hangs holds up no other notification."""

from __future__ import annotations

import json
import time

import pytest
from conftest import HELLO_SERVICE, wait_until
from servers import free_port, wait_for_mail

import nbsched
from nbsched.errors import InvalidInput
from nbsched.model.notify import parse_notify_on, parse_targets

pytestmark = pytest.mark.slow

SERVICES = """
from pathlib import Path
from nbsched import Service


class Boom(Service):
    name = "api.boom"

    def handle(self):
        self.logger.info("about to fail")
        raise RuntimeError("boom on purpose")


class Report(Service):
    name = "api.report"

    def handle(self):
        import os
        folder = Path(os.environ["NBSCHED_HOME"]) / "outputs" / "report"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.cid}.ipynb"
        path.write_text('{"cells": [], "nbformat": 4}')
        self.response.payload = str(path)
"""


@pytest.fixture
def notified(home, monkeypatch, smtp_server, http_server):
    """A runner whose webhooks wait 1 s per attempt, with an SMTP connection ``mail`` to the test's server."""
    monkeypatch.setenv("NBSCHED_NOTIFY_TIMEOUT", "1")
    client = nbsched.connect()
    client.deploy([str(HELLO_SERVICE), SERVICES])
    client.connections.add_smtp("mail", smtp_server.host, smtp_server.port, sender="nbsched@example.com")
    yield client
    client.close()


def test_a_failed_run_sends_one_email_and_one_webhook_with_its_data_once_its_retries_are_spent(
    notified, smtp_server, http_server
):
    hook = http_server.route("/hook", body="thanks")
    notified.schedule(
        "api.boom", name="nightly", every="1h", start="in 1h", retries=1, notify=["smtp:mail:ops@example.com"]
    )
    notified.update("nightly", notify=f"smtp:mail:ops@example.com webhook:{hook}", notify_on="error")
    first = notified.execute("nightly")

    wait_until(lambda: len(notified.history(job="nightly", status="error")) == 2, timeout=30, what="both attempts")
    (mail,) = wait_for_mail(smtp_server, 1)
    wait_until(lambda: http_server.requests, what="the webhook")
    time.sleep(0.5)  # nothing more comes
    assert len(smtp_server.messages) == 1 and len(http_server.requests) == 1

    last = int(notified.history(job="nightly")["run_id"].max())
    assert last != first
    posted = json.loads(http_server.requests[0].body)
    assert (posted["run_id"], posted["job"], posted["status"], posted["attempt"]) == (last, "nightly", "error", 2)
    assert posted["error"] == "RuntimeError: boom on purpose" and "about to fail" in posted["logs"]
    assert http_server.requests[0].headers["Content-Type"] == "application/json"
    assert mail.rcpt_tos == ["ops@example.com"] and mail.mail_from == "nbsched@example.com"
    assert mail.message["Subject"] == f"[nbsched] nightly: error (run {last})"
    body = mail.body()
    assert "Error: RuntimeError: boom on purpose" in body and "about to fail" in body and "Traceback" in body
    assert "notification" not in (notified.run(last)["logs"] or "")  # none failed


def test_a_successful_run_mails_its_executed_notebook_when_told_about_success_only(notified, smtp_server):
    notified.schedule(
        "api.report", name="report", every="1h", start="in 1h", notify="smtp:mail:boss@example.com", notify_on="success"
    )
    notified.schedule(
        "api.boom", name="quiet", every="1h", start="in 1h", notify="smtp:mail:boss@example.com", notify_on="success"
    )
    run_id = notified.execute("report")
    notified.wait(notified.execute("quiet"), timeout=30)
    record = notified.wait(run_id, timeout=30)

    mails = wait_for_mail(smtp_server, 1)
    assert [m.message["Subject"] for m in mails] == [f"[nbsched] report: ok (run {run_id})"]
    mail = mails[0]
    assert record["status"] == "ok" and record["output"].endswith(".ipynb")
    name = record["output"].rsplit("/", 1)[-1]
    assert mail.attachments() == {name: b'{"cells": [], "nbformat": 4}'}
    assert f"run {run_id}" in mail.message["Subject"] and "Output:" in mail.body()
    time.sleep(0.5)
    assert len(smtp_server.messages) == 1  # the failed run of "quiet" told no one


def test_a_dead_or_hanging_webhook_leaves_the_run_alone_and_holds_up_no_other_notification(
    notified, smtp_server, http_server
):
    hanging = http_server.route("/slow", delay=60)
    dead = f"http://127.0.0.1:{free_port()}/gone"
    targets = [f"webhook:{hanging}", f"webhook:{dead}", "smtp:nosuch:a@example.com", "smtp:mail:ops@example.com"]
    notified.schedule("api.hello", name="watched", every="1h", start="in 1h", notify=targets, notify_on=["success"])
    started = time.monotonic()
    run_id = notified.execute("watched")

    wait_for_mail(smtp_server, 1)
    assert time.monotonic() - started < 5  # not after the hanging webhook's attempts
    assert notified.wait(run_id, timeout=30)["status"] == "ok"

    def failures() -> list[str]:
        return [line for line in (notified.run(run_id)["logs"] or "").splitlines() if "notification to" in line]

    wait_until(lambda: len(failures()) == 3, timeout=30, what="three failures in the run's logs")
    lines = failures()
    assert any(hanging in line and "timed out (after 3 attempt(s), 1s timeout each)" in line for line in lines)
    assert any(dead in line and "after 3 attempt(s)" in line for line in lines)
    assert any("smtp:nosuch:a@example.com" in line and "No connection named 'nosuch'" in line for line in lines)
    record = notified.run(run_id)
    assert record["status"] == "ok" and record["error"] is None and "hello, world" in record["logs"]
    assert notified.history(job="watched")["logs"].iloc[0].count("notification to") == 3


def test_a_service_target_is_invoked_with_the_run_record_as_its_payload(notified):
    notified.schedule("api.boom", name="chained", every="1h", start="in 1h", notify="service:api.hello")
    run_id = notified.execute("chained")
    notified.wait(run_id, timeout=30)

    wait_until(lambda: len(notified.history(service="api.hello")) == 1, what="the invoked service's run")
    invoked = notified.history(service="api.hello").iloc[0]
    assert invoked["trigger"] == "invoke" and invoked["status"] == "ok"
    assert notified.run(run_id)["status"] == "error"


def test_targets_and_statuses_are_read_in_every_spelling_and_refused_by_name():
    assert parse_targets("webhook:https://a.example/h,smtp:m:a@x.io,b@x.io service:svc") == (
        "webhook:https://a.example/h",
        "smtp:m:a@x.io,b@x.io",
        "service:svc",
    )
    assert parse_targets(["service:a", "service:a"]) == ("service:a",)
    assert parse_notify_on("ok, timeout", has_targets=True) == ("success", "timeout")
    assert parse_notify_on(None, has_targets=True) == ("error", "timeout")
    for bad, piece in [
        ("mailto:a@b.c", "it starts with none of smtp:, webhook:, service:"),
        ("webhook:ftp://x", "a webhook needs an http or https URL"),
        ("smtp:mail:not-an-address", "names an SMTP connection and one or more addresses"),
        ("service:bad name", "a service name is"),
    ]:
        with pytest.raises(InvalidInput, match=r"use smtp:CONNECTION:to@example\.com") as caught:
            parse_targets(bad)
        assert piece in str(caught.value) and caught.value.field == "notify"
    with pytest.raises(InvalidInput, match="Did you mean 'error'") as caught:
        parse_notify_on("erorr", has_targets=True)
    assert caught.value.field == "notify_on"


def test_fires_missed_while_no_runner_was_up_are_told_once_when_a_runner_starts(notified, home, http_server):
    from conftest import stop_runner

    hook = http_server.route("/missed")
    notified.schedule("api.hello", name="beat", every="1s", notify=f"webhook:{hook}", notify_on="missed")
    wait_until(lambda: len(notified.history(job="beat")) >= 1, what="a first fire")
    notified.close()
    stop_runner(home)
    time.sleep(2.5)
    client = nbsched.connect()
    try:
        wait_until(lambda: http_server.requests, what="the missed fires' notification")
        (posted,) = [json.loads(request.body) for request in http_server.requests]
        assert posted["status"] == "missed" and posted["job"] == "beat" and "Missed" in posted["error"]
        assert client.run(posted["run_id"])["status"] == "missed"
    finally:
        client.close()


def test_a_send_cancelled_at_stop_or_done_after_the_loop_closed_reports_nothing_and_raises_nothing(tmp_path):
    from concurrent.futures import Future

    from nbsched.runner.notify import Notifier

    told = []

    def closed_loop(*args):
        raise RuntimeError("Event loop is closed")

    notifier = Notifier(engine=None, call_soon=lambda *args: told.append(args), home=tmp_path)
    cancelled, failed = Future(), Future()
    cancelled.cancel()
    failed.set_exception(OSError("refused"))
    notifier._report("outcome", "webhook:http://x", cancelled)  # cancelled by the stop: nothing to tell
    assert told == []
    notifier._report("outcome", "webhook:http://x", failed)
    assert len(told) == 1 and isinstance(told[0][-1], OSError)
    notifier.call_soon = closed_loop
    notifier._report("outcome", "webhook:http://x", failed)  # after the loop closed: no error in the thread
    notifier.pool.shutdown()
