"""Stores: where services, jobs, runs and connections live."""

from __future__ import annotations

from ..errors import InvalidInput
from .base import Claim, Store, StoredJob

__all__ = ["Claim", "Store", "StoredJob", "open_store"]


def open_store(url: str) -> Store:
    """Open the store a URL names: ``sqlite:///path/to/file.db`` (``redis://`` comes with scale-out)."""
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    raise InvalidInput(f"Unsupported NBSCHED_STORE {url!r}: use sqlite:////absolute/path/nbsched.db.")
