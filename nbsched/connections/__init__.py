"""Outgoing connections a service reaches by name: ``self.out.plain_http``, ``self.email.smtp``, ``self.kvdb``.

A connection is a named definition stored by the runner: a REST endpoint, an SMTP server,
or the key-value db (Redis, one per home, stored under the fixed name ``kvdb``). The runner
validates definitions (``definition``), lists them with secrets masked (``public_record``),
and sends them to its workers whenever they change, so an edited connection takes effect on
the next run without a restart. In a worker, ``Connections`` turns them into objects a
service uses; secrets given as ``env:VAR`` are read from the worker's environment there.

Secrets (passwords, tokens, the values of headers and URL query keys named as secrets, a password
in a URL) never leave the runner in a listing or an error, and ``mask`` blanks their values in a
run's logs, error, traceback and output: whole values only, never part of a longer word.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import smtplib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .. import config
from ..errors import ConnectionNotFound, InvalidInput, NbschedError, did_you_mean

KINDS = ("rest", "smtp", "kvdb")
#: The fixed name the kvdb connection is stored under.
KVDB_NAME = "kvdb"
TLS_MODES = ("none", "starttls", "ssl")
MASK = "***"
#: A ``key=value`` pair of a URL's query.
_QUERY_PAIR = re.compile(r"(?P<head>[?&;])(?P<key>[^=&;#\s]+)=(?P<value>[^&;#\s]*)")
#: The password of a URL that does not parse: between the user's ``:`` and the last ``@`` of the authority.
_USERINFO = re.compile(r"(?P<user>[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/]*):[^\s@]*@")


class SMTPFailed(NbschedError, smtplib.SMTPException):
    """Sending through an SMTP connection failed: cannot connect, login refused, recipients refused."""


# -- definitions (runner side) ----------------------------------------------------------
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
    import inspect

    expected = [p for p in inspect.signature(build).parameters if p != "name"]
    unknown = sorted(set(fields) - set(expected))
    if unknown:
        raise InvalidInput(
            f"Unknown setting(s) {', '.join(unknown)} for a {kind} connection; expected {', '.join(expected)}."
        )
    return build(name, **fields)


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


def _kvdb(name, url) -> dict:
    if not (isinstance(url, str) and url.startswith("env:")):
        _url(url, ("redis", "rediss", "unix"), "the kvdb", "e.g. 'redis://127.0.0.1:6379/0'")
    return {"url": url}


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


def public_record(record: dict) -> dict:
    """A stored connection as listings show it: secrets masked, ``env:VAR`` references kept."""
    kind, spec = record["kind"], dict(record["definition"])
    for key in ("password", "token"):
        if spec.get(key):
            spec[key] = _masked(spec[key])
    if spec.get("headers"):
        spec["headers"] = {k: _masked(v) if is_secret_name(k) else v for k, v in spec["headers"].items()}
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


def _masked(value: str) -> str:
    return value if value.startswith("env:") else MASK


def is_secret_name(name: str) -> bool:
    """Whether a header name or URL query key names a secret (``config.SECRET_NAMES``, ``SECRET_WORDS``)."""
    lowered = name.lower()
    words = set(re.split(r"[^a-z0-9]+", lowered))
    return any(part in lowered for part in config.secret_names()) or not words.isdisjoint(config.SECRET_WORDS)


def masked_url(url: str) -> str:
    """``url`` as shown anywhere: its password and the values of query keys named as secrets masked; a URL
    that does not parse, too (what a user typed wrong may hold a password all the same)."""
    if url.startswith("env:"):
        return url
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        url = _USERINFO.sub(rf"\g<user>:{MASK}@", url)
    else:
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            url = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))
    return _QUERY_PAIR.sub(_masked_pair, url)


def _masked_pair(match: re.Match) -> str:
    if not match["value"] or not is_secret_name(unquote(match["key"])):
        return match[0]
    return f"{match['head']}{match['key']}={MASK}"


def _url_secrets(url: str) -> list[str]:
    """The secrets in a URL: its password and the values of query keys named as secrets, as written and decoded."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    values = [password] if password else []
    values += [m["value"] for m in _QUERY_PAIR.finditer(url) if m["value"] and is_secret_name(unquote(m["key"]))]
    return [form for value in values for form in {value, unquote(value)}]


