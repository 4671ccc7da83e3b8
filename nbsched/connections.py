"""Outgoing connections a service reaches by name: ``self.out.plain_http``, ``self.email.smtp``, ``self.kvdb``.

The runner sends each run the current connection definitions, so an edited connection
takes effect on the next run without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ConnectionNotFound, NbschedError, did_you_mean


@dataclass
class SMTPMessage:
    """An e-mail, as Zato's: set the fields, ``attach`` files, send through ``self.email.smtp[name].conn``."""

    from_: str | None = None
    to: str | list[str] | None = None
    cc: str | list[str] | None = None
    bcc: str | list[str] | None = None
    subject: str = ""
    body: str = ""
    is_html: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    charset: str = "utf-8"
    attachments: list[tuple[str, Any]] = field(default_factory=list)

    def attach(self, name: str, contents: str | bytes) -> None:
        self.attachments.append((name, contents))


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
                "Add one with %connection or nbsched connection."
            )
        return self.items[name]

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def keys(self):
        return self.items.keys()


class _Outgoing:
    def __init__(self, plain_http: _ByName):
        self.plain_http = plain_http


class _Email:
    def __init__(self, smtp: _ByName):
        self.smtp = smtp


class Connections:
    """The connections a run can use, built from the definitions the runner sent."""

    def __init__(self, definitions: dict[str, dict], kvdb_url: str | None):
        self.definitions = definitions
        self.kvdb_url = kvdb_url
        self.out = _Outgoing(_ByName("REST", {}))
        self.email = _Email(_ByName("SMTP", {}))

    @property
    def kvdb(self):
        raise NbschedError(
            "No kvdb is configured; set one with client.connections.set_kvdb('redis://127.0.0.1:6379/0')."
        )
