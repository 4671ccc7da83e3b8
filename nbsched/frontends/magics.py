"""The notebook front end: ``%%service``, ``%schedule`` and ``%connection``.

Load with ``%load_ext nbsched``. Each subcommand is a short function that parses its
arguments, calls the client and displays the result. A mistake the user made (an
unknown subcommand, a bad duration, a job that does not exist, ...) is raised as IPython's
``UsageError``: one line that says what to do, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import textwrap
import time
from collections.abc import Callable
from datetime import datetime

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.display import display

from .. import config
from ..client.api import Client, status_text
from ..errors import NbschedError, RunnerError, did_you_mean
from ..model.runs import STATUSES

#: ``%schedule config KEY=VALUE`` keys and the environment variables they set for this session.
CONFIG_KEYS = {
    "timezone": "NBSCHED_TIMEZONE",
    "home": "NBSCHED_HOME",
    "store": "NBSCHED_STORE",
    "workers": "NBSCHED_WORKERS",
}
#: Options every ``%schedule every|cron|once`` takes, as (flag, help).
SCHEDULE_OPTIONS = (
    ("--name", "job name (default: the service name)"),
    ("--start", "first fire no earlier than this date"),
    ("--end", "no fires after this date"),
    ("--repeats", "stop after this many runs"),
    ("--tz", "time zone of the schedule and of typed dates"),
    ("--extra", "text or JSON the service gets as self.request"),
    ("--jitter", "random delay added to each fire, e.g. 5s"),
    ("--timeout", "stop a run that takes longer, e.g. 30s"),
    ("--retries", "re-run a failed run up to N times"),
    ("--overlap", "skip | queue | queue_all | replace | allow"),
    ("--misfire", "skip | once | all"),
    ("--catchup", "how far back missed fires are caught up, e.g. 1h"),
    ("--isolation", "worker | process (each run in a fresh process)"),
)
#: Seconds ``%schedule runner stop`` waits for the runner to go away.
STOP_TIMEOUT = config.SHUTDOWN_GRACE_SECONDS + 10


def show(text: str) -> None:
    """``text`` as the output of the cell, shown as plain text (the library itself never prints)."""
    display({"text/plain": text}, raw=True)


class _HelpShown(Exception):
    """``--help`` showed the help; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, with an example) instead of exiting."""

    def __init__(self, prog: str, example: str, **kwargs):
        super().__init__(prog=prog, add_help=True, allow_abbrev=False, **kwargs)
        self.example = example

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}. Example: {self.example}")

    def print_help(self, file=None):
        show(self.format_help().rstrip("\n"))

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise UsageError(message.strip())
        raise _HelpShown()

    def parse(self, words: list[str]) -> argparse.Namespace:
        options, unknown = self.parse_known_args(words)
        if unknown:
            self._refuse_unknown(unknown[0])
        return options

    def _refuse_unknown(self, word: str):
        if word.startswith("-"):
            flags = [flag for action in self._actions for flag in action.option_strings]
            hint = did_you_mean(word.split("=")[0], flags)
            raise UsageError(f"{self.prog}: unknown option {word!r}.{hint} Example: {self.example}")
        raise UsageError(
            f"{self.prog}: unexpected argument {word!r} (quote values with spaces). Example: {self.example}"
        )


def expand_variables(line: str, namespace: dict) -> str:
    """Replace ``$name`` by the value of the notebook variable ``name``; ``{...}`` stays as typed (JSON)."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in namespace:
            return match.group(0)
        return shlex.quote(str(namespace[name]))

    return re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", value, line)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def split_line(line: str, prog: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f'{prog}: {exc} (close the quote). Example: %schedule cron "0 9 * * mon" api.hello') from None


def fmt_time(moment) -> str:
    if moment is None or (not isinstance(moment, datetime) and moment != moment):
        return "never"
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