# -- secrets ----------------------------------------------------------------------------
def resolve(value: str | None, what: str) -> str | None:
    """A secret's value: itself, or for ``env:VAR`` the variable from this process's environment."""
    if not value or not value.startswith("env:"):
        return value
    variable = value[4:]
    if variable not in os.environ:
        raise InvalidInput(
            f"{what} is {value!r} but {variable} is not set in the runner's environment; "
            f"export {variable} and restart the runner (nbsched runner restart)."
        )
    return os.environ[variable]


def secrets_of(definitions: dict[str, dict]) -> list[str]:
    """Every secret value in ``definitions`` (name -> {kind, definition}), resolved; longest first."""
    found: set[str] = set()
    for record in definitions.values():
        spec = record["definition"]
        values = [spec.get("password"), spec.get("token")]
        values += [v for k, v in (spec.get("headers") or {}).items() if is_secret_name(k)]
        url = spec.get("url") if record["kind"] == "kvdb" else spec.get("address")
        if url and url.startswith("env:"):
            values.append(url)
        elif url:
            found.update(_url_secrets(url))
        for value in values:
            try:
                secret = resolve(value, "secret")
            except InvalidInput:
                continue
            if not secret:
                continue
            found.add(secret)
            if record["kind"] == "kvdb" and value.startswith("env:"):
                found.update(_url_secrets(secret))
        if spec.get("username") and spec.get("password"):
            try:
                pair = f"{resolve(spec['username'], 'username')}:{resolve(spec['password'], 'password')}"
            except InvalidInput:
                continue
            found.add(base64.b64encode(pair.encode()).decode())
    return sorted(found, key=len, reverse=True)


def mask(text: str | None, secrets: list[str]) -> str | None:
    """``text`` with every secret value replaced by ``***``: where it stands whole, not inside a longer word;
    one shorter than ``config.MASK_MIN_CHARS`` only where it stands as a value (after ``=`` or ``:``, or
    quoted), so that a password ``test`` leaves "test passed" as it is."""
    if not text or not secrets:
        return text
    return _mask_pattern(tuple(secrets)).sub(MASK, text)


@functools.lru_cache(maxsize=64)
def _mask_pattern(secrets: tuple[str, ...]) -> re.Pattern:
    alternatives = []
    for secret in sorted(secrets, key=len, reverse=True):
        before = r"(?<!\w)" if re.match(r"\w", secret) else ""
        after = r"(?!\w)" if re.search(r"\w$", secret) else ""
        if len(secret) < config.MASK_MIN_CHARS:
            before = r"(?:(?<=[=:\"'])|(?<=[=:] ))"
        alternatives.append(f"{before}{re.escape(secret)}{after}")
    return re.compile("|".join(alternatives))


# -- e-mail -----------------------------------------------------------------------------
@dataclass
class SMTPMessage:
    """An e-mail, as Zato's: set the fields, ``attach`` files, send through ``self.email.smtp[name].conn``.

    ``to``, ``cc`` and ``bcc`` take one address, a comma-separated string or a list;
    ``from_`` defaults to the connection's sender. ``bcc`` recipients get the mail but
    no header names them.
    """

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
        """Attach a file: text is sent as text in ``charset``, bytes as they are."""
        self.attachments.append((name, contents))

    def recipients(self) -> list[str]:
        return [*addresses(self.to), *addresses(self.cc), *addresses(self.bcc)]

    def as_email(self, default_sender: str | None = None):
        """The message as an ``email.message.EmailMessage`` (without Bcc)."""
        import mimetypes
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        sender = self.from_ or default_sender
        if not sender:
            raise InvalidInput(
                "The e-mail has no sender: set message.from_, or give the SMTP connection a default sender "
                "(add_smtp(..., sender='me@example.com') or --sender)."
            )
        if not self.recipients():
            raise InvalidInput("The e-mail has no recipients: set message.to (a string, comma-separated, or a list).")
        mail = EmailMessage()
        mail["From"] = sender
        for header, value in (("To", self.to), ("Cc", self.cc)):
            if addresses(value):
                mail[header] = ", ".join(addresses(value))
        mail["Subject"] = self.subject
        mail["Date"] = formatdate(localtime=True)
        mail["Message-ID"] = make_msgid()
        for header, value in self.headers.items():
            del mail[header]
            mail[header] = value
        mail.set_content(self.body, subtype="html" if self.is_html else "plain", charset=self.charset)
        for name, contents in self.attachments:
            # Sent base64-encoded, so the receiver gets exactly these bytes (line endings included).
            text = isinstance(contents, str)
            kind = mimetypes.guess_type(name)[0] or ("text/plain" if text else "application/octet-stream")
            maintype, subtype = kind.split("/", 1)
            data = contents.encode(self.charset) if text else bytes(contents)
            params = {"charset": self.charset} if text and maintype == "text" else None
            mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name, params=params)
        return mail


