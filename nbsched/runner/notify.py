"""Notifications: when a job's run ends with a status of its ``notify_on``, tell each of its ``notify`` targets.

One notification per run record that is final: an attempt that is retried notifies no one, its last attempt
does. E-mails and webhooks are sent by a few threads of their own (``config.NOTIFY_THREADS``), never on the
firing path; a webhook's server that hangs holds one thread for its timeout, and the others go on. A service
target is invoked like ``client.invoke`` (a run of its own, in history), with the run record as its payload.

A notification that fails (no such connection or service, a server that refuses, times out or answers an
error) never changes the run's status: a line appended to the run's logs says what failed, so
``nbsched logs RUN_ID`` and history show it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import config
from ..connections import masked_url
from ..connections.smtp import SMTPConnection, SMTPMessage
from ..errors import NbschedError
from ..model.notify import Target, parse_target, wants
from ..model.runs import RUN_FIELDS
from ..model.timeparse import iso
from .retention import output_file

if TYPE_CHECKING:
    from ..model.runs import NewRun, RunUpdate
    from ..store import StoredJob
    from .engine import Engine
    from .inflight import ActiveRun

log = logging.getLogger(__name__)


class WebhookFailed(NbschedError, ConnectionError):
    """A webhook's server did not take a notification (after its attempts)."""


@dataclass
class _Outcome:
    """The targets of one run's notification: how many are still being sent, and what failed."""

    record: dict  # as notifications carry it (``payload``)
    logs: str | None  # the run's logs, whole: failures are added to them
    waiting: int
    failures: list[str] = field(default_factory=list)


class Notifier:
    """Sends the notifications of one runner's finished runs."""

    def __init__(self, engine: Engine, call_soon: Callable, home: Path):
        self.engine = engine
        self.call_soon = call_soon  # the event loop's call_soon_threadsafe: threads report back on the loop
        self.outputs = home / "outputs"
        self.pool = ThreadPoolExecutor(config.NOTIFY_THREADS, thread_name_prefix="nbsched-notify")
        self.queued = 0

    # -- on the event loop ---------------------------------------------------------------
    def run_ended(self, active: ActiveRun, update: RunUpdate, retried: bool) -> None:
        """A listener of ``Results``: notify about a job's final run record, if its job asks for it."""
        job = self.engine.jobs.get(active.job) if active.job and not retried else None
        if job is None or not job.spec.notify or not wants(job.spec.notify_on, update["status"]):
            return
        try:
            self.notify(job.spec.notify, self.record(active, update))
        except Exception:  # a bug here must not cost the run its result
            log.exception("run %s: notifications failed", update["run_id"])

    def run_claimed(self, job: StoredJob, run_id: int, run: NewRun) -> None:
        """A listener of ``Results``: notify about a run created finished (``missed``), if its job asks for it."""
        if not job.spec.notify or not wants(job.spec.notify_on, run["status"]):
            return
        record = {**dict.fromkeys(RUN_FIELDS), **run, "run_id": run_id, "job_uid": job.uid}
        try:
            self.notify(job.spec.notify, record)
        except Exception:
            log.exception("run %s: notifications failed", run_id)

    def record(self, active: ActiveRun, update: RunUpdate) -> dict:
        """The run's record as stored: the update of its end over what it was created with."""
        record = dict.fromkeys(RUN_FIELDS)
        record.update(
            cid=active.message.cid,
            job=active.job,
            job_uid=active.job_uid,
            service=active.service,
            service_version=self.engine.catalog.version_of(active.service),
            trigger=active.trigger,
            attempt=active.attempt,
            scheduled_at=active.scheduled_at,
            runner=self.engine.runner_id,
        )
        record.update(update)
        return record

    def notify(self, targets: tuple[str, ...], record: dict) -> None:
        """Send ``record`` to each target: services at once, e-mails and webhooks by the threads."""
        outcome = _Outcome(payload(record), record.get("logs"), len(targets))
        for text in targets:
            try:
                target = parse_target(text)
                if target.kind == "service":
                    self.invoke(target, outcome.record)
                    self.done(outcome, text, None)
                    continue
                send = self.sender(target, outcome.record)
            except NbschedError as exc:
                self.done(outcome, text, exc)
                continue
            if self.queued >= config.NOTIFY_MAX_QUEUED:
                self.done(outcome, text, f"{self.queued} notifications are waiting to be sent, the most kept")
                continue
            self.queued += 1
            future = self.pool.submit(send)
            future.add_done_callback(lambda f, text=text: self._report(outcome, text, f))

    def invoke(self, target: Target, record: dict) -> None:
        run_id = self.engine.ondemand.invoke(target.name, record, "invoke", self.engine.hooks.clock())
        log.info("run %s: notified service %s (run %s)", record["run_id"], target.name, run_id)

    def sender(self, target: Target, record: dict) -> Callable[[], None]:
        """What a thread calls to send to ``target`` (the connection is read here, on the loop)."""
        if target.kind == "webhook":
            return lambda: post_webhook(target.name, record)
        definition = self.engine.catalog.connection(target.name)
        if definition["kind"] != "smtp":
            raise NbschedError(f"The connection {target.name!r} is a {definition['kind']} connection, not smtp.")
        connection = SMTPConnection(target.name, definition["definition"])
        return lambda: connection.send(email_of(record, target.to, connection, self.outputs))

    def _report(self, outcome: _Outcome, text: str, future) -> None:
        """In the sending thread: have the loop note how the send went (a send cancelled by the runner's stop, or
        done after its loop closed, has no one to tell)."""
        if future.cancelled():
            return
        with contextlib.suppress(RuntimeError):  # the event loop is closed: the runner has stopped
            self.call_soon(self.sent, outcome, text, future.exception())

    def sent(self, outcome: _Outcome, text: str, error: BaseException | None) -> None:
        self.queued -= 1
        self.done(outcome, text, error)

    def done(self, outcome: _Outcome, text: str, error: BaseException | str | None) -> None:
        """One target is done; once all are, the failures go into the run's logs."""
        run_id = outcome.record["run_id"]
        shown = masked_url(text) if text.startswith("webhook:") else text
        if error is None:
            log.info("run %s: notification to %s sent", run_id, shown)
        else:
            reason = " ".join(str(error).split()) or type(error).__name__
            log.warning("run %s: notification to %s failed: %s", run_id, shown, reason)
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            outcome.failures.append(f"{stamp} WARNING nbsched.notify: notification to {shown} failed: {reason}")
        outcome.waiting -= 1
        if outcome.waiting == 0 and outcome.failures:
            logs = "\n".join(filter(None, [outcome.logs, *outcome.failures]))
            self.record_logs(run_id, logs)

    def record_logs(self, run_id: int, logs: str) -> None:
        """Write ``logs`` as the run's logs: into its update still waiting to be written, if there is one (a batch
        writes updates grouped by their fields, so a second update of the run could be written before the first)."""
        pending = self.engine.results.pending
        for update in reversed(pending):
            if update["run_id"] == run_id:
                update["logs"] = logs
                return
        pending.append({"run_id": run_id, "logs": logs})

    async def drain(self, sleep: Callable, seconds: float = config.NOTIFY_GRACE_SECONDS) -> None:
        """Wait (up to ``seconds``) for the notifications being sent; then send no more."""
        deadline = time.monotonic() + seconds
        while self.queued and time.monotonic() < deadline:
            await sleep(0.05)
        if self.queued:
            log.warning("%d notification(s) not sent before the runner stopped", self.queued)
        self.pool.shutdown(wait=False, cancel_futures=True)


