"""The ``nbsched`` command: a thin layer that parses, calls the client and prints.

Options, their spellings and their messages come from ``commands``, the vocabulary the magics
and the dashboard share. Exit status 0 on success; 1 with a one-line message on stderr when a
value was refused (by the runner or here); 2 for a command line that does not parse.

Commands that only look (``jobs``, ``history``, ``logs``, ...) never start a runner: with none
running they say so and exit 1. Commands that change something start one, and say so on stderr.
Output into a pipe whose reader has gone (``| head``) ends quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence

from .. import config
from ..client.api import Client
from ..client.frames import RUN_TIME_COLUMNS, local_time
from ..client.launch import started_text
from ..errors import NbschedError, RunnerError
from ..model.jobs import JOB_LIST_FIELDS
from ..model.runs import RUN_FIELDS
from . import commands, connection_options, output
from .commands import (
    TRIGGERS,
    add_history_filters,
    add_job_filters,
    add_preview_options,
    add_wait_options,
    error_text,
    fmt_time,
    one_line,
)
from .importing import add_import_arguments, run_import

HISTORY_TABLE_COLUMNS = (
    "run_id",
    "job",
    "service",
    "trigger",
    "attempt",
    "status",
    "scheduled_at",
    "started_at",
    "delay_ms",
    "duration_ms",
    "error",
)
SERVICE_COLUMNS = ("name", "version", "class_name", "origin", "deployed_at")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nbsched", description="A scheduler for Jupyter users: services, jobs, runs.")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subcommands.required = True

    runner = subcommands.add_parser("runner", help="start, stop or check the runner")
    runner.add_argument("action", choices=commands.RUNNER_ACTIONS)
    runner.add_argument("--foreground", action="store_true", help="run in this terminal (start only)")

    deploy = subcommands.add_parser("deploy", help="deploy service files, folders or notebooks (.ipynb)")
    deploy.add_argument("paths", nargs="+", metavar="PATH")
    deploy.add_argument("--html", action="store_true", help="notebooks: save an HTML rendering of each run too")

    _with_format(subcommands.add_parser("services", help="list deployed services"))

    schedule = subcommands.add_parser("schedule", help="create a job")
    schedule.add_argument("service")
    trigger = schedule.add_mutually_exclusive_group(required=True)
    for key, text in TRIGGERS.items():
        trigger.add_argument(f"--{key}", help=text)
    commands.add_job_options(schedule)

    jobs = _with_format(subcommands.add_parser("jobs", help="list jobs (a page of them: --limit, --offset)"))
    add_job_filters(jobs)
    show = subcommands.add_parser("show", help="every setting of one job")
    show.add_argument("job")

    run = subcommands.add_parser("run", help="execute a job now")
    run.add_argument("job")
    add_wait_options(run)

    pause = subcommands.add_parser("pause", help="pause a job")
    pause.add_argument("job")
    pause.add_argument("--note", default="", help="why, shown in the job list")
    for action in ("resume", "delete"):
        subcommands.add_parser(action, help=f"{action} a job").add_argument("job")

    history = _with_format(subcommands.add_parser("history", help="run history, newest first"))
    history.add_argument("--job", help="only this job's runs")
    add_history_filters(history)
    history.add_argument("--job-uid", help="only the runs of the job with this uid (a deleted job's too)")

    purge = subcommands.add_parser("purge", help="delete finished runs and their executed notebooks")
    commands.add_purge_options(purge)

    logs = subcommands.add_parser("logs", help="a run's logs, output and traceback")
    logs.add_argument("run_id", type=int)
    logs.add_argument("--follow", "-f", action="store_true", help="show a running run's lines as they come")

    invoke = subcommands.add_parser("invoke", help="run a service once, now")
    invoke.add_argument("service")
    invoke.add_argument("--extra", help="text or JSON the service gets as self.request")
    add_wait_options(invoke)

    preview = subcommands.add_parser("preview", help="next fire times of a cron line (computed here, no runner)")
    preview.add_argument("cron")
    add_preview_options(preview)

    _add_connection_parser(subcommands)
    add_import_arguments(subcommands.add_parser("import", help="create jobs of a crontab or of jupyter-scheduler's"))
    store = subcommands.add_parser("store", help="copy a store into another (e.g. a SQLite home to PostgreSQL)")
    store_actions = store.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    store_actions.required = True
    copy = store_actions.add_parser("copy", help="copy services, jobs, runs, retries and connections")
    copy.add_argument("source", metavar="SRC_URL", help="e.g. sqlite:////home/me/.nbsched/nbsched.db")
    copy.add_argument("destination", metavar="DST_URL", help="an empty store, e.g. postgresql://me@db:5432/nbsched")
    subcommands.add_parser("demo", help="start a runner, deploy a demo service, schedule it and show its runs")
    return parser


def _add_connection_parser(subcommands) -> None:
    connection = subcommands.add_parser("connection", help="outgoing connections: REST, SMTP, kvdb")
    actions = connection.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    rest = actions.add_parser("rest", help="add or replace a REST connection")
    rest.add_argument("name")
    rest.add_argument("url", help="e.g. https://api.example.com/v1/data")
    connection_options.add_connection_options(rest, "rest")
    smtp = actions.add_parser("smtp", help="add or replace an SMTP connection")
    smtp.add_argument("name")
    smtp.add_argument("address", metavar="HOST:PORT", help="e.g. smtp.example.com:587")
    connection_options.add_connection_options(smtp, "smtp")
    kvdb = actions.add_parser("kvdb", help="set the Redis behind self.kvdb")
    kvdb.add_argument("url", help="redis://host:port/db")
    connection_options.add_kvdb_options(kvdb)
    _with_format(actions.add_parser("list", help="list connections (secrets masked)"))
    actions.add_parser("delete", help="delete a connection").add_argument("name")
    actions.add_parser("test", help="reach a connection's endpoint once").add_argument("name")


def _with_format(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--format", choices=commands.LIST_FORMATS, default="table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        code = COMMANDS[options.command](options) or 0
        sys.stdout.flush()  # a reader that has gone shows here, not at exit
        return code
    except NbschedError as exc:
        print(f"nbsched: error: {error_text(exc, 'cli')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `nbsched history | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
        return 0


def _client() -> Client:
    """The runner's client for a command that changes something: a runner is started if none runs (and said so)."""
    settings = config.settings()
    client = Client(settings)
    if client.started_runner is not None:
        print(started_text(settings, client.started_runner), file=sys.stderr)
    return client


