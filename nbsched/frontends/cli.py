"""The ``nbsched`` command: a thin layer that parses, calls the client and prints.

Exit status 0 on success; 1 with a one-line message on stderr when the runner refused
something; 2 for a command line that does not parse.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Sequence

from .. import config
from ..client.api import RUN_TIME_COLUMNS, Client, connect, status_text
from ..errors import NbschedError, RunnerError
from ..model.jobs import JOB_LIST_FIELDS
from ..model.runs import RUN_FIELDS

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
SCHEDULE_OPTIONS = (
    "name",
    "start",
    "end",
    "repeats",
    "tz",
    "extra",
    "jitter",
    "timeout",
    "retries",
    "overlap",
    "misfire",
    "catchup",
    "isolation",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nbsched", description="A scheduler for Jupyter users: services, jobs, runs.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    runner = commands.add_parser("runner", help="start, stop or check the runner")
    runner.add_argument("action", choices=("start", "stop", "status", "restart"))
    runner.add_argument("--foreground", action="store_true", help="run in this terminal (start only)")

    deploy = commands.add_parser("deploy", help="deploy service files or folders")
    deploy.add_argument("paths", nargs="+", metavar="PATH")

    _with_format(commands.add_parser("services", help="list deployed services"))

    schedule = commands.add_parser("schedule", help="create a job")
    schedule.add_argument("service")
    trigger = schedule.add_mutually_exclusive_group(required=True)
    trigger.add_argument("--every", help="interval, e.g. 90s, 5m, 1h30m")
    trigger.add_argument("--cron", help="cron line, e.g. '*/5 9-17 * * mon-fri'")
    trigger.add_argument("--at", help="one-time date, e.g. '2026-11-25 10:00' or 'in 10m'")
    for option in SCHEDULE_OPTIONS:
        schedule.add_argument(f"--{option}", type=int if option in ("repeats", "retries") else str)
    schedule.add_argument("--paused", action="store_true", help="create the job inactive")
    schedule.add_argument("--allow-subsecond", action="store_true", help="allow an interval shorter than 1s")

    _with_format(commands.add_parser("jobs", help="list jobs"))
    show = commands.add_parser("show", help="every setting of one job")
    show.add_argument("job")

    run = commands.add_parser("run", help="execute a job now")
    run.add_argument("job")
    run.add_argument("--wait", action="store_true", help="wait for the run and show it")
    run.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (with --wait)")

    pause = commands.add_parser("pause", help="pause a job")
    pause.add_argument("job")
    pause.add_argument("--note", default="", help="why, shown in the job list")
    for action in ("resume", "delete"):
        commands.add_parser(action, help=f"{action} a job").add_argument("job")

    history = _with_format(commands.add_parser("history", help="run history, newest first"))
    for option in ("job", "service", "status", "since"):
        history.add_argument(f"--{option}")
    history.add_argument("--limit", type=int, default=100)

    logs = commands.add_parser("logs", help="a run's logs, output and traceback")
    logs.add_argument("run_id", type=int)

    invoke = commands.add_parser("invoke", help="run a service once, now")
    invoke.add_argument("service")
    invoke.add_argument("--extra")
    invoke.add_argument("--wait", action="store_true")
    invoke.add_argument("--timeout", type=float, default=60.0)

    preview = commands.add_parser("preview", help="next fire times of a cron line (computed here, no runner)")
    preview.add_argument("cron")
    preview.add_argument("--tz")
    preview.add_argument("--count", type=int, default=5)
    preview.add_argument("--after", help="fire times at or after this date (default: now), e.g. '2026-03-28'")
    preview.add_argument("--name", help="the job's name, which H in the line hashes")

    _add_connection_parser(commands)
    commands.add_parser("demo", help="start a runner, deploy a demo service, schedule it and show its runs")
    return parser


def _add_connection_parser(commands) -> None:
    connection = commands.add_parser("connection", help="outgoing connections: REST, SMTP, kvdb")
    actions = connection.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    secret = "as it is or env:VARIABLE (read from the runner's environment; keeps it out of shell history)"
    rest = actions.add_parser("rest", help="add or replace a REST connection")
    rest.add_argument("name")
    rest.add_argument("url", help="e.g. https://api.example.com/v1/data")
    rest.add_argument("--header", action="append", type=_header, default=[], metavar="NAME:VALUE")
    rest.add_argument("--username", help="basic auth user")
    rest.add_argument("--password", help=f"basic auth password, {secret}")
    rest.add_argument("--token", help=f"bearer token, {secret}")
    rest.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    rest.add_argument("--no-verify", action="store_true", help="do not verify the server's TLS certificate")
    smtp = actions.add_parser("smtp", help="add or replace an SMTP connection")
    smtp.add_argument("name")
    smtp.add_argument("address", type=_host_port, metavar="HOST:PORT", help="e.g. smtp.example.com:587")
    smtp.add_argument("--username")
    smtp.add_argument("--password", help=secret)
    smtp.add_argument("--tls", choices=("none", "starttls", "ssl"), default="none")
    smtp.add_argument("--sender", help="default From address, e.g. me@example.com")
    smtp.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    actions.add_parser("kvdb", help="set the Redis behind self.kvdb").add_argument("url", help="redis://host:port/db")
    _with_format(actions.add_parser("list", help="list connections (secrets masked)"))
    actions.add_parser("delete", help="delete a connection").add_argument("name")
    actions.add_parser("test", help="reach a connection's endpoint once").add_argument("name")


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid HOST:PORT {text!r}: use a host and a port, e.g. smtp.example.com:25")
    return host, int(port)


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: use NAME:VALUE, e.g. 'Accept: application/json'")
    return name.strip(), value.strip()


def _with_format(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        return COMMANDS[options.command](options) or 0
    except NbschedError as exc:
        print(f"nbsched: error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _client() -> Client:
    return connect()


# -- commands ---------------------------------------------------------------------
def cmd_runner(options) -> int:
    settings = config.settings()
    if options.action == "status":
        try:
            info = Client(settings, autostart=False).ping()
        except RunnerError:
            print(f"nbsched: no runner is running for {settings.home}", file=sys.stderr)
            return 1
        print(status_text(info))
        return 0
    if options.action in ("stop", "restart"):
        _stop_runner(settings)
        if options.action == "stop":
            return 0
    if options.foreground:
        from ..runner.server import main as runner_main

        return runner_main([])
    try:
        info = Client(settings, autostart=False).ping()
        print(f"A runner is already running for {settings.home} (pid {info['pid']}).")
        return 0
    except RunnerError:
        pass
    info = Client(settings, autostart=True).ping()
    print(f"runner started (pid {info['pid']}), home {settings.home}, log {settings.log_path}")
    return 0


def _stop_runner(settings: config.Settings) -> None:
    try:
        client = Client(settings, autostart=False)
        info = client.shutdown()
    except RunnerError:
        print(f"No runner was running for {settings.home}.")
        return
    deadline = time.monotonic() + config.SHUTDOWN_GRACE_SECONDS + 10
    while settings.socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if settings.socket_path.exists():
        raise RunnerError(f"The runner {info['stopping']} did not stop in time; see {settings.log_path}.")
    print(f"runner {info['stopping']} stopped")


def cmd_deploy(options) -> int:
    client = _client()
    names = client.deploy(list(options.paths))
    for warning in client.last_deploy.get("warnings", []):
        print(f"warning: {_one_line(warning)}", file=sys.stderr)
    versions = {s["name"]: s["version"] for s in client.last_deploy["services"]}
    for name in names:
        print(f"deployed {name} (version {versions[name]})")
    return 0


def cmd_services(options) -> int:
    records = _client().call("services")
    _print_records(records, ("name", "version", "class_name", "origin", "deployed_at"), options.format)
    return 0


def cmd_schedule(options) -> int:
    args = {key: getattr(options, key) for key in SCHEDULE_OPTIONS if getattr(options, key) is not None}
    if options.paused:
        args["active"] = False
    if options.allow_subsecond:
        args["allow_subsecond"] = True
    client = _client()
    job = client.schedule(options.service, every=options.every, cron=options.cron, at=options.at, **args)
    next_run = job.next_run.isoformat() if job.next_run else "never"
    print(f"scheduled {job.name}: {job.definition}; next run {next_run}")
    return 0


def cmd_jobs(options) -> int:
    _print_records(_client().call("jobs"), JOB_LIST_FIELDS, options.format)
    return 0


def cmd_show(options) -> int:
    print(json.dumps(_client().job(options.job), indent=2, default=str))
    return 0


def cmd_run(options) -> int:
    client = _client()
    run_id = client.execute(options.job, channel="cli")
    return _report_run(client, run_id, options)


def cmd_invoke(options) -> int:
    client = _client()
    run_id = client.invoke(options.service, extra=options.extra, channel="cli")
    return _report_run(client, run_id, options)


def _report_run(client: Client, run_id: int, options) -> int:
    if not options.wait:
        print(f"run {run_id} started")
        return 0
    record = client.wait(run_id, timeout=options.timeout)
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
    filters = {key: getattr(options, key) for key in ("job", "service", "status", "since", "limit")}
    result = _client().history_rows(**filters)
    records = [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]
    columns = HISTORY_TABLE_COLUMNS if options.format == "table" else RUN_FIELDS
    _print_records(records, columns, options.format)
    return 0


def cmd_logs(options) -> int:
    record = _client().run(options.run_id)
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
    client = _client()
    action = options.action
    if action == "list":
        _print_records(client.call("connections"), client.connections.COLUMNS, options.format)
    elif action == "delete":
        client.connections.delete(options.name)
        print(f"deleted connection {options.name}")
    elif action == "test":
        result = client.connections.test(options.name)
        if not result["ok"]:
            print(f"nbsched: error: connection {options.name!r} failed: {_one_line(result['detail'])}", file=sys.stderr)
            return 1
        print(f"ok: {options.name}: {_one_line(result['detail'])}")
    else:
        record = _save_connection(client, options)
        print(f"saved {record['kind']} connection {record['name']}: {record['address']}")
    return 0


def _save_connection(client: Client, options) -> dict:
    connections = client.connections
    if options.action == "kvdb":
        return connections.set_kvdb(options.url)
    common = {"username": options.username, "password": options.password, "timeout": options.timeout}
    if options.action == "rest":
        headers = dict(options.header)
        return connections.add_rest(
            options.name, options.url, headers=headers, token=options.token, verify=not options.no_verify, **common
        )
    host, port = options.address
    return connections.add_smtp(options.name, host, port, tls=options.tls, sender=options.sender, **common)


def cmd_demo(options) -> int:
    from .demo import run_demo

    return run_demo()


COMMANDS = {name.removeprefix("cmd_"): func for name, func in globals().items() if name.startswith("cmd_")}


# -- output -----------------------------------------------------------------------
def _print_records(records: list[dict], columns: Sequence[str], fmt: str) -> None:
    rows = [{column: record.get(column) for column in columns} for record in records]
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(out.getvalue())
    else:
        print(_table(rows, columns))


def _table(rows: list[dict], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[_cell(column, row[column]) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column in RUN_TIME_COLUMNS or column in ("next_run", "last_run"):
        from ..client.api import _local_time

        return _local_time(value, config.settings().timezone).strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, float):
        return f"{value:.1f}"
    text = _one_line(str(value))
    return text if len(text) <= 60 else text[:57] + "..."
