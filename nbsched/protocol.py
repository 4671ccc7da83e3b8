"""The wire protocol between clients and the runner: newline-delimited, versioned JSON.

Request:  ``{"v": 1, "id": 7, "token": "...", "op": "jobs", "args": {...}}``
Reply:    ``{"v": 1, "id": 7, "ok": true, "result": ...}``
Error:    ``{"v": 1, "id": 7, "ok": false, "error": {"type": "JobNotFound", "message": "..."}}``

Every request gets exactly one reply. Datetimes travel as ISO 8601 text with an offset.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from .errors import InvalidInput, NbschedError, ProtocolError

VERSION = 1

#: Operations the runner answers; anything else gets an error reply.
OPERATIONS = frozenset(
    {
        "ping",
        "deploy",
        "services",
        "schedule",
        "update",
        "jobs",
        "job",
        "execute",
        "invoke",
        "pause",
        "resume",
        "delete",
        "history",
        "run",
        "wait",
        "preview",
        "backfill",
        "connection_save",
        "connections",
        "connection_delete",
        "connection_test",
        "shutdown",
    }
)

#: The columns of a run record (DESIGN.md section 5), in the order listings show them.
RUN_FIELDS = (
    "run_id",
    "cid",
    "job",
    "service",
    "service_version",
    "trigger",
    "attempt",
    "status",
    "scheduled_at",
    "started_at",
    "finished_at",
    "delay_ms",
    "duration_ms",
    "error",
    "traceback",
    "output",
    "logs",
    "runner",
)

#: The keys of a job listing (``jobs``; ``%schedule list``; ``nbsched jobs --format json``).
JOB_LIST_FIELDS = (
    "name",
    "type",
    "definition",
    "service",
    "active",
    "next_run",
    "last_run",
    "last_status",
    "runs",
    "note",
)


def _default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(message: dict) -> bytes:
    """One message as a line of UTF-8 JSON."""
    return json.dumps(message, default=_default, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def request(op: str, args: dict, token: str, request_id: int) -> bytes:
    try:
        return dumps({"v": VERSION, "id": request_id, "token": token, "op": op, "args": args})
    except (TypeError, ValueError) as exc:  # bytes, sets of objects, text that is not valid UTF-8 (lone surrogates)
        raise InvalidInput(
            f"Cannot send {op!r}: {exc}. Use JSON data: text (valid UTF-8), numbers, lists and dicts."
        ) from None


def reply(request_id, result) -> bytes:
    return dumps({"v": VERSION, "id": request_id, "ok": True, "result": result})


def error_reply(request_id, error: BaseException) -> bytes:
    kind = type(error).__name__ if isinstance(error, NbschedError) else "NbschedError"
    return dumps({"v": VERSION, "id": request_id, "ok": False, "error": {"type": kind, "message": str(error)}})


def parse_request(line: bytes) -> dict:
    """Decode and check one request line; raise ProtocolError saying what is wrong."""
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("Request is not UTF-8 text; send one JSON object per line, UTF-8 encoded.") from None
    except ValueError as exc:
        raise ProtocolError(f"Request is not valid JSON ({exc}); send one JSON object per line.") from None
    if not isinstance(message, dict):
        raise ProtocolError("Request must be a JSON object with v, id, token, op and args.")
    if message.get("v") != VERSION:
        raise ProtocolError(f"Unsupported protocol version {message.get('v')!r}; this runner speaks version {VERSION}.")
    if not isinstance(message.get("op"), str):
        raise ProtocolError("Request has no 'op'; name an operation such as 'ping'.")
    if not isinstance(message.get("args", {}), dict):
        raise ProtocolError("Request 'args' must be a JSON object.")
    return message


def parse_reply(line: bytes) -> dict:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"The runner sent a reply that is not JSON ({exc}).") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise ProtocolError(f"The runner speaks another protocol version than this client ({VERSION}); restart it.")
    return message
