"""``client.connections``: the outgoing connections (REST, SMTP, kvdb) services use, by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import frames

if TYPE_CHECKING:
    from .api import Client


class Connections:
    """``client.connections``: outgoing connections (REST, SMTP, kvdb) by name.

    Secrets (``password``, ``token``) may be given as they are or as ``"env:VARIABLE"``, read
    from the runner's environment when a run uses them; listings never show their values.
    Saving a connection under an existing name replaces it from the next run on.
    """

    COLUMNS = ("name", "kind", "address", "definition", "updated_at")

    def __init__(self, client: Client):
        self._client = client

    def add_rest(
        self,
        name: str,
        address: str,
        headers: dict[str, str] | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10,
        verify: bool = True,
    ) -> dict:
        """A REST endpoint for ``self.out.plain_http[name].conn`` (basic auth or a bearer token)."""
        fields = {"address": address, "headers": headers, "username": username, "password": password}
        return self._save(name, "rest", {**fields, "token": token, "timeout": timeout, "verify": verify})

    def add_smtp(
        self,
        name: str,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        tls: str = "none",
        sender: str | None = None,
        timeout: float = 10,
    ) -> dict:
        """An SMTP server for ``self.email.smtp[name].conn``; ``tls`` is "none", "starttls" or "ssl"."""
        fields = {"host": host, "port": port, "username": username, "password": password}
        return self._save(name, "smtp", {**fields, "tls": tls, "sender": sender, "timeout": timeout})

    def set_kvdb(self, url: str, prefix: str | None = None) -> dict:
        """The Redis behind ``self.kvdb.conn``, e.g. ``"redis://127.0.0.1:6379/0"``.

        ``prefix`` (e.g. ``"proj:"``) is put before every key ``self.kvdb.conn`` reads or writes,
        so projects that share one Redis database keep apart.
        """
        return self._save("kvdb", "kvdb", {"url": url, **({"prefix": prefix} if prefix is not None else {})})

    def _save(self, name: str, kind: str, definition: dict) -> dict:
        return self._client.call("connection_save", name=name, kind=kind, definition=definition)

    def list(self):
        """The connections as a DataFrame, secrets masked."""
        return frames.from_records(self._client.call("connections"), self.COLUMNS, self._client.tz, ("updated_at",))

    def delete(self, name: str) -> None:
        self._client.call("connection_delete", name=name)

    def test(self, name: str) -> dict:
        """Reach the connection's endpoint once: ``{"name", "kind", "ok", "detail"}``."""
        return self._client.call("connection_test", _timeout=120, name=name)
