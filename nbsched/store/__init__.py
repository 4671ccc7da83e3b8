"""Stores: where services, jobs, runs and connections live; ``open_store`` opens the one a URL names.

``base`` holds the contract (``Store`` and its records); ``sqlite`` the default store, ``memory`` one in
memory; ``history`` reads run history as the wire carries it (JSON rows, Arrow).
"""

from __future__ import annotations

from ..errors import InvalidInput
from .base import Claim, PendingRetry, RunQuery, Store, StoredJob

__all__ = ["Claim", "PendingRetry", "RunQuery", "Store", "StoredJob", "open_store"]


def open_store(url: str) -> Store:
    """Open the store a URL names: ``sqlite:///path/to/file.db``, or ``memory://`` (a new, empty store in this
    process's memory, gone when it ends: for tests and trials)."""
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url == "memory://":
        from .memory import MemoryStore

        return MemoryStore()
    raise InvalidInput(
        f"Unsupported NBSCHED_STORE {url!r}: use sqlite:////absolute/path/nbsched.db (or memory:// for a store "
        "that lasts as long as the runner)."
    )