# -- the client of this session ----------------------------------------------------
class Session:
    """The client the magics share; a new one when NBSCHED_* settings change (e.g. the time zone)."""

    def __init__(self) -> None:
        self._client: Client | None = None

    def client(self) -> Client:
        settings = config.settings()
        if self._client is None or self._client.settings != settings:
            self.close()
            self._client = Client(settings)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# -- %schedule subcommands ---------------------------------------------------------
def _schedule_parser(kind: str, example: str, words_help: str) -> _Parser:
    parser = _Parser(f"%schedule {kind}", example)
    parser.add_argument("words", nargs="*", metavar="WHEN SERVICE", help=words_help)
    for flag, text in SCHEDULE_OPTIONS:
        parser.add_argument(flag, help=text)
    parser.add_argument("--paused", action="store_true", help="create the job inactive")
    parser.add_argument("--allow-subsecond", action="store_true", help="allow an interval shorter than 1s")
    return parser


def _job_options(options: argparse.Namespace) -> dict:
    keys = [flag[2:] for flag, _ in SCHEDULE_OPTIONS if flag != "--name"]
    args = {key: getattr(options, key) for key in keys if getattr(options, key) is not None}
    if "extra" in args:
        args["extra"] = check_extra(args["extra"])
    args.setdefault("tz", config.settings().timezone)  # the session's zone, even if the runner has another
    if options.paused:
        args["active"] = False
    if options.allow_subsecond:
        args["allow_subsecond"] = True
    return args


