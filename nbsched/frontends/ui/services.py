"""The dashboard's Services and Connections tabs.

Services: what is deployed, with version and origin (the runner has no operation that
returns a service's source, so the source itself is not previewed). Connections: add,
edit, test and delete REST, SMTP and kvdb connections; password fields are never filled
with a stored secret (listings mask them), only with ``env:VARIABLE`` references.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as W

from ...errors import InvalidInput
from ..commands import duration_text, is_missing, seconds
from ..connection_options import TLS_MODES, header
from .base import fmt_time, guarded, in_background, say, show

KIND_LABELS = (("REST", "rest"), ("SMTP", "smtp"), ("kvdb", "kvdb"))
_MASK = "***"


def _table(records: list[dict], columns: tuple[str, ...], time_columns: tuple[str, ...] = ()) -> str:
    if not records:
        return "<i>none yet</i>"
    head = "".join(f"<th style='text-align:left;padding:2px 10px 2px 0'>{html.escape(c)}</th>" for c in columns)
    body = []
    for record in records:
        values = [
            fmt_time(record[c]) if c in time_columns else ("" if is_missing(record[c]) else str(record[c]))
            for c in columns
        ]
        body.append("".join(f"<td style='padding:2px 10px 2px 0'>{html.escape(v)}</td>" for v in values))
    rows = "".join(f"<tr>{row}</tr>" for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


class ServicesTab:
    """Deployed services: name, version, class, origin and when it was deployed."""

    def __init__(self, client, lock: threading.RLock):
        self.client = client
        self.lock = lock
        self.names: list[str] = []
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="100px"))
        self.table = W.HTML()
        self.status = W.HTML()
        note = W.HTML(
            '<span style="color:#57606a">Deploy with %%service, nbsched deploy services/ or client.deploy(...). '
            "Each deploy stores a new version; history records which version ran.</span>"
        )
        self.widget = W.VBox([W.HBox([self.refresh_button, note]), self.table, self.status])
        self.widget.add_class("nbsched-services")
        self.refresh_button.on_click(lambda _: guarded(self.status, self.refresh, self.lock))

    def refresh(self) -> list[str]:
        records = self.client.services().to_dict("records")
        self.names = [record["name"] for record in records]
        self.table.value = _table(
            records, ("name", "version", "class_name", "origin", "deployed_at"), time_columns=("deployed_at",)
        )
        return self.names


class ConnectionsTab:
    """Add, edit, test and delete outgoing connections (client.connections)."""

    def __init__(self, client, lock: threading.RLock):
        self.client = client
        self.lock = lock
        self.records: list[dict] = []
        self.test_thread: threading.Thread | None = None
        self.table = W.HTML()
        self.pick = W.Dropdown(description="Connection", options=[("(new)", "")], value="")
        self.kind = W.ToggleButtons(options=KIND_LABELS, value="rest", description="Kind")
        self.name = W.Text(description="Name", placeholder="e.g. My Data Source")
        self.address = W.Text(description="Address", placeholder="https://api.example.com/v1", layout=_wide())
        self.headers = W.Textarea(
            description="Headers", placeholder="one per line, NAME: VALUE (or NAME=VALUE)", layout=_wide()
        )
        self.token = W.Password(description="Token", placeholder="bearer token; env:VAR reads the runner's env")
        self.timeout = W.Text(description="Timeout", value="10s", placeholder="e.g. 10s or 1m")
        self.host = W.Text(description="Host", placeholder="smtp.example.com")
        self.port = W.BoundedIntText(value=587, min=1, max=65535, description="Port")
        self.tls = W.Dropdown(description="TLS", options=TLS_MODES, value="starttls")
        self.sender = W.Text(description="Sender", placeholder="reports@example.com")
        self.url = W.Text(description="URL", placeholder="redis://127.0.0.1:6379/0", layout=_wide())
        self.prefix = W.Text(
            description="Key prefix", placeholder="e.g. proj: (put before every key; keeps projects apart)"
        )
        self.username = W.Text(description="Username")
        self.password = W.Password(description="Password", placeholder="never shown; env:VAR reads the runner's env")
        self.password.add_class("nbsched-connection-password")
        self.secret_hint = W.HTML()
        self.save = W.Button(description="Save", button_style="primary", icon="check")
        self.test = W.Button(description="Test", icon="plug")
        self.delete = W.Button(description="Delete", button_style="danger")
        self.status = W.HTML()
        self.status.add_class("nbsched-connections-status")
        self.rest_box = W.VBox([self.address, self.headers, self.token])
        self.smtp_box = W.VBox([W.HBox([self.host, self.port]), W.HBox([self.tls, self.sender])])
        self.auth_box = W.VBox([self.username, self.password, self.secret_hint, self.timeout])
        self.kvdb_box = W.VBox([self.url, self.prefix])
        form = W.VBox(
            [
                W.HBox([self.pick, self.kind]),
                self.name,
                self.rest_box,
                self.smtp_box,
                self.kvdb_box,
                self.auth_box,
                W.HBox([self.save, self.test, self.delete]),
                self.status,
            ]
        )
        self.widget = W.VBox([self.table, form])
        self.widget.add_class("nbsched-connections")

        self.kind.observe(lambda _: self._show_kind(), names="value")
        self.pick.observe(lambda _: guarded(self.status, self.load, self.lock), names="value")
        self.save.on_click(lambda _: guarded(self.status, self.submit, self.lock))
        self.test.on_click(lambda _: guarded(self.status, self.start_test, self.lock))
        self.delete.on_click(lambda _: guarded(self.status, self.remove, self.lock))
        self._show_kind()

    @property
    def available(self) -> bool:
        return all(hasattr(self.client.connections, op) for op in ("add_rest", "add_smtp", "set_kvdb", "test"))

    def _show_kind(self) -> None:
        kind = self.kind.value
        show(self.rest_box, kind == "rest")
        show(self.smtp_box, kind == "smtp")
        show(self.kvdb_box, kind == "kvdb")
        show(self.auth_box, kind != "kvdb")
        self.name.disabled = kind == "kvdb"
        if kind == "kvdb":
            self.name.value = "kvdb"

    def refresh(self) -> None:
        if not self.available:
            say(self.status, "This nbsched has no client.connections API yet; upgrade nbsched.", "error")
            return
        self.records = self.client.connections.list().to_dict("records")
        self.table.value = _table(self.records, ("name", "kind", "address", "updated_at"), ("updated_at",))
        options = [("(new)", ""), *((record["name"], record["name"]) for record in self.records)]
        if list(self.pick.options) != options:
            current = self.pick.value
            self.pick.options = options
            self.pick.value = current if current in dict(options).values() else ""

    def load(self) -> None:
        """Fill the form from the picked connection; secrets stay out of it."""
        record = next((r for r in self.records if r["name"] == self.pick.value), None)
        self.password.value = self.token.value = ""
        self.secret_hint.value = ""
        if record is None:
            self.name.value = self.headers.value = ""
            self.timeout.value = "10s"
            return
        spec = record["definition"]
        self.kind.value = record["kind"]
        self.name.value = record["name"]
        self.address.value = spec.get("address") or ""
        self.headers.value = "\n".join(f"{key}: {value}" for key, value in (spec.get("headers") or {}).items())
        self.timeout.value = duration_text(spec.get("timeout")) or "10s"
        token = spec.get("token") or ""
        self.token.value = token if token.startswith("env:") else ""
        self.host.value = spec.get("host") or ""
        self.port.value = int(spec.get("port") or 587)
        self.tls.value = spec.get("tls") or "none"
        self.sender.value = spec.get("sender") or ""
        self.username.value = spec.get("username") or ""
        url = spec.get("url") or ""
        self.prefix.value = spec.get("prefix") or ""
        self.url.value = "" if _MASK in url else url
        stored = spec.get("password") or ""
        if stored.startswith("env:"):
            self.password.value = stored  # a reference, not a secret
        elif stored:
            self.secret_hint.value = (
                '<span style="color:#57606a">A password is stored and is never shown; '
                "type it again before saving (saving replaces the connection).</span>"
            )
        if _MASK in self.headers.value or (token and not token.startswith("env:")):
            self.secret_hint.value = (
                '<span style="color:#57606a">A stored token or secret header is never shown; '
                "type it again before saving.</span>"
            )
        if _MASK in url:
            self.secret_hint.value = '<span style="color:#57606a">The stored URL has a password; type it again.</span>'

    def submit(self) -> dict:
        """Save the form as one client call (add_rest, add_smtp or set_kvdb)."""
        kind, connections = self.kind.value, self.client.connections
        auth = {"username": self.username.value or None, "password": self.password.value or None}
        timeout = seconds(self.timeout.value.strip() or "10s")
        if kind == "rest":
            saved = connections.add_rest(
                self.name.value.strip(),
                self.address.value.strip(),
                headers=self.header_values(),
                token=self.token.value or None,
                timeout=timeout,
                **auth,
            )
        elif kind == "smtp":
            saved = connections.add_smtp(
                self.name.value.strip(),
                self.host.value.strip(),
                self.port.value,
                tls=self.tls.value,
                sender=self.sender.value.strip() or None,
                timeout=timeout,
                **auth,
            )
        else:
            saved = connections.set_kvdb(self.url.value.strip(), prefix=self.prefix.value.strip() or None)
        self.password.value = self.token.value = ""
        say(self.status, f"Saved {kind} connection {saved['name']!r}; Test reaches it once.", "ok")
        self.refresh()
        self.pick.value = saved["name"]
        return saved

    def header_values(self) -> dict[str, str]:
        """The headers typed, one per line, in the CLI's and the magics' spellings (``NAME: VALUE``, ``NAME=VALUE``).
        A secret header's value is never shown (it reads ``***``): it must be typed again to save."""
        typed = dict(header(line) for line in self.headers.value.splitlines() if line.strip())
        hidden = [name for name, value in typed.items() if value == _MASK]
        if hidden:
            raise InvalidInput(
                f"The value of header {hidden[0]!r} is a secret and is never shown; type it again (or env:VAR).",
                field="headers",
            )
        return typed

    def start_test(self) -> threading.Thread:
        """Test the named connection off the kernel's main thread; the button shows progress meanwhile."""
        name = self.name.value.strip()
        self.test.disabled, self.test.description, self.test.icon = True, "Testing…", "spinner"
        say(self.status, f"Testing {name!r}…", "busy")

        def done(result, error) -> None:
            self.test.disabled, self.test.description, self.test.icon = False, "Test", "plug"
            if error is not None:
                say(self.status, str(error), "error")
            elif result.get("ok"):
                say(self.status, f"{name}: {result.get('detail', 'ok')}", "ok")
            else:
                say(self.status, f"{name}: {result.get('detail', 'failed')}", "error")

        self.test_thread = in_background(lambda: self.client.connections.test(name), done)
        return self.test_thread

    def remove(self) -> None:
        name = self.name.value.strip()
        self.client.connections.delete(name)
        say(self.status, f"Connection {name!r} deleted.", "ok")
        self.pick.value = ""
        self.refresh()


def _wide() -> W.Layout:
    return W.Layout(width="460px")
