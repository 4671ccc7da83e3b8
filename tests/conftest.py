"""Shared fixtures: temp homes, real runners, the Redis at 127.0.0.1:6379, PostgreSQL, waiting with deadlines."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import nbsched
from nbsched import config

REPO = Path(__file__).resolve().parents[1]
HELLO_SERVICE = REPO / "services" / "hello.py"


def wait_until(condition: Callable[[], object], timeout: float = 15.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def home(monkeypatch) -> Iterator[Path]:
    """A fresh NBSCHED_HOME for one test (short path: Unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="nbs-"))
    monkeypatch.setenv("NBSCHED_HOME", str(path))
    monkeypatch.delenv("NBSCHED_STORE", raising=False)
    monkeypatch.delenv("NBSCHED_TIMEZONE", raising=False)
    yield path
    stop_runner(path)
    shutil.rmtree(path, ignore_errors=True)


def stop_runner(path: Path, timeout: float = 20.0) -> None:
    """Stop the runner of ``path`` if one runs (SIGTERM, then SIGKILL), so no test leaks processes."""
    pid_file = path / "runner.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def client(home) -> nbsched.Client:
    """A client of a real, detached runner in a temp home, with services/hello.py deployed."""
    c = nbsched.connect()
    c.deploy(str(HELLO_SERVICE))
    yield c
    c.close()


def run_cli(
    *args: str, home: Path | None = None, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess:
    """Run the real ``nbsched`` command line."""
    env = dict(os.environ)
    if home is not None:
        env["NBSCHED_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-m", "nbsched", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"nbsched {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A URL for db 13 (or ``NBSCHED_TEST_REDIS_DB``, so two checkouts can test at once) of the Redis at
    127.0.0.1:6379, flushed before and after; skips without Redis (fails instead when NBSCHED_REQUIRE_REDIS=1, as
    in CI)."""
    import redis

    url = f"redis://127.0.0.1:6379/{os.environ.get('NBSCHED_TEST_REDIS_DB', '13')}"
    conn = redis.Redis.from_url(url)
    try:
        conn.ping()
    except redis.ConnectionError:
        if os.environ.get("NBSCHED_REQUIRE_REDIS") == "1":
            pytest.fail("NBSCHED_REQUIRE_REDIS=1 but no Redis answers at 127.0.0.1:6379")
        pytest.skip("no Redis at 127.0.0.1:6379 (start one: redis-server --port 6379)")
    conn.flushdb()
    yield url
    conn.flushdb()
    conn.close()


@pytest.fixture(scope="session")
def shell():
    """An IPython shell with nbsched's magics loaded (one per test session)."""
    from IPython.testing import globalipapp

    globalipapp.start_ipython()  # once per test session; later calls return None
    ip = globalipapp.get_ipython()
    ip.extension_manager.load_extension("nbsched")
    return ip


@pytest.fixture
def ip(shell, home):
    """The shell with nbsched loaded, talking to the runner of this test's temp home."""
    yield shell
    shell.magics_manager.registry["NbschedMagics"].session.close()


@pytest.fixture
def settings(home) -> config.Settings:
    return config.settings()


# Real local HTTP and SMTP servers (tests/servers.py): http_server, smtp_server, smtp_server_auth.
from servers import http_server, smtp_server, smtp_server_auth  # noqa: E402, F401, I001

# A PostgreSQL database per test session (tests/pg.py): pg_database, pg_url, pg_admin.
from pg import pg_admin, pg_database, pg_url  # noqa: E402, F401


def finished_run(i: int, start: datetime, **fields) -> dict:
    """The record of finished run number ``i`` of three jobs (scheduled ``i`` seconds after ``start``, 2 ms long),
    for a store's ``add_runs``; ``fields`` add to it or replace its values."""
    scheduled = start + timedelta(seconds=i)
    run = {
        "cid": f"{i:024x}",
        "job": f"j{i % 3}",
        "service": "s",
        "trigger": "schedule",
        "attempt": 1,
        "status": "ok",
        "scheduled_at": scheduled,
        "started_at": scheduled,
        "finished_at": scheduled + timedelta(milliseconds=2),
        "runner": "test:1",
    }
    return {**run, **fields}
