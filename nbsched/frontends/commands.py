"""The front ends' one vocabulary: job options, statuses, TLS modes, durations, headers and their help texts.

The command line (``nbsched``), the magics (``%schedule``, ``%connection``) and the dashboard's
job form take their options, spellings and messages from here, so all three accept the same input
and refuse it in the same words. A job's values travel as typed (``5m``, ``'2026-11-25 10:00'``,
``queue``) and the model reads them, once, in the runner. What this module reads itself never
reaches a runner as typed: JSON extra, headers, ``HOST:PORT``, a timeout in seconds, a status.

Spellings every front end accepts:

* durations: ``90s``, ``5m``, ``1h30m``, ``2d``, or a bare number of seconds (``10`` is ``10s``);
* headers: ``NAME:VALUE`` or ``NAME=VALUE`` (split at the first ``:`` or ``=``);
* switches: ``--paused``, ``--allow-subsecond``; a list format: ``table``, ``json`` or ``csv``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import config
from ..client.api import Client
from ..client.launch import runner_pid, signal_stop
from ..errors import InvalidInput, NoRunner, RunnerError, did_you_mean
from ..model.jobs import ISOLATION, JOB_STATES, MISFIRE_POLICIES, OVERLAP_POLICIES, JobSpec
from ..model.listing import JOB_FILTERS, JOB_SORTS
from ..model.notify import NOTIFY_ON, TARGET_HELP
from ..model.runs import STATUSES
from ..model.timeparse import format_duration, parse_duration

#: The three ways to say when a job fires: the keyword of ``client.schedule`` and what it takes.
TRIGGERS = {
    "every": "interval, e.g. 90s, 5m, 1h30m",
    "cron": "cron line, e.g. '*/5 9-17 * * mon-fri'",
    "at": "one-time date, e.g. '2026-11-25 10:00' or 'in 10m'",
}
#: Formats of listings (``nbsched jobs --format``).
LIST_FORMATS = ("table", "json", "csv")
#: How many runs a history command shows unless told (``--limit``, ``--all``): what a terminal shows.
HISTORY_LIMIT = 100
#: How many jobs a job listing command shows unless told.
JOBS_LIMIT = 100
#: What ``runner`` does (``nbsched runner ...``, ``%schedule runner ...``).
RUNNER_ACTIONS = ("start", "stop", "status", "restart")
#: How long ``run --wait`` and ``invoke --wait`` wait for the run, unless told.
WAIT_TIMEOUT = "60s"
#: Colour of each run status (history tables, the dashboard, the timeline plot).
STATUS_COLOURS = {
    "running": "#0969da",
    "ok": "#1a7f37",
    "error": "#cf222e",
    "timeout": "#bc4c00",
    "skipped": "#6e7781",
    "missed": "#8250df",
    "interrupted": "#8c564b",
}


# -- job options ------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One job option: ``--flag VALUE`` on a command line, a field of the form, a keyword of ``client.schedule``."""

    key: str  #: keyword of ``client.schedule``, field of ``JobSpec`` and the ``field`` of errors about it
    help: str
    kind: str = "text"  #: text, date, count, zone, json, duration or choice: how a form lets you type it
    choices: tuple[str, ...] = ()
    usage: str = ".."  #: the value in one-line usage texts: ``[--jitter 5s]``
    advanced: bool = False  #: in the form's "More options"
    many: bool = False  #: may be given more than once on a command line (each value kept)

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def default(self) -> Any:
        """The value a job gets when the option is not given."""
        return JobSpec.__dataclass_fields__[self.key].default

    @property
    def help_text(self) -> str:
        return f"{self.help}: {' | '.join(self.choices)}" if self.choices else self.help


@dataclass(frozen=True)
class Switch:
    """A job option that is a flag without a value: ``--paused`` sets ``active`` to False."""

    flag: str
    key: str
    value: bool
    help: str


