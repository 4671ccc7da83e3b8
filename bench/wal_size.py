"""The store's write-ahead log under sustained load: N interval jobs every 1 s, the -wal file's size sampled.

    python bench/wal_size.py [--jobs 3000] [--duration 240] [--every 5] [--limit-mb 2500]

Every ``--every`` seconds: the size of ``nbsched.db-wal``, the frames in the log and how many of them a
checkpoint has copied into the file (from the ``-shm`` file's header), and which processes hold a read lock
on the log (from ``/proc/locks``; ``READ0`` reads the file alone, ``READ1``..``READ4`` read frames of the
log and keep a checkpoint from resetting it). Stops early, and stops the runner, once the log passes
``--limit-mb``: on a shared disk the log must not fill it.
"""

from __future__ import annotations

import argparse
import math
import os
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

import _common

#: Byte offsets of SQLite's WAL-index locks in the -shm file (sqlite3 wal.c: WAL_WRITE_LOCK ... WAL_READ_LOCK(4)).
_LOCK_NAMES = {120: "WRITE", 121: "CKPT", 122: "RECOVER", 123: "READ0", 124: "READ1", 125: "READ2", 126: "READ3"}
_LOCK_NAMES[127] = "READ4"


def shm_state(shm: Path) -> tuple[int, int, list[int]]:
    """(frames in the log, frames copied into the file, read marks) from the -shm file's header."""
    try:
        data = shm.read_bytes()[:136]
    except FileNotFoundError:
        return 0, 0, []
    if len(data) < 136:
        return 0, 0, []
    (mx_frame,) = struct.unpack_from("=I", data, 16)
    backfill, *marks = struct.unpack_from("=6I", data, 96)
    return mx_frame, backfill, marks


def lock_holders(shm: Path) -> list[str]:
    """``pid:LOCK`` for each POSIX lock some process holds on the -shm file's lock bytes."""
    try:
        inode = shm.stat().st_ino
    except FileNotFoundError:
        return []
    holders = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields:  # a waiter
            continue
        if len(fields) < 8 or fields[1] != "POSIX" or not fields[5].endswith(f":{inode}"):
            continue
        pid, start, end = int(fields[4]), int(fields[6]), int(fields[7])
        for offset in range(start, end + 1):
            if offset in _LOCK_NAMES:
                holders.append(f"{pid}:{_LOCK_NAMES[offset]}")
    return sorted(holders)


def watch(jobs: int, duration: int, every: float, limit_mb: float) -> list[tuple[float, float]]:
    """Sizes of the log in MB over time, as ``(seconds since firing began, MB)``."""
    sizes = []
    with _common.Runner() as runner:
        runner.deploy_noop()
        wal, shm = runner.home / "nbsched.db-wal", runner.home / "nbsched.db-shm"
        start = math.ceil(time.time() + 3 + jobs / 1000)
        start_iso = datetime.fromtimestamp(start, UTC).isoformat()
        for i in range(jobs):
            runner.client.schedule(_common.NOOP_SERVICE, name=f"j{i:05d}", every=1, start=start_iso)
        _common.wait_until(start)
        print(f"runner {runner.pid}, {jobs} jobs x 1 s from {start_iso}")
        while (elapsed := time.time() - start) < duration:
            size = os.path.getsize(wal) / 1e6 if wal.exists() else 0.0
            frames, copied, marks = shm_state(shm)
            sizes.append((elapsed, size))
            print(
                f"{elapsed:6.0f} s  wal {size:9.1f} MB  frames {frames:8d} copied {copied:8d}  marks {marks}  "
                f"locks {' '.join(lock_holders(shm))}",
                flush=True,
            )
            if size > limit_mb:
                print(f"the log passed {limit_mb:g} MB: stopping")
                break
            time.sleep(every)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--duration", type=int, default=240, help="seconds of firing watched")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--limit-mb", type=float, default=2500.0, help="stop once the log is larger than this")
    args = parser.parse_args()
    sizes = watch(args.jobs, args.duration, args.every, args.limit_mb)
    if sizes:
        print(f"largest {max(size for _, size in sizes):.1f} MB, last {sizes[-1][1]:.1f} MB")


if __name__ == "__main__":
    main()
