"""The key-value db in a worker: ``self.kvdb.conn``, a Redis client for the configured URL."""

from __future__ import annotations

from .secrets import resolve


def redis_client(url: str, **options):
    """A ``redis.Redis`` for ``url`` (``env:VAR`` read from this process's environment)."""
    import redis

    return redis.Redis.from_url(resolve(url, "The kvdb URL"), **options)


class KVDB:
    """``self.kvdb``: ``conn`` is a ``redis.Redis`` client for the configured URL."""

    def __init__(self, url: str):
        self._url = url
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            self._conn = redis_client(self._url)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
