"""The runner's socket: one reply per request, errors as replies, and the runner keeps serving."""

from __future__ import annotations

import json
import socket

import pytest

from nbsched import protocol

pytestmark = pytest.mark.slow


class RawSocket:
    """A hand-driven connection to the runner, to send what no client would."""

    def __init__(self, home):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(home / "runner.sock"))
        self.reader = self.sock.makefile("rb")
        self.token = (home / "token").read_text().strip()

    def send(self, raw: bytes) -> dict | None:
        self.sock.sendall(raw)
        line = self.reader.readline()
        return json.loads(line) if line else None

    def request(self, op: str, token: str | None = None, **args) -> dict:
        return self.send(protocol.request(op, args, self.token if token is None else token, 1))

    def close(self):
        self.reader.close()
        self.sock.close()


@pytest.fixture
def raw(client):
    connection = RawSocket(client.settings.home)
    yield connection
    connection.close()


def test_a_request_gets_one_reply_with_its_id(raw):
    reply = raw.send(protocol.request("ping", {}, raw.token, 42))
    assert reply["ok"] is True and reply["id"] == 42 and reply["v"] == protocol.VERSION
    assert reply["result"]["version"] == protocol.VERSION


def test_a_wrong_or_missing_token_gets_an_auth_error_and_no_data(raw):
    for token in ("wrong", ""):
        reply = raw.request("jobs", token=token)
        assert reply["ok"] is False
        assert reply["error"]["type"] == "AuthError"
        assert "result" not in reply
    assert raw.request("ping")["ok"] is True  # same connection still served


def test_an_unknown_operation_is_answered_with_an_error(raw):
    reply = raw.request("drop_everything")
    assert reply["error"]["type"] == "ProtocolError"
    assert reply["error"]["message"].startswith("Unknown operation 'drop_everything'; known: backfill,")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json\n", "Request is not valid JSON"),
        (b"[1, 2, 3]\n", "Request must be a JSON object"),
        (b'{"v": 99, "op": "ping"}\n', "Unsupported protocol version 99"),
        (b'{"v": 1, "token": "x"}\n', "Request has no 'op'"),
        (b"\xff\xfe\xfd\n", "Request is not UTF-8 text"),
    ],
)
def test_malformed_requests_get_an_error_reply(raw, line, message):
    reply = raw.send(line)
    assert reply["ok"] is False and reply["error"]["type"] == "ProtocolError"
    assert reply["error"]["message"].startswith(message)
    assert raw.request("ping")["ok"] is True


def test_bad_arguments_are_refused_by_name(raw):
    reply = raw.request("pause", nme="x")
    assert reply["error"]["message"] == "Unknown argument(s) 'nme'; expected name, note."
    reply = raw.request("run")
    assert reply["error"]["message"] == "Missing argument(s): run_id."


def test_an_oversized_frame_is_refused_and_others_are_still_served(client, raw):
    reply = raw.send(b'{"v": 1, "op": "ping", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}\n')
    assert reply["ok"] is False and "larger than 1048576 bytes" in reply["error"]["message"]
    assert raw.request("ping")["ok"] is True  # the same connection goes on with the next request
    assert client.ping()["pid"] > 0


def test_a_client_that_never_finishes_its_line_blocks_nobody(client):
    stuck = RawSocket(client.settings.home)
    try:
        stuck.sock.sendall(b'{"v": 1, "op": "pi')  # and nothing more
        for _ in range(20):
            assert client.ping()["jobs"] == 0
    finally:
        stuck.close()