def check_extra(text: str) -> str:
    """Extra is passed as typed; text that looks like JSON must be valid JSON."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            json.loads(text)
        except ValueError as exc:
            raise UsageError(
                f"Invalid JSON in --extra: {exc.msg} at column {exc.colno}. "
                'Quote it whole, e.g. --extra \'{"region": "eu"}\'.'
            ) from None
    return text


def _create(session: Session, service: str, options: argparse.Namespace, **trigger) -> None:
    args = _job_options(options)  # refuses bad local input before a runner is asked (or started)
    job = session.client().schedule(service, name=options.name, **trigger, **args)
    state = "" if job.active else " (paused)"
    show(f"scheduled {job.name}{state}: {job.definition}, runs {job.service}; next run {fmt_time(job.next_run)}")


def sub_every(session: Session, words: list[str]):
    parser = _schedule_parser("every", "%schedule every 5m api.hello --name hello", "interval, then service")
    options = parser.parse(words)
    if len(options.words) > 2:
        raise UsageError(
            f"%schedule every: write the interval without spaces, then the service, "
            f"e.g. %schedule every 1h30m {options.words[-1]}"
        )
    if len(options.words) != 2:
        parser.error("give an interval and a service")
    every, service = options.words
    _create(session, service, options, every=every)


def sub_cron(session: Session, words: list[str]):
    example = '%schedule cron "*/5 9-17 * * mon-fri" api.hello --name hello'
    parser = _schedule_parser("cron", example, "cron line (quoted), then service")
    options = parser.parse(words)
    if len(options.words) > 2:
        cron, service = " ".join(options.words[:-1]), options.words[-1]
        raise UsageError(f'%schedule cron: put the cron line in quotes: %schedule cron "{cron}" {service}')
    if len(options.words) != 2:
        parser.error("give a quoted cron line and a service")
    cron, service = options.words
    _create(session, service, options, cron=cron)


def sub_once(session: Session, words: list[str]):
    example = '%schedule once "2026-11-25 10:00" api.hello --name report (or: once "in 10m" ...)'
    parser = _schedule_parser("once", example, "date (or 'in 10m'), then service")
    options = parser.parse(words)
    if len(options.words) < 2:
        parser.error("give a date and a service")
    at, service = " ".join(options.words[:-1]), options.words[-1]  # "in 10m" works unquoted too
    _create(session, service, options, at=at)


def sub_list(session: Session, words: list[str]):
    _Parser("%schedule list", "%schedule list").parse(words)
    return session.client().jobs()


def sub_history(session: Session, words: list[str]):
    parser = _Parser("%schedule history", "%schedule history sync --status error --since 1h --limit 20")
    parser.add_argument("job", nargs="?", help="only this job's runs")
    parser.add_argument("--service", help="only this service's runs")
    parser.add_argument("--status", help=f"one of {', '.join(STATUSES)}")
    parser.add_argument("--since", help="e.g. 1h, 2d or '2026-11-25 10:00'")
    parser.add_argument("--limit", type=int, default=100, help="newest N runs (default 100)")
    parser.add_argument("--plot", action="store_true", help="show a timeline of the runs, coloured by status")
    options = parser.parse(words)
    if options.status is not None and options.status not in STATUSES:
        hint = did_you_mean(options.status, STATUSES)
        raise UsageError(f"Unknown status {options.status!r}.{hint} Statuses: {', '.join(STATUSES)}.")
    client = session.client()
    frame = client.history(
        job=options.job, service=options.service, status=options.status, since=options.since, limit=options.limit
    )
    if frame.empty and options.job:
        _check_job_exists(client, options.job)
    if options.plot:
        from .display import show_timeline

        show_timeline(frame)
        return None
    return frame


def _check_job_exists(client: Client, name: str) -> None:
    known = list(client.jobs()["name"])
    if name not in known:
        raise UsageError(
            f"No job named {name!r} and no runs of it.{did_you_mean(name, known)} "
            f"Jobs: {', '.join(sorted(known)) or 'none'}. See %schedule list."
        )


def _job_parser(action: str) -> _Parser:
    parser = _Parser(f"%schedule {action}", f"%schedule {action} sync")
    parser.add_argument("job")
    return parser


def sub_run(session: Session, words: list[str]):
    parser = _job_parser("run")
    parser.add_argument("--wait", action="store_true", help="wait for the run and show it")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (with --wait)")
    options = parser.parse(words)
    client = session.client()
    run_id = client.execute(options.job)
    if not options.wait:
        show(f"run {run_id} of {options.job} started; see %schedule logs {run_id}")
        return
    _show_run(client.wait(run_id, timeout=options.timeout))


def sub_invoke(session: Session, words: list[str]):
    parser = _Parser("%schedule invoke", '%schedule invoke api.hello --extra \'{"who": "me"}\' --wait')
    parser.add_argument("service")
    parser.add_argument("--extra")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--timeout", type=float, default=60.0)
    options = parser.parse(words)
    client = session.client()
    extra = check_extra(options.extra) if options.extra is not None else None
    run_id = client.invoke(options.service, extra=extra)
    if not options.wait:
        show(f"run {run_id} of {options.service} started; see %schedule logs {run_id}")
        return
    _show_run(client.wait(run_id, timeout=options.timeout))


def sub_pause(session: Session, words: list[str]):
    parser = _job_parser("pause")
    parser.add_argument("--note", default="", help="why; shown in %%schedule list")
    options = parser.parse(words)
    session.client().pause(options.job, note=options.note)
    show(f"paused {options.job}" + (f" ({options.note})" if options.note else ""))


def sub_resume(session: Session, words: list[str]):
    options = _job_parser("resume").parse(words)
    job = session.client().resume(options.job)
    show(f"resumed {job.name}; next run {fmt_time(job.next_run)}")


def sub_delete(session: Session, words: list[str]):
    options = _job_parser("delete").parse(words)
    session.client().delete(options.job)
    show(f"deleted {options.job} (its run history is kept)")


def sub_show(session: Session, words: list[str]):
    options = _job_parser("show").parse(words)
    client = session.client()
    record = client.job(options.job)
    from ..client.api import _local_time

    lines = []
    for key, value in record.items():
        if value in (None, ""):
            continue
        if key in ("next_run", "last_run", "start", "end", "at", "created_at"):
            value = fmt_time(_local_time(value, client.tz))
        lines.append(f"{key:>12}: {value}")
    show("\n".join(lines))


def sub_logs(session: Session, words: list[str]):
    parser = _Parser("%schedule logs", "%schedule logs 42")
    parser.add_argument("run_id")
    options = parser.parse(words)
    _show_run(session.client().run(options.run_id))


def _show_run(record: dict) -> None:
    took = f" in {record['duration_ms']:.1f} ms" if record.get("duration_ms") is not None else ""
    lines = [
        f"run {record['run_id']} of {record['job'] or record['service']} ({record['trigger']}, "
        f"{fmt_time(record['scheduled_at'])}): {record['status']}{took}"
    ]
    for key in ("error", "output", "logs", "traceback"):
        if record.get(key):
            lines.append(f"--- {key}\n{str(record[key]).rstrip()}")
    show("\n".join(lines))


def sub_preview(session: Session, words: list[str]):
    parser = _Parser("%schedule preview", '%schedule preview "0 9 * * mon" --tz Europe/Warsaw --count 5')
    parser.add_argument("cron", nargs="+", help="a cron line (quoted)")
    parser.add_argument("--tz")
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--after", help="fire times at or after this date (default: now), e.g. '2026-03-28'")
    parser.add_argument("--name", help="the job's name, which H in the line hashes")
    options = parser.parse(words)
    client = session.client()
    tz = options.tz or client.tz
    line = " ".join(options.cron)
    show(str(client.preview(cron=line, tz=tz, count=options.count, after=options.after, name=options.name)))


def sub_runner(session: Session, words: list[str]):
    parser = _Parser("%schedule runner", "%schedule runner status")
    parser.add_argument("action", choices=("start", "stop", "status", "restart"))
    options = parser.parse(words)
    settings = config.settings()
    if options.action == "status":
        _runner_status(settings)
        return
    if options.action in ("stop", "restart"):
        session.close()
        _stop_runner(settings)
    if options.action in ("start", "restart"):
        info = session.client().ping()
        show(f"runner {info['runner']} is up (pid {info['pid']}), home {settings.home}")


def _runner_status(settings: config.Settings) -> None:
    try:
        client = Client(settings, autostart=False)
    except RunnerError:
        show(f"no runner is running for {settings.home}; start one with %schedule runner start")
        return
    try:
        info = client.ping()
    finally:
        client.close()
    show(status_text(info))


def _stop_runner(settings: config.Settings) -> None:
    try:
        client = Client(settings, autostart=False)
    except RunnerError:
        show(f"no runner was running for {settings.home}")
        return
    try:
        info = client.shutdown()
    finally:
        client.close()
    deadline = time.monotonic() + STOP_TIMEOUT
    while settings.socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if settings.socket_path.exists():
        raise RunnerError(f"The runner {info['stopping']} did not stop in time; see {settings.log_path}.")
    show(f"runner {info['stopping']} stopped")


def sub_ui(session: Session, words: list[str]):
    _Parser("%schedule ui", "%schedule ui").parse(words)
    try:
        from .ui import ui
    except ImportError as exc:
        show(f"The dashboard is not available ({one_line(exc)}); use %schedule list and %schedule history.")
        return None
    return ui(client=session.client())


def sub_config(session: Session, words: list[str]):
    if not words:
        settings = config.settings()
        show(
            f"timezone={settings.timezone}\nhome={settings.home}\nstore={settings.store_url}\nworkers={settings.workers}"
        )
        return
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in CONFIG_KEYS:
            hint = did_you_mean(key, list(CONFIG_KEYS))
            raise UsageError(
                f"%schedule config: unknown setting {word!r}.{hint} Use KEY=VALUE with KEY one of "
                f"{', '.join(CONFIG_KEYS)}, e.g. %schedule config timezone=Europe/Warsaw"
            )
        _set_config(key, value)


def _set_config(key: str, value: str) -> None:
    if key == "timezone":
        from ..model.timeparse import zone

        zone(value)  # InvalidInput says what a valid zone looks like
    if key == "workers" and not value.isdigit():
        raise UsageError(f"%schedule config: workers must be a whole number, e.g. workers=2 (got {value!r}).")
    os.environ[CONFIG_KEYS[key]] = value
    show(f"{key}={value} (for this session; {CONFIG_KEYS[key]})")


def sub_help(session: Session, words: list[str]):
    show(SCHEDULE_HELP)


SUBCOMMANDS: dict[str, Callable[[Session, list[str]], object]] = {
    name.removeprefix("sub_"): func for name, func in globals().items() if name.startswith("sub_")
}

SCHEDULE_HELP = """\
%schedule SUBCOMMAND ...   (each takes --help)
  every 5m SERVICE --name sync [--start ..] [--end ..] [--repeats N] [--tz ..] [--extra '{"a": 1}']
        [--jitter 5s] [--timeout 30s] [--retries N] [--overlap skip] [--misfire skip] [--isolation process]
        [--paused] [--allow-subsecond]
  cron "*/5 9-17 * * mon-fri" SERVICE [same options]
  once "2026-11-25 10:00" SERVICE [same options]      (or: once "in 10m" SERVICE)
  list                        jobs, as a DataFrame
  history [JOB] [--status error] [--since 1h] [--limit 100] [--plot]   runs, as a DataFrame
  run JOB [--wait] | invoke SERVICE [--extra ..] [--wait]
  pause JOB [--note ..] | resume JOB | delete JOB | show JOB | logs RUN_ID
  preview "0 9 * * mon" [--tz Europe/Warsaw] [--count 5] [--after 2026-03-28] [--name JOB]
  runner start|stop|status|restart
  ui                          the dashboard
  config [timezone=Europe/Warsaw] [home=..] [store=..] [workers=N]
