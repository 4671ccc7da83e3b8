"""A crontab as nbsched jobs (pure): each line that runs a notebook or a Python script becomes a job; the rest is
refused with its line number and why.

Honoured: ``CRON_TZ=`` and ``TZ=`` lines (the time zone of the lines after them), other ``NAME=value`` lines (the
environment of the scripts after them, and ``$NAME`` in their commands), ``cd DIR &&`` before a command,
output sent to ``/dev/null`` or a log file (the run's logs hold it now). ``MAILTO`` is ignored, with a note.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import InvalidInput
from ...model.timeparse import zone
from .commands import Command, Untranslatable, translate
from .plan import ImportEntry, ImportResult, Refusal, Script, check_extra, check_schedule, job_name

_VARIABLE_LINE = re.compile(r"^([A-Za-z_]\w*)\s*=\s*(.*)$")
#: A time field that looks like a command (a path, or a word longer than a day's or month's name).
_COMMAND_WORD = re.compile(r"[A-Za-z]{4,}|/[A-Za-z.]")
#: Variables that set the time zone of the lines after them.
TZ_VARIABLES = ("CRON_TZ", "TZ")
#: Variables cron itself reads, which mean nothing to nbsched.
IGNORED = {"MAILTO", "MAILFROM", "SHELL", "RANDOM_DELAY", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING"}


def plan_crontab(text: str, home: Path, taken: set[str] | None = None) -> tuple[list[ImportEntry], ImportResult]:
    """The jobs the crontab ``text`` translates to, and a result holding its refusals and notes (nothing created).

    ``home`` is where cron runs commands (relative paths start there); ``taken``: job names not to use.
    """
    result, entries = ImportResult(), []
    env: dict[str, str] = {}
    tz: str | None = None
    tz_error: str | None = None
    names = set(taken or ())
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        variable = _VARIABLE_LINE.match(line)
        if variable:
            name, value = variable[1], _unquote(variable[2])
            if name in TZ_VARIABLES:
                tz, tz_error = _time_zone(value, where)
                if tz_error:
                    result.refused.append(Refusal(where, raw, tz_error))
            elif name in IGNORED:
                result.notes.append(f"{where}: {name} is ignored (nbsched sends no mail of a run's output)")
            else:
                env[name] = value
            continue
        if tz_error:
            result.refused.append(Refusal(where, raw, f"the time zone before it is refused ({tz_error})"))
            continue
        try:
            entries.append(_entry(line, raw, where, env, tz, home, names))
        except Untranslatable as exc:
            result.refused.append(Refusal(where, raw, str(exc)))
    return entries, result


def _entry(line: str, raw: str, where: str, env: dict, tz: str | None, home: Path, names: set[str]) -> ImportEntry:
    """One cron line as a job; ``Untranslatable`` says why it cannot be one."""
    if line.startswith("@"):
        cron, _, command = line.partition(" ")
        if cron == "@reboot":
            raise Untranslatable(
                "@reboot has no schedule; run the job once with nbsched invoke after the runner starts"
            )
        command = command.strip()
    else:
        fields = line.split(None, 5)
        if len(fields) < 6:
            raise Untranslatable(
                f"a cron line has 5 time fields and a command, e.g. '0 6 * * * python /path/x.py'; "
                f"this one has {len(fields)} field(s)"
            )
        cron, command = " ".join(fields[:5]), fields[5]
    problem = check_schedule(cron, tz, "import")
    if problem:
        if _COMMAND_WORD.search(cron):
            problem = (
                f"it has fewer than 5 time fields before its command (they read as {cron!r}); "
                "a line looks like '0 6 * * * python /path/x.py'"
            )
        raise Untranslatable(problem)
    translated = translate(command, env, home)
    problem = check_extra(translated.parameters)
    if problem:
        raise Untranslatable(problem)
    return _as_entry(translated, where, raw, job_name(translated.path.stem, names), cron, tz, env)


def _as_entry(command: Command, where: str, raw: str, name: str, cron: str, tz, env: dict) -> ImportEntry:
    notes = list(command.notes or [])
    script = None
    if command.argv is not None:
        script = Script(tuple(command.argv), str(command.cwd), tuple(sorted((command.env or {}).items())))
    elif env:
        notes.append(f"the crontab's variables ({', '.join(sorted(env))}) do not reach the notebook's kernel")
    return ImportEntry(
        where, raw, name, str(command.path), cron, tz, command.parameters, script=script, notes=tuple(notes)
    )


def _time_zone(value: str, where: str) -> tuple[str | None, str | None]:
    """The time zone a ``CRON_TZ``/``TZ`` line sets, or why it cannot be one."""
    try:
        zone(value)
    except InvalidInput as exc:
        return None, str(exc)
    return value, None


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
