"""The key-value db in a worker: ``self.kvdb.conn``, a Redis client for the configured URL (and key prefix)."""

from __future__ import annotations

from .prefixed import PrefixedRedis
from .secrets import resolve


def redis_client(url: str, **options):
    """A ``redis.Redis`` for ``url`` (``env:VAR`` read from this process's environment)."""
    import redis

    return redis.Redis.from_url(resolve(url, "The kvdb URL"), **options)


class KVDB:
    """``self.kvdb``: ``conn`` is a ``redis.Redis`` client for the configured URL.

    With a ``prefix``, ``conn`` puts it before every key (``PrefixedRedis``), so projects that share
    one Redis keep apart; ``prefix`` is None without one.
    """

    def __init__(self, url: str, prefix: str | None = None):
        self._url = url
        self.prefix = prefix
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            client = redis_client(self._url)
            self._conn = PrefixedRedis(client, self.prefix) if self.prefix else client
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
