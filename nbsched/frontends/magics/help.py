"""The help texts of ``%schedule`` and ``%connection`` (shown by the magic alone, or ``help``)."""

from __future__ import annotations

from ..commands import RUNNER_ACTIONS, job_options_usage
from ..connection_options import TLS_MODES


def _wrapped(words: list[str], indent: int, width: int = 110) -> str:
    """Words on lines of at most ``width`` characters, never breaking inside a word such as ``[--tz ..]``."""
    lines = [" " * 2 + words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > width:
            lines.append(" " * indent + word)
        else:
            lines[-1] += " " + word
    return "\n".join(lines)


SCHEDULE_HELP = f"""\
%schedule SUBCOMMAND ...   (each takes --help)
{_wrapped(["every 5m SERVICE", *job_options_usage()], 8)}
  cron "*/5 9-17 * * mon-fri" SERVICE [same options]
  once "2026-11-25 10:00" SERVICE [same options]      (or: once "in 10m" SERVICE)
  list [--search ..] [--state paused] [--sort last_run --desc] [--limit 100 | --all]   jobs, as a DataFrame
  history [JOB] [--status error] [--since 1h] [--limit 100 | --all] [--plot]   runs, as a DataFrame
  run JOB [--wait] [--timeout 60s] | invoke SERVICE [--extra ..] [--wait]
  deploy reports/daily.ipynb [--html]   a notebook (or .py file, folder) becomes a service
  pause JOB [--note ..] | resume JOB | delete JOB | show JOB | logs RUN_ID [--follow]
  import crontab FILE | import jupyter-scheduler [DB] [--root-dir ..]   [--dry-run]   jobs of a crontab
  purge [--job JOB] [--before 30d]   delete finished runs and their executed notebooks
  preview "0 9 * * mon" [--tz Europe/Warsaw] [--count 5] [--after 2026-03-28] [--name JOB]
  runner {"|".join(RUNNER_ACTIONS)}
  ui                          the dashboard
  config [timezone=Europe/Warsaw] [home=..] [store=..] [workers=N]
Durations are 90s, 5m, 1h30m or seconds (10); $name is replaced by the value of the notebook variable name."""

CONNECTION_HELP = f"""\
%connection SUBCOMMAND ...   (each takes --help)
  rest NAME URL [--header NAME:VALUE ...] [--username U] [--password-env VAR | --ask-password] [--token T]
       [--timeout 10s] [--no-verify]
  smtp NAME HOST:PORT [--username U] [--password-env VAR | --ask-password] [--tls {"|".join(TLS_MODES)}]
       [--sender ADDRESS] [--timeout 10s]
  kvdb redis://HOST:PORT/DB [--prefix proj:]
  list | delete NAME | test NAME
Headers are NAME:VALUE or NAME=VALUE; timeouts 10s or 10 (seconds).
Passwords are stored for the runner and never shown; prefer --password-env or --ask-password to --password."""
