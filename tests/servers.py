"""Real local servers for tests: an HTTP server with scripted routes and an SMTP server (aiosmtpd).

Both listen on 127.0.0.1 on a free port, in this test process, and record what they got.
Fixtures (registered in conftest.py):

- ``http_server``: ``LocalHTTPServer``; ``route(path, body=..., status=..., delay=...)``,
  ``url``, ``requests`` (each a ``ReceivedRequest``).
- ``smtp_server``: ``LocalSMTPServer`` accepting any mail without login; ``messages``.
- ``smtp_server_auth``: the same, requiring login as ``SMTP_USER`` / ``SMTP_PASSWORD``.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-Secret-4711"


# -- HTTP ---------------------------------------------------------------------------------
@dataclass
class Route:
    """What the server answers for one path: a status, a body, headers, after an optional delay."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo_headers: bool = False  # answer with the request's headers as JSON


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class LocalHTTPServer:
    """A threaded HTTP server on 127.0.0.1; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[ReceivedRequest] = []
        self._released = threading.Event()  # set at stop, so delayed handlers end at once
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, body: bytes | str = b"", status: int = 200, **options) -> str:
        """Answer ``path`` (any method) with ``body`` and ``status``; return the route's full URL."""
        self.routes[path] = Route(status=status, body=body, **options)
        return self.url + path

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received = ReceivedRequest(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
                server.requests.append(received)
                route = server.routes.get(parts.path, Route(status=404, body=b"not found"))
                if route.delay:
                    server._released.wait(route.delay)
                payload = json.dumps(received.headers).encode() if route.echo_headers else route.body
                payload = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(route.status)
                    for name, value in route.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (a timeout test)
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format, *args):  # keep test output quiet
                pass

        return Handler


# -- SMTP ---------------------------------------------------------------------------------
@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage

    def attachments(self) -> dict[str, bytes]:
        """Attachment file name -> decoded bytes."""
        return {part.get_filename(): part.get_payload(decode=True) for part in self.message.iter_attachments()}

    def body(self) -> str:
        return self.message.get_body(("plain", "html")).get_content()


class LocalSMTPServer:
    """An aiosmtpd server on 127.0.0.1; with ``users``, it requires AUTH (over plain text, for tests)."""

    def __init__(self, users: dict[str, str] | None = None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP, AuthResult

        self.users = users
        self.messages: list[ReceivedMail] = []
        self.host = "127.0.0.1"
        self.port = free_port()
        received = self.messages

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            login = getattr(auth_data, "login", b"") or b""
            password = getattr(auth_data, "password", b"") or b""
            ok = users is not None and users.get(login.decode()) == password.decode()
            return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 on failure

        class PlainAuthController(Controller):
            def factory(self):
                server = SMTP(self.handler, **self.SMTP_kwargs)
                # Logins over plain text, on purpose (no certificates in tests); set after __init__,
                # which warns about it for every connection.
                server._auth_require_tls = False
                return server

        options = {"auth_required": True, "authenticator": authenticator} if users is not None else {}
        self._controller = PlainAuthController(Handler(), hostname=self.host, port=self.port, **options)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> LocalSMTPServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_mail(server: LocalSMTPServer, count: int = 1, timeout: float = 15.0) -> list[ReceivedMail]:
    deadline = time.monotonic() + timeout
    while len(server.messages) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {count} e-mail(s)")
        time.sleep(0.02)
    return server.messages


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A real HTTP server on 127.0.0.1 for one test; script it with ``route(...)``."""
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server() -> Iterator[LocalSMTPServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that accepts any mail; see ``messages``."""
    server = LocalSMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_auth() -> Iterator[LocalSMTPServer]:
    """A real SMTP server that requires login as ``SMTP_USER`` with ``SMTP_PASSWORD``."""
    server = LocalSMTPServer(users={SMTP_USER: SMTP_PASSWORD}).start()
    yield server
    server.stop()