JOB_OPTIONS = (
    Option("name", "job name (default: the service name)", usage="sync"),
    Option("start", "first fire no earlier than this date", kind="date"),
    Option("end", "no fires after this date", kind="date"),
    Option("repeats", "stop after this many runs", kind="count", usage="N"),
    Option("tz", "time zone of the schedule and of typed dates", kind="zone"),
    Option("extra", "text or JSON the service gets as self.request", kind="json", usage="'{\"a\": 1}'"),
    Option("jitter", "random delay added to each fire, e.g. 5s", kind="duration", usage="5s", advanced=True),
    Option("timeout", "stop a run that takes longer, e.g. 30s", kind="duration", usage="30s", advanced=True),
    Option("retries", "re-run a failed run up to N times", kind="count", usage="N", advanced=True),
    Option(
        "overlap",
        "what a fire does while the previous run runs",
        kind="choice",
        choices=OVERLAP_POLICIES,
        usage="skip",
        advanced=True,
    ),
    Option(
        "misfire",
        "what a runner does with fires it missed",
        kind="choice",
        choices=MISFIRE_POLICIES,
        usage="skip",
        advanced=True,
    ),
    Option("catchup", "how far back missed fires are caught up, e.g. 1h", kind="duration", usage="1h", advanced=True),
    Option(
        "isolation",
        "where each run runs (process: a fresh one each time)",
        kind="choice",
        choices=ISOLATION,
        usage="process",
        advanced=True,
    ),
    Option(
        "notify_on",
        f"final statuses that send a notification, comma-separated: {', '.join(NOTIFY_ON)} (default error,timeout)",
        kind="list",
        usage="error,timeout",
        advanced=True,
    ),
    Option(
        "notify",
        f"where notifications go (repeat for more): {TARGET_HELP}",
        kind="list",
        usage="webhook:URL",
        advanced=True,
        many=True,
    ),
    Option(
        "history_keep",
        "finished runs to keep: a count, e.g. 1000, or an age, e.g. 30d (default: NBSCHED_HISTORY_KEEP, else all)",
        kind="keep",
        usage="30d",
        advanced=True,
    ),
)
SWITCHES = (
    Switch("--paused", "active", False, "create the job inactive"),
    Switch("--allow-subsecond", "allow_subsecond", True, "allow an interval shorter than 1s"),
)


def add_job_options(parser: argparse.ArgumentParser) -> None:
    """Add every job option and switch to a command line's parser (values are kept as typed)."""
    for option in JOB_OPTIONS:
        parser.add_argument(
            option.flag, dest=option.key, help=option.help_text, action="append" if option.many else None
        )
    for switch in SWITCHES:
        parser.add_argument(switch.flag, dest=switch.key, action="store_const", const=switch.value, help=switch.help)


def job_arguments(values: Mapping[str, Any], default_tz: str) -> dict:
    """Keyword arguments of ``client.schedule`` from parsed options; dates are read in ``default_tz`` unless --tz.

    Extra is checked here (text that looks like JSON must be JSON); everything else the runner reads.
    """
    keys = [option.key for option in JOB_OPTIONS] + [switch.key for switch in SWITCHES]
    args = {key: values[key] for key in keys if values.get(key) is not None}
    if "extra" in args:
        args["extra"] = check_extra(args["extra"])
    args.setdefault("tz", default_tz)  # the caller's zone, even if the runner has another
    return args


def job_options_usage() -> list[str]:
    """Every job option as ``[--flag VALUE]`` and switch as ``[--flag]``: the words of a usage text."""
    words = [f"[{option.flag} {option.usage}]" for option in JOB_OPTIONS]
    return words + [f"[{switch.flag}]" for switch in SWITCHES]


