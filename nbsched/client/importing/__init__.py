"""Importing jobs from elsewhere: a crontab (``crontab``) or jupyter-scheduler's database (``jupyter_scheduler``).

Each import first translates everything (pure: nothing created, what cannot be translated refused with where
it is and why), then creates the jobs through the client (``plan.apply_plan``); ``dry_run`` stops after the
translation and shows what would be created.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import ImportSourceError
from .crontab import plan_crontab
from .jupyter_scheduler import DEFAULT_DB, plan_definitions, read_definitions
from .plan import ImportEntry, ImportResult, Refusal, apply_plan

if TYPE_CHECKING:
    from ..api import Client

__all__ = [
    "ImportEntry",
    "ImportResult",
    "Refusal",
    "import_crontab",
    "import_jupyter_scheduler",
    "plan_crontab_file",
    "plan_jupyter_scheduler",
]


def plan_crontab_file(path, home=None) -> tuple[list[ImportEntry], ImportResult]:
    """Read and translate the crontab file ``path`` (``home``: where its commands run, by default the user's)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportSourceError(f"No crontab file at {file}: save yours with 'crontab -l > my.cron'.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportSourceError(f"Cannot read the crontab {file}: {exc}.") from None
    return plan_crontab(text, Path(home or Path.home()))


def plan_jupyter_scheduler(db=None, staging=None, root_dir=None) -> tuple[list[ImportEntry], ImportResult]:
    """Read and translate jupyter-scheduler's job definitions in the SQLite database ``db``."""
    database = Path(db or DEFAULT_DB).expanduser()
    rows = read_definitions(database)
    staging_dir = Path(staging).expanduser() if staging else database.parent / "scheduler_staging_area"
    return plan_definitions(rows, staging_dir, Path(root_dir).expanduser() if root_dir else None)


def import_crontab(client: Client | None, path, dry_run: bool = False, home=None) -> ImportResult:
    """Create the jobs of the crontab file ``path``; ``client`` None: a dry run that checks no job name."""
    entries, result = plan_crontab_file(path, home)
    result.dry_run = dry_run
    return apply_plan(client, result, entries)


def import_jupyter_scheduler(
    client: Client | None, db=None, dry_run: bool = False, staging=None, root_dir=None
) -> ImportResult:
    """Create notebook jobs of jupyter-scheduler's job definitions in the SQLite database ``db``."""
    entries, result = plan_jupyter_scheduler(db, staging, root_dir)
    result.dry_run = dry_run
    return apply_plan(client, result, entries)
