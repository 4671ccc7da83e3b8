"""``nbsched import crontab FILE`` / ``nbsched import jupyter-scheduler [DB]`` and ``%schedule import ...``: the
options both front ends share, and the import itself (``client.import_crontab`` / ``import_jupyter_scheduler``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..client.importing import ImportResult, apply_plan, plan_crontab_file, plan_jupyter_scheduler
from ..client.importing.jupyter_scheduler import DEFAULT_DB
from ..errors import InvalidInput, RunnerError

#: What can be imported, and what each reads.
SOURCES = {"crontab": "a crontab file", "jupyter-scheduler": "jupyter-scheduler's SQLite database"}


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of an import: what (crontab or jupyter-scheduler), from where, and how."""
    parser.add_argument("source", choices=list(SOURCES), help="what to import from")
    parser.add_argument("path", nargs="?", help=f"the crontab file; or the database (default {DEFAULT_DB})")
    parser.add_argument("--dry-run", action="store_true", help="show the jobs it would create; create none")
    parser.add_argument("--staging", help="jupyter-scheduler's staging area (default: beside its database)")
    parser.add_argument("--root-dir", help="the Jupyter server's root, where jupyter-scheduler's notebooks are")


def run_import(options: argparse.Namespace, connect: Callable[[], object]) -> ImportResult:
    """Import as ``options`` say; ``connect()`` gives the client (a dry run goes on without one when it raises
    ``RunnerError``: no runner runs, so no job name is taken)."""
    if options.source == "crontab" and not options.path:
        raise InvalidInput("import crontab needs the crontab file, e.g. import crontab my.cron")
    if options.source == "crontab" and (options.staging or options.root_dir):
        raise InvalidInput("--staging and --root-dir are for import jupyter-scheduler only")
    if options.source == "crontab":  # the file is read and translated before a runner is asked (or started)
        entries, result = plan_crontab_file(options.path)
    else:
        entries, result = plan_jupyter_scheduler(options.path, options.staging, options.root_dir)
    result.dry_run = options.dry_run
    return apply_plan(_client(connect, options.dry_run), result, entries)


def _client(connect: Callable[[], object], dry_run: bool):
    try:
        return connect()
    except RunnerError:
        if dry_run:
            return None  # the translation needs no runner; existing job names are not checked then
        raise