def payload(record: dict) -> dict:
    """The run record as notifications carry it: JSON-safe, times as UTC ISO text, long texts cut."""
    shown = {key: iso(value) if isinstance(value, datetime) else value for key, value in record.items()}
    for key in ("output", "logs", "traceback"):
        text = shown.get(key)
        if isinstance(text, str) and len(text) > config.NOTIFY_TEXT_CHARS:
            cut = len(text) - config.NOTIFY_TEXT_CHARS
            shown[key] = f"[{cut} characters cut] " + text[-config.NOTIFY_TEXT_CHARS :]
    return {key: shown.get(key) for key in RUN_FIELDS}


def post_webhook(url: str, record: dict) -> None:
    """POST the run record as JSON; try again (after 1 s, 2 s, ...) on no answer or a 5xx or 429 answer."""
    body = json.dumps(record).encode()
    timeout, reason = config.notify_timeout(), ""
    for attempt in range(1, config.WEBHOOK_ATTEMPTS + 1):
        request = urllib.request.Request(url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("User-Agent", "nbsched-notify")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                answer.read()
                return
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code != 429:
                break
        except (OSError, ValueError) as exc:  # refused, unreachable, timed out
            reason = "timed out" if isinstance(exc, TimeoutError) else str(getattr(exc, "reason", exc))
        if attempt < config.WEBHOOK_ATTEMPTS:
            time.sleep(2.0 ** (attempt - 1))
    raise WebhookFailed(f"{reason} (after {attempt} attempt(s), {timeout:g}s timeout each)")


def email_of(record: dict, to: tuple[str, ...], connection: SMTPConnection, outputs: Path) -> SMTPMessage:
    """The e-mail about a run: what happened, the error, the last log lines, the output; the executed notebook
    attached when the output is one under ``outputs``."""
    lines = [
        f"Run {record['run_id']} of job {record['job']!r} (service {record['service']}) ended {record['status']}.",
        f"Scheduled {record['scheduled_at']}, started {record['started_at']}, finished {record['finished_at']}.",
    ]
    if record.get("error"):
        lines += ["", f"Error: {record['error']}"]
    if record.get("traceback"):
        lines += ["", record["traceback"].rstrip()]
    logs = (record.get("logs") or "").splitlines()[-config.NOTIFY_LOG_LINES :]
    if logs:
        lines += ["", f"Last {len(logs)} log line(s):", *logs]
    if record.get("output"):
        lines += ["", "Output:", record["output"]]
    message = SMTPMessage(
        from_=None if connection.default_sender() else f"nbsched@{socket.gethostname()}",
        to=list(to),
        subject=f"[nbsched] {record['job']}: {record['status']} (run {record['run_id']})",
        body="\n".join(lines) + "\n",
    )
    notebook = executed_notebook(record.get("output"), outputs)
    if notebook is not None:
        message.attach(notebook.name, notebook.read_bytes())
    return message


def executed_notebook(output: object, outputs: Path) -> Path | None:
    """The file ``output`` names, if it is an existing file under ``outputs`` (an executed notebook)."""
    path = output_file(output, os.path.realpath(outputs))
    return Path(path) if path is not None and os.path.isfile(path) else None