def check_extra(text: str, on_command_line: bool = True) -> str:
    """Extra is passed as typed; text that looks like JSON must be valid JSON."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            json.loads(text)
        except ValueError as exc:
            where = f"{exc.msg} at column {exc.colno}"
            if not on_command_line:
                raise InvalidInput(f"Extra looks like JSON but is not valid JSON: {where}.", field="extra") from None
            raise InvalidInput(
                f'Invalid JSON in --extra: {where}. Quote it whole, e.g. --extra \'{{"region": "eu"}}\'.',
                field="extra",
            ) from None
    return text


# -- history ---------------------------------------------------------------------------
def add_purge_options(parser: argparse.ArgumentParser) -> None:
    """``--job`` and ``--before`` of a purge."""
    parser.add_argument("--job", help="only this job's finished runs")
    parser.add_argument("--before", help="only runs finished before this: an age, e.g. 30d, or a date (your zone)")


def purge_text(removed: int, job: str | None, before: str | None) -> str:
    """What a purge says it did, e.g. ``removed 120 finished run(s) of job 'sync' finished before 30d ago``."""
    text = f"removed {removed} finished run(s)"
    if job:
        text += f" of job {job!r}"
    if before:
        text += f" finished before {before}" + (" ago" if _is_age(before) else "")
    return text + " (and their executed notebooks)"


def _is_age(text: str) -> bool:
    try:
        parse_duration(text, "before")
    except InvalidInput:
        return False
    return True


def add_history_filters(parser: argparse.ArgumentParser) -> None:
    """``--service``, ``--status``, ``--since``, and ``--limit`` or ``--all``, of a history command."""
    parser.add_argument("--service", help="only this service's runs")
    parser.add_argument("--status", help=f"one of {', '.join(STATUSES)}")
    parser.add_argument("--since", help="e.g. 1h, 2d or '2026-11-25 10:00' (in your time zone, NBSCHED_TIMEZONE)")
    add_limit_options(parser, "runs", HISTORY_LIMIT)


def add_limit_options(parser: argparse.ArgumentParser, what: str, default: int) -> None:
    """``--limit N`` (the first N ``what``, ``default`` unless told) or ``--all`` (every one) of a listing."""
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument("--limit", type=int, help=f"the first N {what} (default {default})")
    limits.add_argument(
        "--all", action="store_true", help=f"every {what[:-1]} the filters select, however many (instead of --limit)"
    )


def listing_limit(options: argparse.Namespace, default: int) -> int | None:
    """The limit of a listing as ``add_limit_options`` read it: None with ``--all``; a negative one is refused."""
    if options.all:
        return None
    if options.limit is None:
        return default
    if options.limit < 0:
        raise InvalidInput(
            f"Invalid --limit {options.limit}: use a whole number, 0 or more (or --all for every one).", field="limit"
        )
    return options.limit


def add_job_filters(parser: argparse.ArgumentParser) -> None:
    """``--search``, ``--status``, ``--state``, ``--sort``/``--desc``, ``--limit``/``--all`` and ``--offset`` of a
    job listing."""
    parser.add_argument("--search", help="only jobs with this text in their name or service (any case)")
    parser.add_argument("--status", help=f"only jobs whose last run has this status: {', '.join(STATUSES)}, or none")
    parser.add_argument("--state", help=f"only jobs in this state: {', '.join(JOB_STATES)}")
    parser.add_argument("--sort", default="name", help=f"{', '.join(JOB_SORTS)} (default name)")
    parser.add_argument("--desc", action="store_true", help="sort the other way (last_run: the most recent first)")
    add_limit_options(parser, "jobs", JOBS_LIMIT)
    parser.add_argument("--offset", type=int, default=0, help="skip this many first jobs (the next page)")


def job_listing(options: argparse.Namespace) -> dict:
    """What ``add_job_filters`` read, as a jobs listing's arguments: ``limit``, ``offset``, ``filter``, ``sort``."""
    filters = {key: getattr(options, key) for key in JOB_FILTERS if getattr(options, key) is not None}
    limit = listing_limit(options, JOBS_LIMIT)
    return {"limit": limit, "offset": options.offset, "filter": filters, "sort": job_sort(options)}


def job_sort(options: argparse.Namespace) -> str:
    """The sort of a job listing as the runner takes it: ``--sort last_run --desc`` is ``-last_run``."""
    return f"-{options.sort.removeprefix('-')}" if options.desc else options.sort


def check_status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        hint = did_you_mean(status, STATUSES)
        raise InvalidInput(f"Unknown status {status!r}.{hint} Statuses: {', '.join(STATUSES)}.", field="status")
    return status


# -- runs and previews -----------------------------------------------------------------
def add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait for the run and show it")
    parser.add_argument("--timeout", default=WAIT_TIMEOUT, help="how long to wait (with --wait), e.g. 60 or 2m")


def add_preview_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tz", help="the time zone of the line (default: yours)")
    parser.add_argument("--count", type=int, default=5, help="how many fire times (default 5)")
    parser.add_argument("--after", help="fire times at or after this date (default: now), e.g. '2026-03-28'")
    parser.add_argument("--name", help="the job's name, which H in the line hashes")


def seconds(value: str | float, what: str = "timeout") -> float:
    """A duration as typed (``10``, ``10s``, ``1m30s``) in seconds; positive. A refusal names ``what`` as its field."""
    try:
        amount = parse_duration(value, what).total_seconds()
    except InvalidInput as exc:
        exc.field = exc.field or what
        raise
    if amount <= 0:
        raise InvalidInput(f"Invalid {what} {value!r}: it must be positive, e.g. '10s' or '2m'.", field=what)
    return amount


