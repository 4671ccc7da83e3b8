"""The wire protocol between clients and the runner: newline-delimited, versioned JSON.

Request:  ``{"v": 1, "id": 7, "token": "...", "op": "jobs", "args": {...}}``
Reply:    ``{"v": 1, "id": 7, "ok": true, "result": ...}``
Error:    ``{"v": 1, "id": 7, "ok": false, "error": {"type": "JobNotFound", "message": "...", "field": "name"}}``
          (``field``, the option the error is about, only when it is about one; ``hint``, what the
          front end's hint after the message points to, e.g. ``"jobs"``, only when there is one)

Every request gets exactly one reply. Datetimes travel as ISO 8601 text with an offset.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import orjson

from .errors import InvalidInput, NbschedError, ProtocolError, error_types
from .gcpause import gc_paused

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
        "invoke_many",
        "pause",
        "resume",
        "purge",
        "delete",
        "history",
        "run_counts",
        "jobs_page",
        "run",
        "wait",
        "logs",
        "preview",
        "backfill",
        "connection_save",
        "connections",
        "connection_delete",
        "connection_test",
        "shutdown",
    }
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
    """One message as a line of UTF-8 JSON (requests: small, and every value kept as given)."""
    return json.dumps(message, default=_default, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def dumps_reply(message: dict) -> bytes:
    """A reply as a line of JSON; orjson encodes a large history several times faster."""
    try:
        return orjson.dumps(message, default=_default, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError):  # what orjson refuses (huge ints, ...): the standard library decides
        return dumps(message)


# Datetimes are written by orjson itself (RFC 3339, as datetime.isoformat() writes them).
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def request(op: str, args: dict, token: str, request_id: int) -> bytes:
    try:
        return dumps({"v": VERSION, "id": request_id, "token": token, "op": op, "args": args})
    except (TypeError, ValueError) as exc:  # bytes, sets of objects, text that is not valid UTF-8 (lone surrogates)
        raise InvalidInput(
            f"Cannot send {op!r}: {exc}. Use JSON data: text (valid UTF-8), numbers, lists and dicts."
        ) from None


class Encoded(bytes):
    """A result already encoded as JSON (built off the runner's event loop)."""


def encode_result(result) -> Encoded:
    return Encoded(dumps_reply(result).rstrip(b"\n"))


class Binary:
    """A result sent as raw bytes: a header line ``{"v", "id", "ok": true, "binary": N}``, then N bytes."""

    def __init__(self, data: bytes | bytearray):
        self.data = data

    def header(self, request_id) -> bytes:
        return dumps({"v": VERSION, "id": request_id, "ok": True, "binary": len(self.data)})


class Stream:
    """A result sent as it is made: a header ``{"v", "id", "ok": true, "stream": {...}}`` (what the chunks are),
    then each chunk as a line with its byte count followed by its bytes, then ``0`` on a line of its own, then
    one last line: a reply whose result is the number of chunks, or an error reply when making them failed.

    So a long history leaves the runner a chunk at a time and neither side holds it whole.
    """

    def __init__(self, chunks: Iterator[bytes], about: dict):
        self.chunks = chunks
        self.about = about
        self.request_id = None

    def header(self) -> bytes:
        return dumps({"v": VERSION, "id": self.request_id, "ok": True, "stream": self.about})

    @staticmethod
    def frame(chunk: bytes) -> bytes:
        return b"%d\n" % len(chunk) + chunk

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


#: The line that ends a stream's chunks.
STREAM_END = b"0\n"


def reply(request_id, result) -> bytes:
    if isinstance(result, Binary):
        return result.header(request_id) + bytes(result.data)
    if isinstance(result, Encoded):
        head = dumps({"v": VERSION, "id": request_id, "ok": True}).rstrip(b"\n")[:-1]
        return head + b',"result":' + result + b"}\n"
    return dumps_reply({"v": VERSION, "id": request_id, "ok": True, "result": result})


def error_reply(request_id, error: BaseException) -> bytes:
    kind = type(error).__name__ if isinstance(error, NbschedError) else "NbschedError"
    body = {"type": kind, "message": str(error)}
    field = getattr(error, "field", None) if isinstance(error, NbschedError) else None
    if isinstance(field, str):
        body["field"] = field
    hint = getattr(error, "hint", None) if isinstance(error, NbschedError) else None
    if isinstance(hint, str):
        body["hint"] = hint
    return dumps({"v": VERSION, "id": request_id, "ok": False, "error": body})


def remote_error(error: object) -> NbschedError:
    """The error an error reply carries, as its own class (``ProtocolError`` for a class this side does not know)."""
    if not isinstance(error, dict):
        error = {}
    cls = error_types().get(error.get("type"), ProtocolError)
    field, hint = error.get("field"), error.get("hint")
    return cls(
        error.get("message", "unknown error"),
        field=field if isinstance(field, str) else None,
        hint=hint if isinstance(hint, str) else None,
    )


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


#: Replies longer than this are decoded with the cyclic GC paused.
LARGE_REPLY_BYTES = 1 << 20


def parse_reply(line: bytes) -> dict:
    try:
        if len(line) > LARGE_REPLY_BYTES:
            with gc_paused():
                message = orjson.loads(line)
        else:
            message = orjson.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"The runner sent a reply that is not JSON ({exc}).") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise ProtocolError(f"The runner speaks another protocol version than this client ({VERSION}); restart it.")
    return message
