"""Shared helpers for the benchmarks: a runner in a fresh home, a no-op service, process figures.

Not a benchmark itself. Every benchmark points ``NBSCHED_HOME`` at a fresh temp dir, starts
its own runner there, and stops that runner (and only that one) when it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

NOOP_SERVICE = "bench.noop"
#: The no-op service: its first statement records time.time() into the run's output.
NOOP_SOURCE = """
import time

from nbsched import Service


class Noop(Service):
    name = "bench.noop"

    def handle(self):
        self.response.payload = repr(time.time())
"""

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def fresh_home() -> Path:
    """A new, short temp dir as ``NBSCHED_HOME`` (Unix socket paths must stay short)."""
    home = Path(tempfile.mkdtemp(prefix="nbb-"))
    os.environ["NBSCHED_HOME"] = str(home)
    os.environ.pop("NBSCHED_STORE", None)
    return home


class Runner:
    """A runner started in a fresh home for one benchmark; use as a context manager."""

    def __init__(self, home: Path | None = None, store: str | None = None):
        self.home = home or fresh_home()
        self.store = store  # NBSCHED_STORE (None: the home's SQLite file)
        self.client = None
        self.pid: int | None = None

    def __enter__(self) -> Runner:
        import nbsched

        os.environ["NBSCHED_HOME"] = str(self.home)
        if self.store:
            os.environ["NBSCHED_STORE"] = self.store
        else:
            os.environ.pop("NBSCHED_STORE", None)
        self.client = nbsched.connect()
        self.pid = int((self.home / "runner.pid").read_text().strip())
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def deploy_noop(self) -> None:
        self.client.deploy(NOOP_SOURCE)

    def stop(self, timeout: float = 30.0) -> None:
        """``shutdown`` over the socket, wait for the pid to exit, SIGKILL as a last resort; the home stays."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        with contextlib.suppress(Exception):
            self.client.call("shutdown", _timeout=10)
        with contextlib.suppress(Exception):
            self.client.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            for child in children(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            print(f"warning: runner {pid} did not stop within {timeout:g}s; killed")


def alive(pid: int) -> bool:
    """Whether process ``pid`` lives (not a zombie)."""
    return _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Live direct children of ``pid`` (the runner's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MB (VmRSS from /proc/<pid>/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of one process in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class ProcessFigures:
    """CPU and RSS of a runner and its worker children."""

    def __init__(self, pid: int):
        self.pid = pid

    def cpu(self) -> tuple[float, float]:
        """(runner CPU s, workers CPU s) so far."""
        return cpu_seconds(self.pid), sum(cpu_seconds(child) for child in children(self.pid))

    def rss(self) -> tuple[float, float]:
        """(runner RSS MB, workers RSS MB) now."""
        return rss_mb(self.pid), sum(rss_mb(child) for child in children(self.pid))


def machine_speed() -> str:
    """``python -m timeit "sum(range(1000))"``'s figure on this machine, as it prints it ("10.7 usec per loop")."""
    out = subprocess.run(
        [sys.executable, "-m", "timeit", "sum(range(1000))"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return out.split(":", 1)[-1].strip()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def spread(values: Sequence[float], unit: str = "ms", digits: int = 1) -> str:
    return (
        f"p50 {percentile(values, 50):.{digits}f} / p99 {percentile(values, 99):.{digits}f} / "
        f"max {max(values) if values else float('nan'):.{digits}f} {unit}"
    )


def epoch(iso_text: str | None) -> float | None:
    return None if iso_text is None else datetime.fromisoformat(iso_text).timestamp()


def wait_until(moment: float) -> None:
    """Sleep until the wall-clock time ``moment`` (epoch seconds)."""
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))


def history_records(client, **filters) -> Iterator[dict]:
    """History rows as dicts (no pandas), straight from the columnar reply."""
    reply = client.history_rows(**filters)
    columns = reply["columns"]
    for row in reply["rows"]:
        yield dict(zip(columns, row, strict=True))


def wait_all_finished(client, run_ids: set[int] | None = None, timeout: float = 60.0, **filters) -> float:
    """Poll history until no run (of ``run_ids``, if given) is ``running``; return when that was seen."""
    deadline = time.monotonic() + timeout
    while True:
        running = [
            r["run_id"]
            for r in history_records(client, status="running", **filters)
            if run_ids is None or r["run_id"] in run_ids
        ]
        if not running or time.monotonic() > deadline:
            return time.time()
        time.sleep(0.1)