def _reader() -> Client:
    """The runner's client for a command that only looks: with no runner running, ``NoRunner`` (none is started)."""
    return Client(config.settings(), autostart=False)


# -- commands ---------------------------------------------------------------------
def cmd_runner(options) -> int:
    settings = config.settings()
    if options.action == "status":
        status = commands.runner_status(settings)
        if status is None:
            print(f"nbsched: no runner is running for {settings.home}", file=sys.stderr)
            return 1
        print(status)
        return 0
    if options.action in ("stop", "restart"):
        print(commands.stop_runner(settings))
        if options.action == "stop":
            return 0
    if options.foreground:  # this process becomes the runner (python -m nbsched.runner)
        os.execv(sys.executable, [sys.executable, "-m", "nbsched.runner"])
    try:
        info = Client(settings, autostart=False).ping()
        print(f"A runner is already running for {settings.home} (pid {info['pid']}).")
        return 0
    except RunnerError:
        pass
    info = Client(settings, autostart=True).ping()
    print(f"runner started (pid {info['pid']}), home {settings.home}, log {settings.log_path}")
    return 0


def cmd_deploy(options) -> int:
    client = _client()
    names = client.deploy(list(options.paths), html=options.html)
    for warning in client.last_deploy.get("warnings", []):
        print(f"warning: {one_line(warning)}", file=sys.stderr)
    versions = {s["name"]: s["version"] for s in client.last_deploy["services"]}
    for name in names:
        print(f"deployed {name} (version {versions[name]})")
    return 0


def cmd_services(options) -> int:
    records = _reader().call("services")
    _print_records(records, SERVICE_COLUMNS, options.format)
    return 0


def cmd_schedule(options) -> int:
    args = commands.job_arguments(vars(options), default_tz=config.settings().timezone)
    job = _client().schedule(options.service, every=options.every, cron=options.cron, at=options.at, **args)
    next_run = job.next_run.isoformat() if job.next_run else "never"
    print(f"scheduled {job.name}: {job.definition}; next run {next_run}")
    if job.notice:
        print(f"note: {job.notice}")
    return 0


def cmd_jobs(options) -> int:
    page = _reader().call("jobs_page", **commands.job_listing(options))
    _print_records(page["rows"], JOB_LIST_FIELDS, options.format)
    shown_to = page["offset"] + len(page["rows"])
    if shown_to < page["total"] and sys.stderr.isatty():  # said to a person; a script reads --format json
        print(
            f"({len(page['rows'])} of {page['total']} jobs shown; --offset {shown_to} shows the next, --all every one)",
            file=sys.stderr,
        )
    return 0


def cmd_show(options) -> int:
    print(json.dumps(_reader().job(options.job), indent=2, default=str))
    return 0


def cmd_run(options) -> int:
    timeout = commands.seconds(options.timeout)
    client = _client()
    run_id = client.execute(options.job, channel="cli")
    return _report_run(client, run_id, timeout if options.wait else None)


def cmd_invoke(options) -> int:
    timeout = commands.seconds(options.timeout)
    extra = commands.check_extra(options.extra) if options.extra is not None else None
    client = _client()
    run_id = client.invoke(options.service, extra=extra, channel="cli")
    return _report_run(client, run_id, timeout if options.wait else None)