$name is replaced by the value of the notebook variable name."""


def run_schedule(session: Session, line: str):
    return _run_subcommand(session, line, "%schedule", SCHEDULE_HELP, SUBCOMMANDS)


def _run_subcommand(session: Session, line: str, magic: str, help_text: str, subcommands: dict):
    """Split a magic's line, show its help when empty, and run the subcommand it names."""
    words = split_line(line, magic)
    if not words:
        show(help_text)
        return None
    name, rest = words[0], words[1:]
    if name not in subcommands:
        raise UsageError(
            f"Unknown subcommand {name!r}.{did_you_mean(name, list(subcommands))} "
            f"Subcommands: {', '.join(subcommands)}. See {magic} help."
        )
    return _as_usage_errors(subcommands[name], session, rest)


def _as_usage_errors(func: Callable, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except _HelpShown:
        return None
    except NbschedError as exc:
        raise UsageError(one_line(exc)) from None


# -- %%service ---------------------------------------------------------------------
def handle_source(name: str, body: str) -> str:
    """Source of a service named ``name`` whose handle() is ``body`` (``self`` in scope)."""
    class_name = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", name) if part) or "Cell"
    if not class_name[0].isalpha():
        class_name = "Service" + class_name
    indented = textwrap.indent(textwrap.dedent(body).strip("\n") or "pass", " " * 8)
    return (
        "from nbsched import Service, SMTPMessage\n\n\n"
        f"class {class_name}(Service):\n    name = {name!r}\n\n    def handle(self):\n{indented}\n"
    )


#: Lines ``handle_source`` puts before the body, so warnings can name the cell's own line numbers.
HANDLE_BODY_OFFSET = 7


def run_service_cell(session: Session, shell, line: str, cell: str) -> None:
    words = split_line(line, "%%service")
    if len(words) > 1:
        raise UsageError(
            f"%%service takes at most one service name, got {len(words)} words. "
            "Example: %%service my.quick.svc (or %%service alone for a cell of Service classes)."
        )
    source = handle_source(words[0], cell) if words else cell
    offset = HANDLE_BODY_OFFSET if words else 0
    result = _as_usage_errors(_deploy_cell, session, source)
    for warning in result.get("warnings", []):
        show(f"warning: {_shift_line(one_line(warning), offset)}")
    for service in result["services"]:
        show(f"deployed {service['name']} (version {service['version']})")
    shell.ex(compile(source, "<cell>", "exec"))  # the classes are usable in the kernel too


def _deploy_cell(session: Session, source: str) -> dict:
    client = session.client()
    client.last_deploy = client.call("deploy", units=[{"source": source, "origin": "<cell>"}])
    return client.last_deploy


def _shift_line(text: str, offset: int) -> str:
    return re.sub(r"line (\d+)", lambda match: f"line {max(int(match.group(1)) - offset, 1)}", text, count=1)


# -- %connection -------------------------------------------------------------------
def _secret(options: argparse.Namespace) -> str | None:
    """The password from --password-env VAR, --ask-password (a hidden prompt) or --password; never printed."""
    if options.password_env:
        if options.password_env not in os.environ:
            raise UsageError(f"No environment variable {options.password_env!r}; set it, or use --ask-password.")
        return os.environ[options.password_env]
    if options.ask_password:
        import getpass

        return getpass.getpass("password: ")
    return options.password


def _connection_parser(kind: str, example: str) -> _Parser:
    parser = _Parser(f"%connection {kind}", example)
    parser.add_argument("name")
    parser.add_argument("--username")
    parser.add_argument("--password", help="or env:VAR (read by the runner); the line is kept in history")
    parser.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    parser.add_argument("--ask-password", action="store_true", help="prompt for the password")
    parser.add_argument("--timeout", help="e.g. 10s (default 10s)")
    return parser


def _timeout(options: argparse.Namespace) -> dict:
    if options.timeout is None:
        return {}
    from ..model.timeparse import parse_duration

    return {"timeout": parse_duration(options.timeout, "timeout").total_seconds()}


def _given(**values) -> dict:
    return {key: value for key, value in values.items() if value not in (None, [], {})}


def con_rest(session: Session, words: list[str]):
    parser = _connection_parser("rest", '%connection rest "My Data Source" http://127.0.0.1:8000/data')
    parser.add_argument("address")
    parser.add_argument("--header", action="append", default=[], metavar="KEY=VALUE", help="a default header")
    parser.add_argument("--token", help="a bearer token (or env:VAR)")
    parser.add_argument("--no-verify", action="store_true", help="do not check the server's TLS certificate")
    options = parser.parse(words)
    if not options.address.startswith(("http://", "https://")):
        raise UsageError(f"Invalid address {options.address!r}: use a URL, e.g. https://api.example.com/data.")
    args = _given(
        headers=_headers(options.header), username=options.username, password=_secret(options), token=options.token
    )
    args.update(_timeout(options), **({"verify": False} if options.no_verify else {}))
    session.client().connections.add_rest(options.name, options.address, **args)
    show(f"REST connection {options.name!r} -> {options.address}" + _secret_note(args))


def _headers(pairs: list[str]) -> dict[str, str]:
    headers = {}
    for pair in pairs:
        split = min((at for at in (pair.find("="), pair.find(":")) if at > 0), default=-1)
        if split < 0:
            raise UsageError(f"Invalid --header {pair!r}: use KEY=VALUE, e.g. --header Accept=application/json.")
        headers[pair[:split].strip()] = pair[split + 1 :].strip()
    return headers


def con_smtp(session: Session, words: list[str]):
    parser = _connection_parser("smtp", "%connection smtp mail 127.0.0.1:8025 --username me --password-env SMTP_PW")
    parser.add_argument("address", metavar="HOST:PORT")
    parser.add_argument("--tls", choices=("none", "starttls", "ssl"), help="none (default), starttls or ssl")
    parser.add_argument("--sender", help="the From address when a message sets none")
    options = parser.parse(words)
    host, sep, port = options.address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"Invalid SMTP address {options.address!r}: use HOST:PORT, e.g. smtp.example.com:587.")
    args = _given(username=options.username, password=_secret(options), tls=options.tls, sender=options.sender)
    args.update(_timeout(options))
    session.client().connections.add_smtp(options.name, host, int(port), **args)
    show(f"SMTP connection {options.name!r} -> {host}:{port}" + _secret_note(args))


