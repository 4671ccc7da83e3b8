"""Connection definitions (runner side): validating what a user gave (``definition``), listing it (``public_record``).

A connection is a named definition stored by the runner: a REST endpoint, an SMTP server,
or the key-value db (Redis, one per home, stored under the fixed name ``kvdb``). Secrets may be
given as ``env:VAR``; they are kept as such here and read in the worker that uses them.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInput
from .secrets import is_secret_name, masked, masked_url

KINDS = ("rest", "smtp", "kvdb")
#: The fixed name the kvdb connection is stored under.
KVDB_NAME = "kvdb"
TLS_MODES = ("none", "starttls", "ssl")


def definition(kind: str, name: str, **fields: Any) -> dict:
    """Validate what a user gave for a connection and return the definition to store."""
    if kind not in KINDS:
        raise InvalidInput(f"Invalid connection kind {kind!r}: use one of {', '.join(KINDS)}.")
    if not isinstance(name, str) or not 0 < len(name) <= 200 or not name.isprintable() or not name.strip():
        raise InvalidInput(f"Invalid connection name {name!r}: use up to 200 printable characters, e.g. 'My SMTP'.")
    if kind == "kvdb" and name != KVDB_NAME:
        raise InvalidInput(f"The kvdb connection is always named {KVDB_NAME!r}; set it with set_kvdb(url).")
    if kind != "kvdb" and name == KVDB_NAME:
        raise InvalidInput(f"The name {KVDB_NAME!r} is kept for the kvdb connection; pick another name.")
    build = {"rest": _rest, "smtp": _smtp, "kvdb": _kvdb}[kind]
    expected = [p for p in inspect.signature(build).parameters if p != "name"]
    unknown = sorted(set(fields) - set(expected))
    if unknown:
        raise InvalidInput(
            f"Unknown setting(s) {', '.join(unknown)} for a {kind} connection; expected {', '.join(expected)}."
        )
    return build(name, **fields)


def public_record(record: dict) -> dict:
    """A stored connection as listings show it: secrets masked, ``env:VAR`` references kept."""
    kind, spec = record["kind"], dict(record["definition"])
    for key in ("password", "token"):
        if spec.get(key):
            spec[key] = masked(spec[key])
    if spec.get("headers"):
        spec["headers"] = {k: masked(v) if is_secret_name(k) else v for k, v in spec["headers"].items()}
    if kind == "kvdb":
        spec["url"] = masked_url(spec["url"])
    if kind == "rest":
        spec["address"] = masked_url(spec["address"])
    address = {"rest": spec.get("address"), "smtp": f"{spec.get('host')}:{spec.get('port')}", "kvdb": spec.get("url")}
    return {
        "name": record["name"],
        "kind": kind,
        "address": address[kind],
        "definition": spec,
        "updated_at": record.get("updated_at"),
    }


# -- one builder per kind: its parameters are the settings that kind takes ----------------
def _rest(name, address, headers=None, username=None, password=None, token=None, timeout=10, verify=True) -> dict:
    parts = _url(address, ("http", "https"), f"REST connection {name!r}", "e.g. 'https://api.example.com/v1/data'")
    if parts.username or parts.password:
        raise InvalidInput(
            f"Invalid address for REST connection {name!r}: do not put credentials in the URL; "
            "pass username= and password= (or token=) instead."
        )
    if headers is None:
        headers = {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise InvalidInput(
            f"Invalid headers for REST connection {name!r}: use a dict of text, e.g. {{'Accept': 'application/json'}}."
        )
    if token and (username or password):
        raise InvalidInput(f"REST connection {name!r}: give either username/password (basic auth) or token, not both.")
    if password and not username:
        raise InvalidInput(f"REST connection {name!r}: a password needs a username (basic auth).")
    if not isinstance(verify, bool):
        raise InvalidInput(f"Invalid verify for REST connection {name!r}: use True or False.")
    return {
        "address": address,
        "headers": dict(headers),
        "username": _text(username, "username", name),
        "password": _text(password, "password", name),
        "token": _text(token, "token", name),
        "timeout": _timeout(timeout, name),
        "verify": verify,
    }


def _smtp(name, host, port, username=None, password=None, tls="none", sender=None, timeout=10) -> dict:
    if not isinstance(host, str) or not host.strip() or any(c in host for c in " /:@"):
        raise InvalidInput(
            f"Invalid host {host!r} for SMTP connection {name!r}: use a host name, e.g. 'smtp.example.com'."
        )
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InvalidInput(
            f"Invalid port {port!r} for SMTP connection {name!r}: use a number from 1 to 65535, e.g. 587."
        )
    if tls not in TLS_MODES:
        raise InvalidInput(f"Invalid tls {tls!r} for SMTP connection {name!r}: use one of {', '.join(TLS_MODES)}.")
    if password and not username:
        raise InvalidInput(f"SMTP connection {name!r}: a password needs a username.")
    if sender is not None and (not isinstance(sender, str) or "@" not in sender):
        raise InvalidInput(
            f"Invalid sender {sender!r} for SMTP connection {name!r}: use an address, e.g. 'me@example.com'."
        )
    return {
        "host": host.strip(),
        "port": port,
        "username": _text(username, "username", name),
        "password": _text(password, "password", name),
        "tls": tls,
        "sender": sender,
        "timeout": _timeout(timeout, name),
    }


def _kvdb(name, url, prefix=None) -> dict:
    if not (isinstance(url, str) and url.startswith("env:")):
        _url(url, ("redis", "rediss", "unix"), "the kvdb", "e.g. 'redis://127.0.0.1:6379/0'")
    return {"url": url, "prefix": _prefix(prefix)}


# -- field checks ---------------------------------------------------------------------------
def _url(value, schemes: tuple[str, ...], what: str, example: str):
    parts = None
    if isinstance(value, str):
        try:
            parts = urlsplit(value)
            _ = parts.port  # raises ValueError for a port that is not a number in range
        except ValueError:
            parts = None
    if parts is None or parts.scheme not in schemes or not (parts.hostname or parts.scheme == "unix"):
        shown = masked_url(value) if isinstance(value, str) else value
        raise InvalidInput(f"Invalid URL {shown!r} for {what}: use a {'/'.join(schemes)} URL, {example}.")
    return parts


def _prefix(value) -> str | None:
    """A kvdb key prefix: text of at most 100 characters, no spaces; none for None or ""."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 100 or not value.isprintable() or any(c.isspace() for c in value):
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
        raise InvalidInput(
            f"Invalid prefix {shown!r} for the kvdb: use up to 100 characters of text without spaces, e.g. 'proj:'.",
            field="prefix",
        )
    return value


def _text(value, field_name: str, name: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"Invalid {field_name} for connection {name!r}: use text (or 'env:VARIABLE').")
    return value


def _timeout(value, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 < seconds <= 3600:
        raise InvalidInput(f"Invalid timeout {value!r} for connection {name!r}: use seconds, more than 0, e.g. 10.")
    return seconds
