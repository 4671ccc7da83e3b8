"""A Redis client that puts a prefix before every key: ``self.kvdb.conn`` when the kvdb has a ``prefix``.

Several projects can then share one Redis database, each seeing only its own keys. The wrapper
is thin and explicit about what it covers:

- the key commands below take their key(s) with the prefix put before them;
- ``keys``, ``scan`` and ``scan_iter`` match only keys with the prefix, and return them without it;
- ``ping``, ``echo``, ``time`` and ``info`` touch no key and pass through;
- any other command (``pipeline``, ``eval``, ``flushdb``, ``blpop``, ...) is refused with a message that
  names ``conn.redis``, the plain ``redis.Redis`` underneath, which prefixes nothing (add
  ``self.kvdb.prefix`` yourself there). So no key is written without the prefix by mistake.

Field names of a hash, members of a set and values are never prefixed: only key names are.
"""

from __future__ import annotations

from typing import Any

from ..errors import NbschedError

#: Commands whose first argument is a key, by the type of value they work on.
FIRST_KEY = frozenset(
    {"get", "set", "setex", "psetex", "setnx", "getset", "getdel", "getex", "append", "strlen", "getrange"}
    | {"setrange", "incr", "incrby", "incrbyfloat", "decr", "decrby"}
    | {"expire", "expireat", "pexpire", "pexpireat", "ttl", "pttl", "persist", "type"}
    | {"hget", "hset", "hsetnx", "hmget", "hgetall", "hdel", "hexists", "hincrby", "hincrbyfloat", "hkeys"}
    | {"hvals", "hlen", "hstrlen"}
    | {"lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop", "lrange", "llen", "lindex", "lset", "lrem"}
    | {"ltrim", "linsert"}
    | {"sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop", "srandmember"}
    | {"zadd", "zrem", "zrange", "zrevrange", "zrangebyscore", "zrevrangebyscore", "zscore", "zincrby", "zcard"}
    | {"zrank", "zrevrank", "zcount", "zremrangebyscore", "zremrangebyrank"}
)
#: Commands whose first two arguments are keys (source, destination).
TWO_KEYS = frozenset({"rename", "renamenx", "rpoplpush", "lmove", "smove", "copy"})
#: Commands whose arguments are all keys: one or more, or a list of them.
ALL_KEYS = frozenset({"delete", "exists", "unlink", "touch", "mget", "sinter", "sunion", "sdiff"})
#: Commands that take a mapping of key -> value.
MAPPING = frozenset({"mset", "msetnx"})
#: Commands that touch no key, passed through as they are.
NO_KEY = frozenset({"ping", "echo", "time", "info"})
_GLOB = "*?[]\\"


class KvdbCommandNotPrefixed(NbschedError, AttributeError):
    """A command the prefixing ``self.kvdb.conn`` does not cover; ``conn.redis`` is the plain client."""


class PrefixedRedis:
    """``self.kvdb.conn`` with a prefix: a ``redis.Redis`` whose key names get ``prefix`` put before them."""

    def __init__(self, redis, prefix: str):
        self.redis = redis
        self.prefix = prefix

    # -- keys in, keys out ------------------------------------------------------------------
    def _key(self, key: Any) -> Any:
        if isinstance(key, bytes | bytearray | memoryview):
            return self.prefix.encode() + bytes(key)
        return self.prefix + str(key)

    def _keys(self, value: Any) -> Any:
        """One key, or each key of a list or tuple (redis-py takes both where a command takes several)."""
        return [self._key(key) for key in value] if isinstance(value, list | tuple) else self._key(value)

    def _unprefixed(self, key: Any) -> Any:
        size = len(self.prefix.encode()) if isinstance(key, bytes) else len(self.prefix)
        return key[size:]

    def _pattern(self, pattern: Any) -> str | bytes:
        escaped = "".join(f"\\{char}" if char in _GLOB else char for char in self.prefix)
        if isinstance(pattern, bytes):
            return escaped.encode() + pattern
        return escaped + ("*" if pattern is None else str(pattern))

    # -- commands that find keys ----------------------------------------------------------------
    def keys(self, pattern: Any = "*", **kwargs) -> list:
        """The keys under the prefix matching ``pattern``, without the prefix."""
        return [self._unprefixed(key) for key in self.redis.keys(self._pattern(pattern), **kwargs)]

    def scan(self, cursor: int = 0, match: Any = None, count: int | None = None, _type: str | None = None, **kwargs):
        cursor, found = self.redis.scan(cursor, match=self._pattern(match), count=count, _type=_type, **kwargs)
        return cursor, [self._unprefixed(key) for key in found]

    def scan_iter(self, match: Any = None, count: int | None = None, _type: str | None = None, **kwargs):
        for key in self.redis.scan_iter(match=self._pattern(match), count=count, _type=_type, **kwargs):
            yield self._unprefixed(key)

    # -- the rest ---------------------------------------------------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        command = getattr(self.redis, name)
        if name in NO_KEY:
            return command
        if name in FIRST_KEY:
            return lambda key, *args, **kwargs: command(self._key(key), *args, **kwargs)
        if name in TWO_KEYS:
            return lambda first, second, *args, **kwargs: command(self._key(first), self._key(second), *args, **kwargs)
        if name in ALL_KEYS:
            return lambda *keys, **kwargs: command(*(self._keys(key) for key in keys), **kwargs)
        if name in MAPPING:
            return lambda mapping, *args: command({self._key(key): value for key, value in mapping.items()}, *args)
        raise KvdbCommandNotPrefixed(
            f"self.kvdb.conn puts the prefix {self.prefix!r} before keys, and {name}() is not a command it "
            "prefixes; use self.kvdb.conn.redis, the plain Redis client, and put self.kvdb.prefix before "
            "the keys yourself."
        )

    def close(self) -> None:
        self.redis.close()

    def __repr__(self) -> str:
        return f"<PrefixedRedis prefix={self.prefix!r} {self.redis!r}>"
