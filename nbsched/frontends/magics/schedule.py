"""``%schedule``: one short function per subcommand that parses, calls the client and shows the result.

The job options, statuses and durations are the command line's (``commands``), so
``%schedule every 5m SVC --jitter 5s`` and ``nbsched schedule SVC --every 5m --jitter 5s`` make the same job.
"""

from __future__ import annotations

import argparse
import os

from IPython.core.error import UsageError

from ... import config
from ...client.api import Client
from ...client.frames import local_time
from ...errors import did_you_mean
from .. import commands
from ..commands import fmt_time, one_line
from .help import SCHEDULE_HELP
from .parser import Parser, Session, run_subcommand, show, subcommands_of

#: ``%schedule config KEY=VALUE`` keys and the environment variables they set for this session.
CONFIG_KEYS = {
    "timezone": "NBSCHED_TIMEZONE",
    "home": "NBSCHED_HOME",
    "store": "NBSCHED_STORE",
    "workers": "NBSCHED_WORKERS",
}
#: Fields of ``%schedule show`` that are times, shown in the session's time zone.
_TIME_FIELDS = ("next_run", "last_run", "start", "end", "at", "created_at")


# -- creating jobs -------------------------------------------------------------------
def _schedule_parser(kind: str, example: str, words_help: str) -> Parser:
    parser = Parser(f"%schedule {kind}", example)
    parser.add_argument("words", nargs="*", metavar="WHEN SERVICE", help=words_help)
    commands.add_job_options(parser)
    return parser


def _create(session: Session, service: str, options: argparse.Namespace, **trigger) -> None:
    args = commands.job_arguments(vars(options), config.settings().timezone)  # refuses bad JSON before a runner
    job = session.client().schedule(service, **trigger, **args)
    state = "" if job.active else " (paused)"
    notice = f" ({job.notice})" if job.notice else ""
    show(
        f"scheduled {job.name}{state}: {job.definition}, runs {job.service}; next run {fmt_time(job.next_run)}{notice}"
    )


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


# -- looking at jobs and runs ----------------------------------------------------------
def sub_list(session: Session, words: list[str]):
    parser = Parser("%schedule list", "%schedule list --search sync --state paused --sort last_run --desc --limit 20")
    commands.add_job_filters(parser)
    return session.client().jobs(**commands.job_listing(parser.parse(words)))


def sub_history(session: Session, words: list[str]):
    parser = Parser("%schedule history", "%schedule history sync --status error --since 1h --limit 20")
    parser.add_argument("job", nargs="?", help="only this job's runs")
    commands.add_history_filters(parser)
    parser.add_argument("--plot", action="store_true", help="show a timeline of the runs, coloured by status")
    options = parser.parse(words)
    commands.check_status(options.status)
    client = session.client()
    limit = commands.listing_limit(options, commands.HISTORY_LIMIT)
    frame = client.history(
        job=options.job, service=options.service, status=options.status, since=options.since, limit=limit
    )
    if frame.empty and options.job:
        _check_job_exists(client, options.job)
    if options.plot:
        from ..display import show_timeline

        show_timeline(frame)
        return None
    return frame


def _check_job_exists(client: Client, name: str) -> None:
    known = list(client.jobs()["name"])
    if name not in known:
        raise UsageError(
            f"No job named {name!r} and no runs of it.{did_you_mean(name, known)} "
            f"Jobs: {', '.join(sorted(known)) or 'none'}. {commands.HINTS['magic']['jobs']}"
        )


def _job_parser(action: str) -> Parser:
    parser = Parser(f"%schedule {action}", f"%schedule {action} sync")
    parser.add_argument("job")
    return parser


def sub_run(session: Session, words: list[str]):
    parser = _job_parser("run")
    commands.add_wait_options(parser)
    options = parser.parse(words)
    timeout = commands.seconds(options.timeout)
    client = session.client()
    run_id = client.execute(options.job)
    _after_start(client, run_id, options.job, timeout if options.wait else None)


def sub_invoke(session: Session, words: list[str]):
    parser = Parser("%schedule invoke", '%schedule invoke api.hello --extra \'{"who": "me"}\' --wait')
    parser.add_argument("service")
    parser.add_argument("--extra", help="text or JSON the service gets as self.request")
    commands.add_wait_options(parser)
    options = parser.parse(words)
    timeout = commands.seconds(options.timeout)
    extra = commands.check_extra(options.extra) if options.extra is not None else None
    client = session.client()
    run_id = client.invoke(options.service, extra=extra)
    _after_start(client, run_id, options.service, timeout if options.wait else None)


