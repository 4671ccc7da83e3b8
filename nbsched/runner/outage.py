"""Store health: whether the store can be written, since when it fails, and when to try it again.

A store that fails (locked by another process, disk full, read-only) is tried again every
``STORE_RETRY_SECONDS``; fires it made late count as missed once it works again. A store whose file was
deleted or replaced (``StoreGone``) is never written again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import Fenced, StoreError, StoreGone
from ..store import Store

log = logging.getLogger("nbsched.runner.engine")
#: Seconds between tries to write to a store that failed (due fires and results wait meanwhile).
STORE_RETRY_SECONDS = 0.5


@dataclass(slots=True)
class StoreTrouble:
    """The store failed and has not worked since: the error, since when, and when to try it again."""

    error: str
    since: datetime
    retry_at: datetime
    gone: bool = False  # its file was deleted or replaced: never tried again

    def record(self) -> dict:
        return {"error": self.error, "since": self.since, "gone": self.gone}


@dataclass
class StoreHealth:
    """The health of one store, as the engine saw it when it last wrote."""

    store: Store
    clock: Callable[[], datetime]
    trouble: StoreTrouble | None = None
    recovered_at: datetime | None = None  # when the store worked again: the fires it made late are misfires
    on_fenced: Callable[[], None] = lambda: None  # a shared store refused a write: this runner lost its lease

    def may_write(self, now: datetime) -> bool:
        trouble = self.trouble
        return trouble is None or (not trouble.gone and now >= trouble.retry_at)

    def forget_outage(self, first_due: datetime | None) -> None:
        """Once no job is due from before the store worked again, no fire is late because of its outage."""
        first = first_due
        if self.recovered_at is not None and (first is None or first >= self.recovered_at):
            self.recovered_at = None

    def status(self) -> dict | None:
        """What is wrong with the store, for the runner's status: ``error``, ``since`` and ``gone`` (its file was
        deleted or replaced; the runner then fires nothing and refuses every change), or None while it works."""
        if self.trouble is None or not self.trouble.gone:
            try:
                self.store.check()
            except StoreGone as exc:
                self.failed(exc)
        return None if self.trouble is None else self.trouble.record()

    def failed(self, exc: Exception) -> None:
        """Note a store error, logged when it starts or changes; the store is tried again from ``retry_at``.
        A write refused because this runner lost its lease on a shared store is not the store's trouble."""
        if isinstance(exc, Fenced):
            self.on_fenced()
            return
        now = self.clock()
        gone = isinstance(exc, StoreGone)
        cause = exc.__cause__ if isinstance(exc, StoreError) and not gone and exc.__cause__ else exc
        error = str(cause) or type(cause).__name__
        trouble = self.trouble
        if gone and not (trouble and trouble.gone):
            log.error("%s", error)
        elif trouble is None or trouble.error != error:
            log.warning(
                "the store failed: %s; due fires wait and results are kept until it works again (tried every %g s)",
                error,
                STORE_RETRY_SECONDS,
                exc_info=not isinstance(exc, StoreError),
            )
        self.trouble = StoreTrouble(
            error=error if not (trouble and trouble.gone) else trouble.error,
            since=now if trouble is None else trouble.since,
            retry_at=now + timedelta(seconds=STORE_RETRY_SECONDS),
            gone=gone or bool(trouble and trouble.gone),
        )

    def works(self, now: datetime) -> None:
        trouble = self.trouble
        if trouble is None or trouble.gone:
            return
        log.warning("the store works again; it failed from %s: %s", trouble.since.isoformat(), trouble.error)
        self.trouble = None
        self.recovered_at = now