def addresses(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Recipients from a comma-separated string or a list, stripped, empty ones dropped."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else [part for item in value for part in str(item).split(",")]
    return [item.strip() for item in items if item.strip()]


# -- live connections (worker side) -----------------------------------------------------
class RESTConnection:
    """``self.out.plain_http[name].conn``: HTTP calls to the connection's address.

    Each method takes the run's ``cid`` first (sent as ``X-Request-ID``) and returns a
    ``requests.Response``. HTTP error statuses do not raise (as in Zato); call
    ``response.raise_for_status()`` to fail the run on them. Network errors and timeouts
    raise the usual ``requests`` exceptions, with a message naming the connection.

    ``path="/items"`` is appended to the address; ``params`` fill ``{placeholders}`` in
    the address or path, and the rest become the query string. Other keywords
    (``headers``, ``json``, ``files``, ``timeout``, ...) go to ``requests``; a dict or list
    as ``data`` is sent as JSON.
    """

    def __init__(self, name: str, spec: dict):
        self.name = name
        self.address = spec["address"]
        self.timeout = spec["timeout"]
        self.verify = spec["verify"]
        self._spec = spec
        self._session = None

    @property
    def session(self):
        if self._session is None:
            import requests

            what = f"REST connection {self.name!r}"
            session = requests.Session()
            session.headers.update({k: resolve(v, f"{what} header {k}") for k, v in self._spec["headers"].items()})
            if self._spec["token"]:
                session.headers["Authorization"] = f"Bearer {resolve(self._spec['token'], f'{what} token')}"
            elif self._spec["username"]:
                password = resolve(self._spec["password"], f"{what} password") or ""
                session.auth = (resolve(self._spec["username"], f"{what} username"), password)
            self._session = session
        return self._session

    def get(self, cid: str, params: dict | None = None, **kwargs):
        return self.request("GET", cid, params=params, **kwargs)

    def post(self, cid: str, data: Any = "", params: dict | None = None, **kwargs):
        return self.request("POST", cid, data=data, params=params, **kwargs)

    def put(self, cid: str, data: Any = "", params: dict | None = None, **kwargs):
        return self.request("PUT", cid, data=data, params=params, **kwargs)

    def patch(self, cid: str, data: Any = "", params: dict | None = None, **kwargs):
        return self.request("PATCH", cid, data=data, params=params, **kwargs)

    def delete(self, cid: str, params: dict | None = None, **kwargs):
        return self.request("DELETE", cid, params=params, **kwargs)

    def request(self, method: str, cid: str, data: Any = None, params: dict | None = None, path: str = "", **kwargs):
        import requests

        url, query = self._url(path, dict(params or {}))
        headers = {**(kwargs.pop("headers", None) or {}), "X-Request-ID": str(cid)}
        if isinstance(data, dict | list):
            kwargs.setdefault("json", data)
            data = None
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        try:
            return self.session.request(method, url, data=data, params=query, headers=headers, **kwargs)
        except requests.RequestException as exc:
            raise _explained(exc, f"REST connection {self.name!r}: {method} {url}", kwargs["timeout"]) from exc

    def _url(self, path: str, params: dict) -> tuple[str, dict]:
        url = self.address.rstrip("/") + "/" + path.lstrip("/") if path else self.address
        for placeholder in re.findall(r"\{(\w+)\}", url):
            if placeholder not in params:
                raise InvalidInput(
                    f"REST connection {self.name!r}: the URL {url!r} needs {placeholder!r}; "
                    f"pass params={{{placeholder!r}: ...}}."
                )
            url = url.replace(f"{{{placeholder}}}", quote(str(params.pop(placeholder)), safe=""))
        return url, params

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _explained(exc, what: str, timeout) -> Exception:
    """The same kind of requests exception, with a one-line message that says which call failed."""
    import requests

    if isinstance(exc, requests.Timeout):
        reason = f"no reply within {timeout}s (the timeout); raise it with timeout= or check the server"
    elif isinstance(exc, requests.ConnectionError):
        reason = f"cannot connect ({_root_reason(exc)}); check the address and that the server is up"
    else:
        reason = _root_reason(exc)
    try:
        return type(exc)(f"{what}: {reason}.", request=exc.request, response=exc.response)
    except TypeError:  # an exception class with another signature: keep the original
        return exc


def _root_reason(exc: BaseException) -> str:
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return found.group(1) if found else " ".join(text.split())[:200]


class SMTPConnection:
    """``self.email.smtp[name].conn``: sends ``SMTPMessage``s through the connection's server."""

    def __init__(self, name: str, spec: dict):
        self.name = name
        self.host = spec["host"]
        self.port = spec["port"]
        self.tls = spec["tls"]
        self.sender = spec["sender"]
        self.timeout = spec["timeout"]
        self._spec = spec

    def send(self, message: SMTPMessage) -> None:
        """Send one message (to, cc and bcc recipients); raise SMTPFailed saying what went wrong."""
        mail = message.as_email(self.sender)
        with self.open() as server:
            try:
                refused = server.send_message(mail, from_addr=mail["From"], to_addrs=message.recipients())
            except smtplib.SMTPException as exc:
                raise SMTPFailed(
                    f"{self._what()}: the server did not accept the message ({_smtp_reason(exc)})."
                ) from exc
        if refused:
            raise SMTPFailed(f"{self._what()}: the server refused recipient(s) {', '.join(sorted(refused))}.")

    def open(self) -> smtplib.SMTP:
        """A connected (and, with a username, logged-in) ``smtplib.SMTP``; close it with ``quit()``."""
        import ssl

        try:
            if self.tls == "ssl":
                server = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise SMTPFailed(
                f"{self._what()}: cannot connect ({_smtp_reason(exc)}); check the host, port and tls setting."
            ) from exc
        try:
            if self.tls == "starttls":
                server.starttls(context=ssl.create_default_context())
            if self._spec["username"]:
                username = resolve(self._spec["username"], f"{self._what()} username")
                password = resolve(self._spec["password"], f"{self._what()} password") or ""
                try:
                    server.login(username, password)
                except smtplib.SMTPException as exc:
                    raise SMTPFailed(
                        f"{self._what()}: the server refused the login of {username!r} ({_smtp_reason(exc)}); "
                        "check the connection's username and password."
                    ) from exc
        except BaseException:
            server.close()
            raise
        return server

    def _what(self) -> str:
        return f"SMTP connection {self.name!r} ({self.host}:{self.port})"


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {' '.join(text.split())}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return _root_reason(exc) or type(exc).__name__


class KVDB:
    """``self.kvdb``: ``conn`` is a ``redis.Redis`` client for the configured URL."""

    def __init__(self, url: str):
        self._url = url
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            import redis

            self._conn = redis.Redis.from_url(resolve(self._url, "The kvdb URL"))
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


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
        self._kvdb = KVDB(kvdb["definition"]["url"]) if kvdb and kvdb["kind"] == "kvdb" else None
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


# -- checks (runner side, in a thread) ----------------------------------------------------
def check(name: str, kind: str, spec: dict) -> dict:
    """Reach a connection's endpoint once; ``ok`` and a one-line ``detail`` (secrets masked)."""
    secrets = secrets_of({name: {"kind": kind, "definition": spec}})
    started = time.monotonic()
    try:
        detail, ok = _CHECKS[kind](name, spec)
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {' '.join(str(exc).split())}", False
    elapsed = (time.monotonic() - started) * 1000
    return {"name": name, "kind": kind, "ok": ok, "detail": mask(f"{detail} ({elapsed:.0f} ms)", secrets)}


def _check_rest(name: str, spec: dict) -> tuple[str, bool]:
    connection = RESTConnection(name, spec)
    try:
        response = connection.get("nbsched-connection-test")
    finally:
        connection.close()
    # Any answer means the endpoint is reachable; refused credentials and server errors do not count.
    ok = response.status_code < 500 and response.status_code not in (401, 403)
    return f"GET {masked_url(spec['address'])} answered HTTP {response.status_code} {response.reason}", ok


def _check_smtp(name: str, spec: dict) -> tuple[str, bool]:
    connection = SMTPConnection(name, spec)
    server = connection.open()
    try:
        code, _ = server.noop()
    finally:
        server.quit()
    login = " and accepted the login" if spec["username"] else ""
    return f"{spec['host']}:{spec['port']} answered{login} (NOOP {code})", code == 250


def _check_kvdb(name: str, spec: dict) -> tuple[str, bool]:
    import redis

    conn = redis.Redis.from_url(resolve(spec["url"], "The kvdb URL"), socket_timeout=5, socket_connect_timeout=5)
    try:
        return f"{masked_url(spec['url'])} answered PING", bool(conn.ping())
    finally:
        conn.close()


_CHECKS = {"rest": _check_rest, "smtp": _check_smtp, "kvdb": _check_kvdb}