def _secret_note(args: dict) -> str:
    return " (secret stored, not shown)" if args.get("password") or args.get("token") else ""


def con_kvdb(session: Session, words: list[str]):
    parser = _Parser("%connection kvdb", "%connection kvdb redis://127.0.0.1:6379/0")
    parser.add_argument("url")
    options = parser.parse(words)
    if not options.url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"Invalid kvdb URL {options.url!r}: use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0.")
    session.client().connections.set_kvdb(options.url)
    show(f"kvdb -> {_hide_password(options.url)}")


def _hide_password(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def con_list(session: Session, words: list[str]):
    _Parser("%connection list", "%connection list").parse(words)
    return session.client().connections.list()


def con_delete(session: Session, words: list[str]):
    parser = _Parser("%connection delete", "%connection delete mail")
    parser.add_argument("name")
    options = parser.parse(words)
    session.client().connections.delete(options.name)
    show(f"deleted connection {options.name!r}")


def con_test(session: Session, words: list[str]):
    parser = _Parser("%connection test", "%connection test mail")
    parser.add_argument("name")
    options = parser.parse(words)
    result = session.client().connections.test(options.name)
    show(_test_summary(options.name, result))


def _test_summary(name: str, result: dict) -> str:
    detail = one_line(result.get("detail") or "")
    return f"connection {name!r}: {'ok' if result.get('ok') else 'FAILED'}" + (f" ({detail})" if detail else "")


def con_help(session: Session, words: list[str]):
    show(CONNECTION_HELP)


CONNECTION_SUBCOMMANDS: dict[str, Callable[[Session, list[str]], object]] = {
    name.removeprefix("con_"): func for name, func in globals().items() if name.startswith("con_")
}

CONNECTION_HELP = """\
%connection SUBCOMMAND ...   (each takes --help)
  rest NAME URL [--header KEY=VALUE ...] [--username U] [--password-env VAR | --ask-password] [--token T]
       [--timeout 10s] [--no-verify]
  smtp NAME HOST:PORT [--username U] [--password-env VAR | --ask-password] [--tls none|starttls|ssl]
       [--sender ADDRESS] [--timeout 10s]
  kvdb redis://HOST:PORT/DB
  list | delete NAME | test NAME
Passwords are stored for the runner and never shown; prefer --password-env or --ask-password to --password."""


def run_connection(session: Session, line: str):
    return _run_subcommand(session, line, "%connection", CONNECTION_HELP, CONNECTION_SUBCOMMANDS)


# -- registration ------------------------------------------------------------------
@magics_class
class NbschedMagics(Magics):
    """``%%service``, ``%schedule`` and ``%connection``."""

    def __init__(self, shell):
        super().__init__(shell)
        self.session = Session()

    @no_var_expand
    @line_magic
    def schedule(self, line: str = ""):
        """Schedule services and look at their runs; %schedule alone shows every subcommand."""
        return run_schedule(self.session, expand_variables(line, self.shell.user_ns))

    @no_var_expand
    @cell_magic
    def service(self, line: str, cell: str):
        """Deploy the Service classes this cell defines, or (with a NAME) the cell as handle()'s body."""
        run_service_cell(self.session, self.shell, line, cell)

    @no_var_expand
    @line_magic
    def connection(self, line: str = ""):
        """Add, list, test and delete outgoing connections (REST, SMTP, kvdb)."""
        return run_connection(self.session, expand_variables(line, self.shell.user_ns))


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(NbschedMagics)
