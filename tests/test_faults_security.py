"""Faults never lose a result or leak a secret (issue 14, rows 6, 7, 8, 12 and 13).

Cache files are checked before use; a runner never serves without a token; the home and the store
are private; secrets are masked as whole values; and bad input (tiny intervals, huge jitters and
notes, unknown statuses, names with terminal escapes) is refused with one line that says what to do.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import warnings
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from conftest import HELLO_SERVICE, finished_run, run_cli, wait_until

import nbsched
from nbsched import connections
from nbsched.client.api import BackfillCapped
from nbsched.errors import DeployError, InvalidInput, InvalidJob, RunnerError
from nbsched.store import RunQuery
from nbsched.store.history import History
from nbsched.store.history import cache as runs_cache
from nbsched.store.history import sqlite as sqlite_history
from nbsched.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _runs(count: int, start: int = 0) -> list[dict]:
    """Finished runs whose outputs name their number: ``out-0000042``."""
    extra = {"service": "api.hello", "delay_ms": 0.0, "logs": ""}
    return [finished_run(i, NOW, output=f"out-{i:07d}", **extra) for i in range(start, start + count)]


def _overwrite(path, old: bytes, new: bytes) -> None:
    """Rewrite bytes of a file in place, as another program writing into it would."""
    offset = path.read_bytes().index(old)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(new)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _ask(home, message: dict) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(home / "runner.sock"))
        sock.sendall(json.dumps(message).encode() + b"\n")
        with sock.makefile("rb") as reader:
            return json.loads(reader.readline())


def _accepts(path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _deploy(client, name: str, body: str) -> None:
    source = f"from nbsched import Service\n\nclass S(Service):\n    name = {name!r}\n\n    def handle(self):\n"
    client.deploy(source + textwrap.indent(textwrap.dedent(body), " " * 8))


# -- row 6: a runs-cache file that changes behind the runner ------------------------------------------
def test_a_cache_file_overwritten_in_place_is_not_served_and_is_written_again(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_history, "BULK_ROWS", 100)
    monkeypatch.setattr(runs_cache, "SEGMENT_ROWS", 150)
    store = SQLiteStore(tmp_path / "nbsched.db")
    try:
        store.add_runs(_runs(300))
        query = RunQuery(as_of=NOW + timedelta(days=1))
        expected = pa.ipc.open_stream(io.BytesIO(bytes(History(store).arrow(query)))).read_all()
        with store.history() as history:
            assert pa.ipc.open_stream(io.BytesIO(bytes(history.arrow(query)))).read_all().equals(expected)
        runs_cache.RunsCache.of(store.path).settle(timeout=60)  # the files are written after the first answer
        (path,) = runs_cache.RunsCache.of(store.path).folder.glob("*.arrow")

        _overwrite(path, b"out-0000042", b"BAD-0000042")
        with store.history() as history:
            served = pa.ipc.open_stream(io.BytesIO(bytes(history.arrow(query)))).read_all()

        assert served.to_pylist() == expected.to_pylist()
        (path,) = runs_cache.RunsCache.of(store.path).folder.glob("*.arrow")  # written again, named anew
        assert b"BAD-0000042" not in path.read_bytes() and b"out-0000042" in path.read_bytes()
    finally:
        store.close()


@pytest.mark.slow
def test_a_cache_file_truncated_or_overwritten_under_a_running_runner_is_rebuilt_not_served(home):
    seeded = SQLiteStore(home / "nbsched.db")
    seeded.add_runs(_runs(runs_cache.SEGMENT_ROWS + 10_000))  # enough for one cache file
    seeded.close()
    client = nbsched.connect()
    client.timeout = 300
    pid = client.ping()["pid"]
    rows = client.history()
    assert len(rows) == runs_cache.SEGMENT_ROWS + 10_000
    folder = home / "nbsched.db.runs-cache"  # the files are written after the first answer, with their sums
    (path,) = wait_until(lambda: [p for p in folder.glob("*.arrow") if p.with_name(p.name + ".sum").exists()], 120)

    _overwrite(path, b"out-0012345", b"BAD-0012345")
    outputs = set(client.history()["output"])
    assert "BAD-0012345" not in outputs and "out-0012345" in outputs

    (path,) = folder.glob("*.arrow")  # written again, named anew
    os.truncate(path, path.stat().st_size // 2)  # a mapped file cut short: SIGBUS at the next read
    rows = client.history()
    assert len(rows) == runs_cache.SEGMENT_ROWS + 10_000 and "out-0012345" in set(rows["output"])
    assert client.ping()["pid"] == pid
    client.close()


# -- row 7: the token file ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("left", [b"", b"\n", b"abc"], ids=["empty", "blank", "cut-short"])
def test_a_token_file_left_without_a_token_is_replaced_and_requests_without_it_are_refused(home, left):
    (home / "token").write_bytes(left)  # what a disk that filled up on the first start leaves
    (home / "token").chmod(0o600)
    client = nbsched.connect()
    token = (home / "token").read_text().strip()
    assert len(token) >= 32 and _mode(home / "token") == 0o600
    for sent in ({}, {"token": ""}, {"token": left.decode().strip()}):
        reply = _ask(home, {"v": 1, "id": 1, "op": "ping", "args": {}, **sent})
        assert reply["ok"] is False and reply["error"]["type"] == "AuthError", sent
    assert client.ping()["pid"]
    client.close()


@pytest.mark.slow
def test_a_token_file_that_cannot_be_read_stops_the_start_with_one_line(home):
    (home / "token").mkdir()
    line = _one_line_error(run_cli("runner", "start", home=home))
    assert f"Cannot read the token file {home / 'token'}" in line and "remove it" in line
    with pytest.raises(RunnerError, match="Cannot read the token file"):
        nbsched.connect()


@pytest.mark.slow
def test_a_disk_that_fills_while_the_token_is_written_leaves_no_partial_token(home):
    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20, 20))  # the pid fits, a token does not

    env = {**os.environ, "NBSCHED_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "nbsched.runner", "--detached"],
        env=env,
        preexec_fn=small_disk,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Cannot write the token file" in done.stderr
    assert not (home / "token").exists()
    client = nbsched.connect()  # the next start makes a whole token
    assert len((home / "token").read_text().strip()) >= 32
    reply = _ask(home, {"v": 1, "id": 1, "op": "ping", "args": {}})
    assert reply["error"]["type"] == "AuthError"
    client.close()


# -- row 8: a private home and store --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_a_home_other_users_can_write_to_is_refused_with_one_line(home, mode):
    home.chmod(mode)
    line = _one_line_error(run_cli("runner", "start", home=home))
    assert f"NBSCHED_HOME {home} can be written by other users" in line and f"chmod 700 {home}" in line
    with pytest.raises(RunnerError, match="can be written by other users"):
        nbsched.connect()
    assert not (home / "runner.pid").exists() and not (home / "nbsched.db").exists()
    assert _mode(home) == mode  # left as it was: the user decides


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_home_owned_by_another_user_is_refused_with_one_line(home):
    os.chown(home, 65534, 65534)
    line = _one_line_error(run_cli("runner", "start", home=home))
    assert f"NBSCHED_HOME {home} belongs to" in line and "not to you" in line
    assert not (home / "nbsched.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("earlier", [False, True], ids=["new-store", "store-made-0644-earlier"])
def test_the_store_and_its_wal_and_shm_files_are_private(home, earlier):
    old_umask = os.umask(0o022)
    try:
        if earlier:
            SQLiteStore(home / "nbsched.db").close()
            (home / "nbsched.db").chmod(0o644)
        client = nbsched.connect()  # under umask 022, files made without care are 0644
    finally:
        os.umask(old_umask)
    client.deploy(str(HELLO_SERVICE))  # a write: the WAL and shared-memory files are in use
    files = [home / name for name in ("nbsched.db", "nbsched.db-wal", "nbsched.db-shm")]
    wait_until(lambda: all(path.exists() for path in files), what="the store's WAL and shared-memory files")
    assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}
    client.close()


# -- row 12: secrets masked as whole values, everywhere ---------------------------------------------------
def test_masking_replaces_whole_values_not_parts_of_other_text():
    long_secret = "s3cr3t-T0ken-xyz"
    text = f"test passed; password=test; 'test'; testing; Bearer {long_secret}. {long_secret}zy"
    masked = connections.mask(text, [long_secret, "test"])
    assert masked == "test passed; password=***; '***'; testing; Bearer ***. s3cr3t-T0ken-xyzzy"


def test_secret_header_names_are_a_list_that_can_be_extended(monkeypatch):
    headers = {"X-Signature": "s1", "X-Tenant": "t1", "X-Design": "d1"}

    def shown() -> dict:
        spec = connections.definition("rest", "api", address="https://api.example.com", headers=headers)
        return connections.public_record({"name": "api", "kind": "rest", "definition": spec})["definition"]["headers"]

    assert shown() == {"X-Signature": "***", "X-Tenant": "t1", "X-Design": "d1"}
    monkeypatch.setenv("NBSCHED_SECRET_NAMES", "x-tenant, x-other")
    assert shown() == {"X-Signature": "***", "X-Tenant": "***", "X-Design": "d1"}


@pytest.mark.slow
def test_a_password_in_an_invalid_kvdb_url_is_not_echoed(client, home):
    url = "redis://user:hunter2-Secret@localhost:notaport/0"
    with pytest.raises(InvalidInput) as caught:
        client.connections.set_kvdb(url)
    assert "hunter2" not in str(caught.value) and "redis://user:***@localhost:notaport/0" in str(caught.value)
    token = (home / "token").read_text().strip()
    args = {"name": "kvdb", "kind": "kvdb", "definition": {"url": url}}
    reply = _ask(home, {"v": 1, "id": 1, "token": token, "op": "connection_save", "args": args})
    assert reply["ok"] is False and "hunter2" not in json.dumps(reply)
    result = run_cli("connection", "kvdb", url, home=home)
    assert "hunter2" not in _one_line_error(result) + result.stdout


@pytest.mark.slow
def test_query_keys_and_signature_headers_are_masked_in_listings_errors_and_history(client, home):
    with socket.socket() as spare:  # a port nothing listens on: the request fails, naming its URL
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    key, signature = "KEY-1234567890", "SIG-abcdef123456"
    address = f"http://127.0.0.1:{port}/data?api_key={key}&format=json"
    headers = {"X-Signature": signature, "Accept": "application/json"}
    saved = client.connections.add_rest("api", address, headers=headers, username="bob", password="test")
    listed = client.connections.list().to_dict("records")
    cli_listed = run_cli("connection", "list", "--format", "json", home=home, check=True).stdout
    for shown in (json.dumps(saved), json.dumps(listed, default=str), cli_listed):
        assert key not in shown and signature not in shown
        assert "api_key=***&format=json" in shown and "application/json" in shown

    _deploy(
        client,
        "leaky",
        """
        conn = self.out.plain_http["api"].conn
        print("calling", conn.address, dict(conn.session.headers))
        print("test passed")
        print(f"password={conn.session.auth[1]}")
        conn.get(self.cid)
        """,
    )
    record = client.wait(client.invoke("leaky"), timeout=60)
    assert record["status"] == "error" and "/data?api_key=***&format=json" in record["error"]
    stored = json.dumps({key: record[key] for key in ("error", "traceback", "logs", "output")})
    history = json.dumps(client.history_rows(service="leaky"))
    for shown in (stored, history):
        assert key not in shown and signature not in shown and "password=test" not in shown
    assert "test passed" in record["logs"] and "password=***" in record["logs"]
    checked = run_cli("connection", "test", "api", home=home)
    assert checked.returncode == 1 and key not in checked.stdout + checked.stderr


# -- row 13: limits --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_an_interval_under_a_second_is_refused_unless_allowed(client, home):
    with pytest.raises(InvalidJob, match=r"Invalid interval '0\.0001s'.*shortest is 1s.*allow_subsecond=True"):
        client.schedule("api.hello", name="fast", every="0.0001s")
    line = _one_line_error(run_cli("schedule", "api.hello", "--every", "0.0001s", "--name", "fast", home=home))
    assert "shortest is 1s" in line and "--allow-subsecond" in line
    assert client.jobs().empty
    job = client.schedule("api.hello", name="fast", every="0.5s", allow_subsecond=True, active=False)
    assert job.name == "fast"


@pytest.mark.slow
def test_a_jitter_longer_than_the_interval_is_refused(client, home):
    with pytest.raises(InvalidJob, match=r"Invalid jitter .100000d.*use at most the job.s interval \(1m\)"):
        client.schedule("api.hello", name="minutely", every="1m", jitter="100000d")
    with pytest.raises(InvalidJob, match=r"Invalid jitter '2m'.*between two of the job's fires \(1m\)"):
        client.schedule("api.hello", name="minutely", cron="* * * * *", jitter="2m")
    line = _one_line_error(run_cli("schedule", "api.hello", "--every", "1m", "--jitter", "2m", home=home))
    assert "Invalid jitter '2m'" in line
    assert client.jobs().empty
    assert client.schedule("api.hello", name="minutely", every="1m", jitter="30s", active=False).name == "minutely"


@pytest.mark.slow
def test_a_pause_note_is_short_printable_text(client, home):
    client.schedule("api.hello", name="noted", every="1h")
    with pytest.raises(InvalidInput, match=r"The note is too long \(900000 characters\); keep it to 500"):
        client.pause("noted", note="x" * 900_000)
    with pytest.raises(InvalidInput, match="use one line of plain text"):
        client.pause("noted", note="\x1b[2J\x1b[31mgone")
    line = _one_line_error(run_cli("pause", "noted", "--note", "y" * 2000, home=home))
    assert "The note is too long (2000 characters)" in line
    assert client.job("noted")["active"] is True
    assert client.pause("noted", note="until the API is back").note == "until the API is back"


@pytest.mark.slow
def test_history_refuses_an_unknown_status(client, home):
    with pytest.raises(InvalidInput, match=r"Unknown status 'exploded'\. Use one of running, ok, error"):
        client.history(status="exploded")
    with pytest.raises(InvalidInput, match="Did you mean 'error'"):
        client.history_rows(status="erorr")
    line = _one_line_error(run_cli("history", "--status", "exploded", home=home))
    assert "Unknown status 'exploded'" in line
    assert client.history(status="ok").empty


@pytest.mark.slow
def test_a_backfill_cut_short_by_the_cap_says_so(client):
    _deploy(client, "slowly", "import time\ntime.sleep(3)\n")
    client.schedule("slowly", name="every-second", every="1s", active=False)
    end = datetime.now(UTC) - timedelta(hours=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_ids = client.backfill("every-second", end - timedelta(hours=3), end)  # 10,801 fires
    client.delete("every-second")  # the queued fires need not run
    assert len(run_ids) == 10_000
    (warning,) = [w for w in caught if issubclass(w.category, BackfillCapped)]
    assert "only the first 10,000 fires" in str(warning.message) and "backfill the rest" in str(warning.message)


@pytest.mark.slow
def test_names_with_terminal_escapes_are_refused(client):
    with pytest.raises(DeployError, match=r"is not 1-200 printable characters"):
        _deploy(client, "\x1b[31mred\x1b[0m", "pass\n")
    assert not any("red" in name for name in client.services()["name"])
    for name in ("bad\x9bname", "bell\x07", "x" * 201):
        with pytest.raises(InvalidInput, match="use up to 200 printable characters"):
            client.connections.add_rest(name, "https://api.example.com")


@pytest.mark.slow
def test_runner_start_waits_for_a_stopping_runner_and_then_starts(home):
    client = nbsched.connect()
    started = home / "started"
    _deploy(client, "slow", "import pathlib, time\npathlib.Path(self.request.payload).touch()\ntime.sleep(60)\n")
    run_id = client.invoke("slow", extra=str(started))  # the runner, stopping, waits its grace (10 s) for it
    wait_until(started.exists, timeout=30, what="the slow run to start")
    old_pid = client.ping()["pid"]
    client.shutdown()  # it stops taking requests, then waits for the slow run
    wait_until(lambda: not _accepts(home / "runner.sock"), timeout=30, what="the runner to stop serving")
    client.close()
    os.kill(old_pid, 0)  # still there, stopping

    result = run_cli("runner", "start", home=home, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "runner started" in result.stdout
    fresh = nbsched.connect(autostart=False)
    assert fresh.ping()["pid"] != old_pid
    assert fresh.run(run_id)["status"] in ("ok", "interrupted")
    fresh.close()
