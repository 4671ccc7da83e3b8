"""A private socket: owner-only files, a token on every request, bounded frames, no client can
block the others, and no secret ends up in history or the log.
"""

from __future__ import annotations

import json
import socket
import stat
import time

import pytest
from conftest import wait_until

import nbsched
from nbsched import config
from nbsched.errors import AuthError


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _raw(home) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(home / "runner.sock"))
    return sock


def _ask(sock: socket.socket, message: dict | bytes) -> dict:
    line = message if isinstance(message, bytes) else json.dumps(message).encode()
    sock.sendall(line + b"\n")
    with sock.makefile("rb") as reader:
        return json.loads(reader.readline())


@pytest.mark.slow
def test_home_socket_and_token_are_private_to_the_owner(home):
    home.chmod(0o755)  # a home that exists already with loose permissions is tightened
    client = nbsched.connect()
    try:
        assert _mode(home) == 0o700
        assert _mode(home / "runner.sock") == 0o600
        assert _mode(home / "token") == 0o600
        assert stat.S_ISSOCK((home / "runner.sock").stat().st_mode)
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.parametrize("token", [None, "", "wrong-token", 12345], ids=["missing", "empty", "wrong", "number"])
def test_a_request_without_the_right_token_gets_an_auth_error_and_no_data(client, home, token):
    client.schedule("api.hello", name="private", every="1h", extra={"who": "secret-extra"})
    message = {"v": 1, "id": 7, "op": "jobs", "args": {}}
    if token is not None:
        message["token"] = token
    with _raw(home) as sock:
        reply = _ask(sock, message)
    assert reply["ok"] is False
    assert reply["error"]["type"] == "AuthError"
    assert "token" in reply["error"]["message"]
    assert "result" not in reply and "private" not in json.dumps(reply)


@pytest.mark.slow
def test_a_client_with_a_stale_token_is_refused(client, home):
    stale = nbsched.Client(client.settings, autostart=False)
    stale._open()
    stale._token = "stale"
    with pytest.raises(AuthError, match="Wrong or missing token"):
        stale.call("history")
    stale.close()


@pytest.mark.slow
def test_frames_over_the_size_limit_are_refused_and_the_runner_goes_on(client, home):
    token = (home / "token").read_text().strip()
    padding = "x" * (config.MAX_REQUEST_BYTES + 100)
    line = json.dumps({"v": 1, "id": 1, "token": token, "op": "ping", "args": {}, "pad": padding}).encode()
    with _raw(home) as sock:
        sock.sendall(line + b"\n")
        with sock.makefile("rb") as reader:
            reply = json.loads(reader.readline())
    assert reply["ok"] is False
    assert f"larger than {config.MAX_REQUEST_BYTES} bytes" in reply["error"]["message"]
    assert client.ping()["jobs"] == 0


@pytest.mark.slow
def test_a_stuck_client_cannot_block_other_clients(client, home):
    stuck = [_raw(home) for _ in range(20)]
    try:
        for sock in stuck[:10]:
            sock.sendall(b'{"v": 1, "id": 1, "op": "pi')  # half a line, never finished
        token = (home / "token").read_text().strip()
        for sock in stuck[10:]:  # asks for a lot and never reads the reply
            sock.sendall(json.dumps({"v": 1, "id": 1, "token": token, "op": "services", "args": {}}).encode() + b"\n")
        started = time.monotonic()
        others = [nbsched.connect() for _ in range(3)]
        for other in others:
            for _ in range(10):
                assert other.ping()["pid"]
            other.schedule("api.hello", name=f"job-{id(other)}", every="1h")
            assert len(other.history(limit=5)) <= 5
            other.close()
        assert time.monotonic() - started < 10
        assert len(client.jobs()) == 3
    finally:
        for sock in stuck:
            sock.close()


@pytest.mark.slow
def test_history_and_log_never_hold_the_token(client, home):
    token = (home / "token").read_text().strip()
    wrong = "not-the-token-" + "z" * 20
    with _raw(home) as sock:
        _ask(sock, {"v": 1, "id": 1, "token": wrong, "op": "jobs", "args": {}})
    run_id = client.invoke("api.hello", extra={"who": "me"})
    client.wait(run_id)
    client.schedule("api.hello", name="job", every="1h")
    wait_until(lambda: len(client.history(job="job")) == 1, what="the job's first run")
    history = client.history()
    text = history.to_json(date_format="iso")
    assert token not in text and wrong not in text
    assert token not in (home / "runner.log").read_text()
    assert wrong not in (home / "runner.log").read_text()
    for path in home.glob("nbsched.db*"):
        assert token.encode() not in path.read_bytes()
    assert client.run(run_id)["runner"] and token not in json.dumps(client.run(run_id), default=str)
