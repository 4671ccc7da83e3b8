"""History: 1,000,000 run rows -> DataFrame through ``client.history()``; seconds and peak memory.

    python bench/history.py [--rows 1000000]

Setup (not timed): a child process creates the store schema and inserts the rows straight
into the SQLite file with sqlite3 before the runner starts. Then the first ``client.history()``
call is timed end to end (the runner's child process reads the rows into Arrow with ADBC's
SQLite driver, and the runner sends its Arrow IPC stream as it is; the client makes the
DataFrame; the store's Arrow cache files are written after the answer, and the bench waits for
them), then three more calls, served from the cache files, split into their RPC and DataFrame
parts, and the JSON rows of ``history_rows`` (one
reply holding them all), for comparison. Between those, ``nbsched history --limit N --format json``
and ``--format csv`` run as commands with their output to /dev/null: the runner streams the rows in
chunks as it reads them, and the command writes each as it comes (its time, the runner's peak RSS
growth from a peak reset just before, the command's peak RSS, and its growth over ``--limit 1``).
Peak memory is the rise
of this process's VmHWM and the runner's VmHWM. Indicative figures: other work on this
machine shares its cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import _common

from nbsched.store.history import cache as runs_cache


def seed(db_path: str, rows: int, start: int = 0) -> None:
    """Create the schema and insert ``rows`` finished runs of 100 jobs (run in a child process);
    with ``start``, add runs ``start`` .. ``start + rows - 1`` to a store a runner has open."""
    from datetime import UTC, datetime, timedelta

    from nbsched.store.sqlite import _RUN_COLUMNS, SQLiteStore

    store = SQLiteStore(db_path)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    columns = ", ".join(f'"{name}"' for name in _RUN_COLUMNS)
    insert = f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})"

    def row(i: int) -> tuple:
        job = i % 100
        scheduled = base + timedelta(seconds=i // 100)
        started = scheduled + timedelta(milliseconds=3)
        values = {
            "job_uid": f"uid{job:03d}",
            "cid": f"{i:024x}",
            "job": f"job{job:03d}",
            "service": _common.NOOP_SERVICE,
            "service_version": "0123456789ab",
            "trigger": "schedule",
            "attempt": 1,
            "status": "ok",
            "scheduled_at": scheduled.isoformat(),
            "started_at": started.isoformat(),
            "finished_at": (started + timedelta(milliseconds=1)).isoformat(),
            "delay_ms": 3.0,
            "duration_ms": 1.0,
            "error": None,
            "traceback": None,
            "output": repr(started.timestamp()),
            "logs": "",
            "runner": "bench:1",
        }
        return tuple(values[name] for name in _RUN_COLUMNS)

    if start:
        with store._tx():
            store.db.executemany(insert, (row(i) for i in range(start, start + rows)))
        store.close()
        return
    # Setup speed only: no fsync, and indexes built once after the rows (the runner's store
    # opening would recreate them too, since its schema script is idempotent).
    indexes = store.db.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='runs'").fetchall()
    store.db.execute("PRAGMA synchronous=OFF")
    with store._tx():
        for name, _ in indexes:
            store.db.execute(f'DROP INDEX "{name}"')
        for chunk in range(0, rows, 100_000):
            store.db.executemany(insert, (row(i) for i in range(chunk, min(rows, chunk + 100_000))))
        for _, sql in indexes:
            store.db.execute(sql)
    store.close()


def wait_for_cache(home, answered: float, timeout: float = 300.0) -> float:
    """Seconds from the first answer until the runs cache files are written (sums beside each: the runner
    writes them after answering a first long read from SQLite)."""
    folder = home / "nbsched.db.runs-cache"
    while time.perf_counter() - answered < timeout:
        files = list(folder.glob("*.arrow"))
        if files and all(path.with_name(f"{path.name}.sum").exists() for path in files):
            break
        time.sleep(0.1)
    return time.perf_counter() - answered


def reset_peak(pid: int) -> float:
    """Start a new peak (VmHWM) of process ``pid`` (Linux: clear_refs); its RSS now, MB."""
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")
    return _common.rss_mb(pid)


def cli_history(runner_pid: int, limit: int, fmt: str) -> tuple[float, float, float]:
    """``nbsched history --limit N --format F > /dev/null``: seconds, the runner's peak RSS growth and the
    command's peak RSS (MB; measured by GNU time: a child of this process would report this one's peak too)."""
    before = reset_peak(runner_pid)
    command = [sys.executable, "-m", "nbsched", "history", "--limit", str(limit), "--format", fmt]
    with tempfile.NamedTemporaryFile("r") as peak:
        began = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, *command], stdout=subprocess.DEVNULL, check=True)
        seconds = time.perf_counter() - began
        command_mb = int(peak.read().split()[-1]) / 1024
    return seconds, _common.peak_rss_mb(runner_pid) - before, command_mb


def streamed(runner_pid: int, rows: int) -> dict[str, tuple[float, float, float]]:
    """The CLI's streamed history of ``rows`` runs as JSON and CSV, and of 1 run (the command's own size)."""
    return {
        name: cli_history(runner_pid, limit, "json" if name == "one" else name)
        for name, limit in (("one", 1), ("json", rows), ("csv", rows))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.seed:
        seed(options.seed, options.rows, options.start)
        return
    import pandas  # noqa: F401 - imported before measuring memory, as a notebook has it already
    import pyarrow as pa

    from nbsched.client.frames import RUN_TIME_COLUMNS, from_arrow

    home = _common.fresh_home()
    began = time.perf_counter()

    def seed_in_child(rows: int, start: int = 0) -> None:
        command = [
            sys.executable,
            __file__,
            "--rows",
            str(rows),
            "--start",
            str(start),
            "--seed",
            str(home / "nbsched.db"),
        ]
        subprocess.run(command, check=True, timeout=300)

    seed_in_child(options.rows)
    seed_s = time.perf_counter() - began
    me = _common.os.getpid()
    with _common.Runner(home) as runner:
        client = runner.client
        client.timeout = 300
        rss_before = _common.rss_mb(me)
        began = time.perf_counter()
        frame = client.history()
        first_s = time.perf_counter() - began
        peak_client = _common.peak_rss_mb(me) - rss_before
        shape = frame.shape
        del frame
        written_s = wait_for_cache(home, began + first_s)
        cache_mb = sum(path.stat().st_size for path in home.glob("nbsched.db.runs-cache/*.arrow")) / 1e6
        totals, rpcs, frames = [], [], []
        for _ in range(3):
            began = time.perf_counter()
            data = client.call("history", format="arrow")
            rpc_s = time.perf_counter() - began
            from_arrow(pa.ipc.open_stream(data).read_all(), client.tz, RUN_TIME_COLUMNS)
            totals.append(time.perf_counter() - began)
            rpcs.append(rpc_s)
            frames.append(totals[-1] - rpc_s)
        mb = len(data) / 1e6
        del data
        peak_runner_arrow = _common.peak_rss_mb(runner.pid)
        cli = streamed(runner.pid, options.rows)  # each from a fresh peak (clear_refs) of the runner
        # As between two of the runner's cache refreshes: runs finished since the last one are not
        # in a cache file yet, and come from SQLite.
        newer = runs_cache.SEGMENT_ROWS * 4 // 5
        seed_in_child(newer, start=options.rows)
        began = time.perf_counter()
        newer_rows = len(client.history())
        newer_s = time.perf_counter() - began
        began = time.perf_counter()
        rows = client.history_rows()
        json_s = time.perf_counter() - began
        del rows
        peak_runner = max(peak_runner_arrow, _common.peak_rss_mb(runner.pid))
        runner.stop()  # the home stays: the runner started again maps the cache files it finds there
        runner.__enter__()
        runner.client.timeout = 300
        began = time.perf_counter()
        restarted_rows = len(runner.client.history())
        restart_s = time.perf_counter() - began
    warm_s, rpc_s, frame_s = (_common.percentile(values, 50) for values in (totals, rpcs, frames))
    print(f"setup: {options.rows} rows inserted with sqlite3 in {seed_s:.1f} s")
    print(
        f"client.history(): {shape[0]} rows x {shape[1]} columns; first call {first_s:.2f} s (the runner's child "
        f"process reads SQLite with ADBC; {cache_mb:.0f} MB of Arrow cache files written {written_s:.1f} s after "
        f"the answer); next calls, "
        f"from the cache files, p50 of 3: {warm_s:.2f} s = RPC {rpc_s:.2f} s ({mb:.0f} MB over the socket) "
        f"+ DataFrame {frame_s:.2f} s; the same rows as JSON (history_rows, what the CLI reads) {json_s:.2f} s"
    )
    print(
        f"with {newer:,} newer runs not in a cache file yet (read from SQLite): {newer_rows:,} rows -> DataFrame "
        f"in {newer_s:.2f} s; the first call after a runner restart: {restarted_rows:,} rows in {restart_s:.2f} s"
    )
    print(
        f"peak memory: client +{peak_client:.0f} MB over {rss_before:.0f} MB; runner VmHWM "
        f"{peak_runner_arrow:.0f} MB after the Arrow calls (mapped cache files count), {peak_runner:.0f} MB after JSON"
    )
    base = cli["one"][2]
    print(
        "streamed, nbsched history --limit N --format F > /dev/null (the runner reads and sends 5000 rows at a time): "
        + "; ".join(
            f"{name} {cli[name][0]:.2f} s, runner peak +{cli[name][1]:.0f} MB, command peak {cli[name][2]:.0f} MB "
            f"(+{cli[name][2] - base:.0f} MB over --limit 1)"
            for name in ("json", "csv")
        )
    )
    print(
        f"history rows={shape[0]} to_dataframe first={first_s:.2f}s cached={warm_s:.2f}s "
        f"cached+{newer // 1000}k_newer={newer_s:.2f}s after_restart={restart_s:.2f}s "
        f"(rpc {rpc_s:.2f}s + pandas {frame_s:.2f}s) json={json_s:.2f}s "
        f"cli_json={cli['json'][0]:.2f}s(+{cli['json'][1]:.0f}MB runner,+{cli['json'][2] - base:.0f}MB cli) "
        f"cli_csv={cli['csv'][0]:.2f}s(+{cli['csv'][1]:.0f}MB runner,+{cli['csv'][2] - base:.0f}MB cli) "
        f"peak_client=+{peak_client:.0f}MB peak_runner={peak_runner_arrow:.0f}MB({peak_runner:.0f}MB with JSON)"
    )


if __name__ == "__main__":
    main()
