"""SMTP connections: the e-mail a service writes (``SMTPMessage``) and sending it (``self.email.smtp[name].conn``)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput, NbschedError
from .reasons import root_reason
from .secrets import resolve


class SMTPFailed(NbschedError, smtplib.SMTPException):
    """Sending through an SMTP connection failed: cannot connect, login refused, recipients refused."""


@dataclass
class SMTPMessage:
    """An e-mail, as Zato's: set the fields, ``attach`` files, send through ``self.email.smtp[name].conn``.

    ``to``, ``cc`` and ``bcc`` take one address, a comma-separated string or a list;
    ``from_`` defaults to the connection's sender, else to its username when that is an e-mail
    address (as in Zato). ``bcc`` recipients get the mail but no header names them.
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
                "(add_smtp(..., sender='me@example.com') or --sender); a username is the sender only when it is "
                "an e-mail address."
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


def is_address(text: str) -> bool:
    """Whether ``text`` is one bare e-mail address, ``local@domain`` (no display name, no spaces)."""
    from email.utils import parseaddr

    local, at, domain = text.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() for c in text) and parseaddr(text) == ("", text)


# -- sending ------------------------------------------------------------------------------
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
        mail = message.as_email(self.default_sender())
        with self.open() as server:
            try:
                refused = server.send_message(mail, from_addr=mail["From"], to_addrs=message.recipients())
            except smtplib.SMTPException as exc:
                raise SMTPFailed(
                    f"{self._what()}: the server did not accept the message ({_smtp_reason(exc)})."
                ) from exc
        if refused:
            raise SMTPFailed(f"{self._what()}: the server refused recipient(s) {', '.join(sorted(refused))}.")

    def default_sender(self) -> str | None:
        """The From of a message that sets none: the connection's sender, else its username if that is an address."""
        if self.sender or not self._spec["username"]:
            return self.sender
        username = resolve(self._spec["username"], f"{self._what()} username")
        return username if is_address(username) else None

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
    return root_reason(exc) or type(exc).__name__
