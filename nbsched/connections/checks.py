"""Testing a connection (runner side, in a thread): ``check`` reaches its endpoint once and says how it went."""

from __future__ import annotations

import time

from .kvdb import redis_client
from .rest import RESTConnection
from .secrets import mask, masked_url, secrets_of
from .smtp import SMTPConnection


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
    conn = redis_client(spec["url"], socket_timeout=5, socket_connect_timeout=5)
    try:
        return f"{masked_url(spec['url'])} answered PING", bool(conn.ping())
    finally:
        conn.close()


_CHECKS = {"rest": _check_rest, "smtp": _check_smtp, "kvdb": _check_kvdb}