def _report_run(client: Client, run_id: int, wait: float | None) -> int:
    """Say the run started, or (``wait``: seconds) wait for it and show it."""
    if not wait:
        print(f"run {run_id} started")
        return 0
    record = client.wait(run_id, timeout=wait)
    print(f"run {run_id}: {record['status']} in {record['duration_ms'] or 0:.1f} ms")
    _print_run_details(record)
    return 0 if record["status"] == "ok" else 1


def cmd_pause(options) -> int:
    _client().pause(options.job, note=options.note)
    print(f"paused {options.job}")
    return 0


def cmd_resume(options) -> int:
    job = _client().resume(options.job)
    print(f"resumed {job.name}; next run {job.next_run.isoformat() if job.next_run else 'never'}")
    return 0


def cmd_delete(options) -> int:
    _client().delete(options.job)
    print(f"deleted {options.job}")
    return 0


def cmd_history(options) -> int:
    """The runs as the runner streams them: each chunk written out as it comes, whatever ``--limit``."""
    commands.check_status(options.status)
    filters = {key: getattr(options, key) for key in ("job", "job_uid", "service", "status", "since")}
    rows = _reader().history_stream(limit=commands.listing_limit(options, commands.HISTORY_LIMIT), **filters)
    if options.format == "table":
        records = (dict(zip(RUN_FIELDS, row, strict=True)) for row in rows)
        output.write_records(sys.stdout, records, HISTORY_TABLE_COLUMNS, "table", _cell)
    else:
        output.write_rows(sys.stdout, rows, RUN_FIELDS, options.format)
    return 0


def cmd_purge(options) -> int:
    removed = _client().purge(job=options.job, before=options.before)
    print(commands.purge_text(removed, options.job, options.before))
    return 0


def cmd_logs(options) -> int:
    if options.follow:
        from .follow import follow_run

        record = follow_run(_reader(), options.run_id, lambda text: print(text, flush=True))
        return 0 if record["status"] == "ok" else 1
    record = _reader().run(options.run_id)
    print(f"run {record['run_id']} ({record['job'] or record['service']}): {record['status']}")
    _print_run_details(record)
    return 0


def _print_run_details(record: dict) -> None:
    for key in ("error", "output", "logs", "traceback"):
        if record.get(key):
            print(f"--- {key}\n{record[key].rstrip()}")


def cmd_preview(options) -> int:
    from ..model.triggers import preview

    print(preview(cron=options.cron, tz=options.tz, count=options.count, after=options.after, name=options.name))
    return 0


def cmd_connection(options) -> int:
    action = options.action
    if action == "list":
        client = _reader()
        _print_records(client.call("connections"), client.connections.COLUMNS, options.format)
    elif action == "delete":
        _client().connections.delete(options.name)
        print(f"deleted connection {options.name}")
    elif action == "test":
        result = _reader().connections.test(options.name)
        if not result["ok"]:
            print(f"nbsched: error: connection {options.name!r} failed: {one_line(result['detail'])}", file=sys.stderr)
            return 1
        print(f"ok: {options.name}: {one_line(result['detail'])}")
    else:
        record = _save_connection(options)
        print(f"saved {record['kind']} connection {record['name']}: {record['address']}")
    return 0


def _save_connection(options) -> dict:
    """Read the options (refusing bad ones before a runner is asked), then save the connection."""
    if options.action == "kvdb":
        url = connection_options.check_kvdb_url(options.url)
        return _client().connections.set_kvdb(url, prefix=options.prefix)
    if options.action == "rest":
        args = connection_options.rest_arguments(options)  # the runner checks the URL, naming the connection
        return _client().connections.add_rest(options.name, options.url, **args)
    (host, port), args = connection_options.host_port(options.address), connection_options.smtp_arguments(options)
    return _client().connections.add_smtp(options.name, host, port, **args)


def cmd_import(options) -> int:
    """Import jobs; each refused line or definition goes to stderr, and makes the exit status 1."""
    result = run_import(options, _reader if options.dry_run else _client)
    for line in result.lines():
        print(line, file=sys.stderr if line.startswith("refused ") else sys.stdout)
    return 1 if result.refused else 0


def cmd_demo(options) -> int:
    from .demo import run_demo

    return run_demo()


def cmd_store(options) -> int:
    """``store copy``: in a process of its own (python -m nbsched.store copy), as front ends import no store."""
    command = [sys.executable, "-m", "nbsched.store", "copy", options.source, options.destination]
    return subprocess.run(command, check=False).returncode


COMMANDS = {name.removeprefix("cmd_"): func for name, func in globals().items() if name.startswith("cmd_")}


# -- output -----------------------------------------------------------------------
def _print_records(records: list[dict], columns: Sequence[str], fmt: str) -> None:
    output.write_records(sys.stdout, records, columns, fmt, _cell)


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column in RUN_TIME_COLUMNS or column in ("next_run", "last_run"):
        return fmt_time(local_time(value, config.settings().timezone))
    if isinstance(value, float):
        return f"{value:.1f}"
    text = one_line(value)
    return text if len(text) <= 60 else text[:57] + "..."
