"""Stores: where services, jobs, runs and connections live; ``open_store`` opens the one a URL names.

``base`` holds the contract (``Store`` and its records); ``sqlite`` the default store, ``postgres`` the
one several runners share, ``memory`` one in memory; ``copy`` copies one store into another; ``history``
reads run history as the wire carries it (JSON rows, Arrow).
"""

from __future__ import annotations

from ..errors import InvalidInput
from .base import Claim, DeletedRun, PendingRetry, Purge, RunQuery, Store, StoredJob, TakeOver

__all__ = ["Claim", "DeletedRun", "PendingRetry", "Purge", "RunQuery", "Store", "StoredJob", "TakeOver", "open_store"]


def open_store(url: str) -> Store:
    """Open the store a URL names: ``sqlite:///path/to/file.db``; ``postgresql://user@host:port/database``
    (or ``postgres://``; ``?schema=NAME`` for a schema other than ``nbsched``), the store several runners share;
    or ``memory://`` (a new, empty store in this process's memory, gone when it ends: for tests and trials)."""
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres(url)
    if url == "memory://":
        from .memory import MemoryStore

        return MemoryStore()
    raise InvalidInput(
        f"Unsupported NBSCHED_STORE {masked(url)!r}: use sqlite:////absolute/path/nbsched.db, "
        "postgresql://user@host:5432/database (a store several runners share), or memory:// (a store that lasts "
        "as long as the runner)."
    )


def _postgres(url: str) -> Store:
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        raise InvalidInput(
            f"The PostgreSQL store needs psycopg and ADBC's PostgreSQL driver ({exc}); install them: "
            'pip install "nbsched[postgres]"'
        ) from None
    return PostgresStore(url)


def masked(url: str) -> str:
    """``url`` with its password, if any, masked (as messages show it)."""
    import re

    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