def duration_text(amount: float | None) -> str:
    """Seconds as a duration a user types again: 3600 -> '1h'; nothing for none or zero."""
    return "" if not amount else format_duration(timedelta(seconds=float(amount)))


# -- what the front ends say ------------------------------------------------------------
#: How each front end ends an error whose ``hint`` points somewhere (``NbschedError.hint``): in its own
#: commands, so a terminal user reads ``nbsched jobs`` and a notebook user ``%schedule list``. (A Python
#: user reads ``client.jobs()``: the client's own ``HINTS``, as a note under the error.)
HINTS = {
    "cli": {
        "jobs": "See nbsched jobs.",
        "runs": "See nbsched history for run ids.",
        "deploy": "Deploy it first: nbsched deploy services/.",
        "connections": "See nbsched connection list.",
        "status": "nbsched runner status shows the store's errors.",
        "restart": "Restart the runner: nbsched runner restart.",
        "start": "(start one: nbsched runner start)",
    },
    "magic": {
        "jobs": "See %schedule list.",
        "runs": "See %schedule history for run ids.",
        "deploy": "Deploy it first with %%service.",
        "connections": "See %connection list.",
        "status": "%schedule runner status shows the store's errors.",
        "restart": "Restart the runner: %schedule runner restart.",
        "start": "(start one: %schedule runner start)",
    },
}


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def error_text(error: BaseException, front_end: str) -> str:
    """An error's message in one line, ending with its hint in ``front_end``'s words (``"cli"`` or ``"magic"``)."""
    hint = HINTS[front_end].get(getattr(error, "hint", None) or "")
    return f"{one_line(error)} {hint}" if hint else one_line(error)


def is_missing(value: Any) -> bool:
    """None, NaN or NaT (what a DataFrame holds where a value is missing)."""
    if value is None:
        return True
    try:
        return value != value  # NaN and NaT are not equal to themselves
    except (TypeError, ValueError):
        return False


def fmt_time(moment: Any, missing: str = "never", seconds: bool = True) -> str:
    """A time (already in the user's zone) as ``2026-11-25 10:00:00 CET``; ``missing`` when there is none."""
    if is_missing(moment):
        return missing
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z").strip()


# -- the runner --------------------------------------------------------------------------
def status_text(info: dict) -> str:
    """The runner's status in one line (two while its store fails), for the CLI and the magics."""
    text = (
        f"runner {info['runner']} up since {info['started_at']}: {info['jobs']} jobs, "
        f"{info['running']} running, store {info['store']}"
    )
    trouble = info.get("store_error")
    if trouble:
        what = "the store file is gone; restart the runner" if trouble.get("gone") else "store writes fail"
        text += f"\nSTORE ERROR since {trouble.get('since')}: {what}: {trouble.get('error')}"
    return text


def runner_status(settings: config.Settings) -> str | None:
    """The runner's status line, or None when no runner runs for ``settings.home``."""
    try:
        client = Client(settings, autostart=False)
    except RunnerError as exc:
        pid = runner_pid(settings)
        if pid is None:
            return None
        if not pid:
            return f"a runner is starting for {settings.home}"
        reason = "it accepts no connection on its socket" if isinstance(exc, NoRunner) else str(exc)
        return f"runner (pid {pid}) is running for {settings.home} but did not answer: {reason}"
    try:
        return status_text(client.ping())
    finally:
        client.close()


def stop_runner(settings: config.Settings) -> str:
    """Ask the runner of ``settings.home`` to stop, wait until it has, and say so.

    A runner too busy to answer on its socket, or still starting, is asked with SIGTERM: its pid lock, not its
    answer, says whether one runs."""
    try:
        client = Client(settings, autostart=False)
        try:
            name = client.shutdown()["stopping"]
        finally:
            client.close()
    except RunnerError:
        pid = runner_pid(settings)
        if pid is None:
            return f"no runner was running for {settings.home}"
        deadline = time.monotonic() + config.RUNNER_START_TIMEOUT
        while pid == 0 and time.monotonic() < deadline:  # starting: its pid is written right after its lock
            time.sleep(0.05)
            pid = runner_pid(settings)
        if pid is None:
            return f"no runner was running for {settings.home}"
        signal_stop(pid)
        name = f"(pid {pid})"
    deadline = time.monotonic() + config.SHUTDOWN_GRACE_SECONDS + 10
    while runner_pid(settings) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if runner_pid(settings) is not None:
        raise RunnerError(f"The runner {name} did not stop in time; see {settings.log_path}.")
    return f"runner {name} stopped"
