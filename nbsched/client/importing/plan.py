"""An import's plan (the jobs a crontab or a jupyter-scheduler database translates to, and what it refuses), and
carrying it out through the client: each job's service deployed, then the job scheduled."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import NbschedError
from ...model.triggers import Cron

if TYPE_CHECKING:
    from ..api import Client

_NAME_BAD = re.compile(r"[^A-Za-z0-9._:@/-]+")


@dataclass(frozen=True)
class Script:
    """How a Python script runs as a service: the command as the crontab line gave it, in ``cwd``, with ``env``."""

    argv: tuple[str, ...]
    cwd: str
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImportEntry:
    """One job to create: its name, its schedule, and the notebook (with parameters) or script it runs."""

    where: str  #: ``line 4`` of a crontab, or ``job definition 'daily' (id)`` of a jupyter-scheduler database
    text: str  #: the line or definition as it was
    job: str
    path: str  #: the notebook or script, absolute
    cron: str
    tz: str | None = None
    extra: dict | None = None
    active: bool = True
    script: Script | None = None  #: None: a notebook
    notes: tuple[str, ...] = ()  #: what did not carry over exactly

    @property
    def kind(self) -> str:
        return "notebook" if self.script is None else "script"

    def describe(self) -> str:
        """``job daily: cron "0 6 * * *" in Europe/Warsaw, notebook /x/daily.ipynb, extra {"day": 1} [line 4]``."""
        text = f'job {self.job}: cron "{self.cron}"' + (f" in {self.tz}" if self.tz else "")
        if self.script is None:
            text += f", notebook {self.path}"
        else:
            text += f", script: {' '.join(self.script.argv)} (in {self.script.cwd})"
        if self.extra:
            text += f", extra {json.dumps(self.extra, default=str)}"
        return text + ("" if self.active else " (paused)") + f" [{self.where}]"


@dataclass(frozen=True)
class Refusal:
    """A line or definition that was not imported, and why."""

    where: str
    text: str
    reason: str

    def describe(self) -> str:
        return f"{self.where}: {self.text.strip()!r}: {self.reason}"


@dataclass
class ImportResult:
    """What an import created (or, with ``dry_run``, would create), what it refused, and notes on the whole."""

    created: list[ImportEntry] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> list[str]:
        """The result as lines of text, for the command line and the magics."""
        verb = "would create" if self.dry_run else "created"
        lines = []
        for entry in self.created:
            lines += [f"{verb} {entry.describe()}", *(f"  note: {note}" for note in entry.notes)]
        lines += [f"refused {refusal.describe()}" for refusal in self.refused]
        lines += [f"note: {note}" for note in self.notes]
        done = "to create (dry run: none created)" if self.dry_run else "created"
        lines.append(f"{len(self.created)} job(s) {done}, {len(self.refused)} refused")
        return lines


def job_name(stem: str, taken: set[str]) -> str:
    """A valid job name from a file stem or a definition's name, not in ``taken`` (then added to it)."""
    base = _NAME_BAD.sub("-", stem).strip("-._:@/")[:190] or "imported"
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    taken.add(name)
    return name


def check_schedule(cron: str, tz: str | None, name: str) -> str | None:
    """Why the schedule cannot be a job's (the model's message), or None."""
    try:
        Cron(cron, tz or "UTC", seed=name)
    except NbschedError as exc:
        return str(exc)
    return None


def check_extra(extra: Any) -> str | None:
    """Why the parameters cannot be a job's extra (plain JSON data only), or None."""
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"its parameters are not plain JSON data ({exc}); use text, numbers, lists and dicts"
    return None


def apply_plan(client: Client | None, result: ImportResult, entries: list[ImportEntry]) -> ImportResult:
    """Create the jobs of ``entries`` (``result.dry_run``: only check them) and record each in ``result``.

    A job whose name exists is refused (imported before?); so is one whose service or job the runner
    refuses. Checks run before anything is created, so a refused entry leaves at most its service deployed
    when the runner refuses the job itself. ``client`` None (a dry run with no runner) skips the name check.
    """
    existing = {record["name"] for record in client.call("jobs")} if client is not None else set()
    for entry in entries:
        if entry.job in existing:
            reason = f"a job named {entry.job!r} exists (imported before?); delete it or rename it, then import again"
            result.refused.append(Refusal(entry.where, entry.text, reason))
            continue
        if result.dry_run:
            result.created.append(entry)
            continue
        try:
            service = _deploy(client, entry)
            client.schedule(
                service, name=entry.job, cron=entry.cron, tz=entry.tz, extra=entry.extra, active=entry.active
            )
        except NbschedError as exc:
            result.refused.append(Refusal(entry.where, entry.text, " ".join(str(exc).split())))
            continue
        existing.add(entry.job)
        result.created.append(entry)
    return result


def _deploy(client: Client, entry: ImportEntry) -> str:
    """Deploy the entry's notebook, or the service generated for its script; the service's name."""
    if entry.script is None:
        names = client.deploy(entry.path)
        expected = Path(entry.path).stem
        return expected if expected in names else names[0]
    from .script import script_service

    name = f"script.{entry.job}"
    unit = {"source": script_service(name, entry), "origin": f"<import: {entry.where}>"}
    client.call("deploy", units=[unit])
    return name
