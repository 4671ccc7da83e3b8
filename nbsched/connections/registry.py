"""A worker's connections by name: ``Connections`` builds ``self.out``, ``self.email`` and ``self.kvdb``.

The runner sends its workers the definitions whenever they change, so an edited connection takes
effect on the next run without a restart; until then the live objects (HTTP sessions, Redis pools)
are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConnectionNotFound, did_you_mean
from .definitions import KVDB_NAME
from .kvdb import KVDB
from .rest import RESTConnection
from .secrets import secrets_of
from .smtp import SMTPConnection


@dataclass
class _Live:
    """A connection as a service sees it: ``name``, ``kind`` and ``conn``."""

    name: str
    kind: str
    conn: Any


class _ByName:
    """A mapping of connection name -> connection whose misses list the names that exist."""

    def __init__(self, kind: str, items: dict[str, Any]):
        self.kind = kind
        self.items = items

    def __getitem__(self, name: str) -> Any:
        if name not in self.items:
            known = sorted(self.items)
            raise ConnectionNotFound(
                f"No {self.kind} connection named {name!r}.{did_you_mean(name, known)} "
                f"{self.kind} connections: {', '.join(known) or 'none'}. "
                "Add one with client.connections or nbsched connection."
            )
        return self.items[name]

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def __iter__(self):
        return iter(sorted(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def keys(self):
        return self.items.keys()


class _Outgoing:
    def __init__(self, plain_http: _ByName):
        self.plain_http = plain_http


class _Email:
    def __init__(self, smtp: _ByName):
        self.smtp = smtp


class Connections:
    """The connections a worker's runs use, built from the definitions the runner sent.

    ``definitions`` maps name -> ``{"kind": ..., "definition": {...}}``. Connection
    objects (and their HTTP sessions and Redis pools) live until the definitions change.
    """

    def __init__(self, definitions: dict[str, dict]):
        self.definitions = definitions
        rest = {n: _Live(n, "rest", RESTConnection(n, r["definition"])) for n, r in _of_kind(definitions, "rest")}
        smtp = {n: _Live(n, "smtp", SMTPConnection(n, r["definition"])) for n, r in _of_kind(definitions, "smtp")}
        self.out = _Outgoing(_ByName("REST", rest))
        self.email = _Email(_ByName("SMTP", smtp))
        kvdb = definitions.get(KVDB_NAME)
        if kvdb and kvdb["kind"] == "kvdb":
            self._kvdb = KVDB(kvdb["definition"]["url"], kvdb["definition"].get("prefix"))
        else:
            self._kvdb = None
        self.secrets = secrets_of(definitions)

    @property
    def kvdb(self) -> KVDB:
        if self._kvdb is None:
            raise ConnectionNotFound(
                "No kvdb is configured, so self.kvdb has no connection; set one with "
                "client.connections.set_kvdb('redis://127.0.0.1:6379/0') or nbsched connection kvdb redis://..."
            )
        return self._kvdb

    def close(self) -> None:
        for live in self.out.plain_http.items.values():
            live.conn.close()
        if self._kvdb is not None:
            self._kvdb.close()


def _of_kind(definitions: dict[str, dict], kind: str):
    return [(name, record) for name, record in definitions.items() if record["kind"] == kind]