def sub_deploy(session: Session, words: list[str]):
    parser = Parser("%schedule deploy", "%schedule deploy reports/daily.ipynb")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a notebook (.ipynb), a .py file or a folder")
    parser.add_argument("--html", action="store_true", help="notebooks: save an HTML rendering of each run too")
    options = parser.parse(words)
    client = session.client()
    names = client.deploy(list(options.paths), html=options.html)
    for warning in client.last_deploy.get("warnings", []):
        show(f"warning: {one_line(warning)}")
    versions = {s["name"]: s["version"] for s in client.last_deploy["services"]}
    for name in names:
        show(f"deployed {name} (version {versions[name]})")


def _after_start(client: Client, run_id: int, what: str, wait: float | None) -> None:
    """Say the run started, or (``wait``: seconds) wait for it and show it."""
    if not wait:
        show(f"run {run_id} of {what} started; see %schedule logs {run_id}")
        return
    _show_run(client.wait(run_id, timeout=wait))


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


def sub_purge(session: Session, words: list[str]):
    parser = Parser("%schedule purge", "%schedule purge --job sync --before 30d")
    commands.add_purge_options(parser)
    options = parser.parse(words)
    removed = session.client().purge(job=options.job, before=options.before)
    show(commands.purge_text(removed, options.job, options.before))


def sub_show(session: Session, words: list[str]):
    options = _job_parser("show").parse(words)
    client = session.client()
    lines = []
    for key, value in client.job(options.job).items():
        if value in (None, ""):
            continue
        if key in _TIME_FIELDS:
            value = fmt_time(local_time(value, client.tz))
        lines.append(f"{key:>12}: {value}")
    show("\n".join(lines))


def sub_logs(session: Session, words: list[str]):
    parser = Parser("%schedule logs", "%schedule logs 42 --follow")
    parser.add_argument("run_id")
    parser.add_argument("--follow", "-f", action="store_true", help="show a running run's lines as they come")
    options = parser.parse(words)
    if options.follow:
        from ..follow import follow_run

        try:
            follow_run(session.client(), options.run_id, show)
        except KeyboardInterrupt:  # the run goes on
            show(f"stopped following run {options.run_id}; it goes on (see %schedule logs {options.run_id})")
        return
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


def sub_import(session: Session, words: list[str]):
    from ..importing import add_import_arguments, run_import

    parser = Parser("%schedule import", "%schedule import crontab my.cron --dry-run")
    add_import_arguments(parser)
    result = run_import(parser.parse(words), session.client)
    show("\n".join(result.lines()))


def sub_preview(session: Session, words: list[str]):
    parser = Parser("%schedule preview", '%schedule preview "0 9 * * mon" --tz Europe/Warsaw --count 5')
    parser.add_argument("cron", nargs="+", help="a cron line (quoted)")
    commands.add_preview_options(parser)
    options = parser.parse(words)
    client = session.client()
    tz = options.tz or client.tz
    line = " ".join(options.cron)
    show(str(client.preview(cron=line, tz=tz, count=options.count, after=options.after, name=options.name)))


# -- the runner, the dashboard, settings -------------------------------------------------
def sub_runner(session: Session, words: list[str]):
    parser = Parser("%schedule runner", "%schedule runner status")
    parser.add_argument("action", choices=commands.RUNNER_ACTIONS)
    options = parser.parse(words)
    settings = config.settings()
    if options.action == "status":
        status = commands.runner_status(settings)
        show(status or f"no runner is running for {settings.home}; start one with %schedule runner start")
        return
    session.close()  # a fresh client: it says whether it started a runner
    if options.action in ("stop", "restart"):
        show(commands.stop_runner(settings))
    if options.action in ("start", "restart"):
        client = session.client()  # shows "started a runner (pid N) ..." when it starts one
        if client.started_runner is None:
            info = client.ping()
            show(f"runner {info['runner']} is up (pid {info['pid']}), home {settings.home}")


def sub_ui(session: Session, words: list[str]):
    Parser("%schedule ui", "%schedule ui").parse(words)
    try:
        from ..ui import ui
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
        from ...model.timeparse import zone

        zone(value)  # InvalidInput says what a valid zone looks like
    if key == "workers" and not value.isdigit():
        raise UsageError(f"%schedule config: workers must be a whole number, e.g. workers=2 (got {value!r}).")
    os.environ[CONFIG_KEYS[key]] = value
    show(f"{key}={value} (for this session; {CONFIG_KEYS[key]})")


def sub_help(session: Session, words: list[str]):
    show(SCHEDULE_HELP)


SUBCOMMANDS = subcommands_of(globals(), "sub_")


def run_schedule(session: Session, line: str):
    return run_subcommand(session, line, "%schedule", SCHEDULE_HELP, SUBCOMMANDS)
