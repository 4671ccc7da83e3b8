"""Finished runs of a SQLite store kept as Arrow files beside it: a long history is read without SQLite.

A run that has finished never changes again: history only grows, new runs get higher ids, and a
result goes to a run still marked running. So the runs up to the one before the oldest running
run can be written once, as Arrow IPC files that later reads memory-map:
``<store file>.runs-cache/<store id>.<after>-<upto>.arrow`` holds the runs with
``after < run_id <= upto``, newest first, typed as ``base.typed_runs`` types them. A long read
maps the files, filters them in Arrow, and asks SQLite only for the runs after the last file.

The files are named by the store's id and its ``runs_generation``, which triggers in the store
count up whenever a run is deleted or a finished run changed (by hand, say); files of another
name are deleted and the runs read again. Deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from datetime import datetime
from pathlib import Path

#: A new file is written once at least this many finished runs are not in one yet (fewer are read from SQLite).
SEGMENT_ROWS = 50_000
#: More files than this are merged into one.
MAX_SEGMENTS = 16
#: A file being written (hidden, beside its final name) older than this many seconds was left by a dead writer.
PARTIAL_FILE_AGE = 3600


class RunsCache:
    """The cache files of one store file; one object per file in a process, shared by its threads."""

    _by_path: dict[str, RunsCache] = {}
    _guard = threading.Lock()

    @classmethod
    def of(cls, store_path: str) -> RunsCache:
        with cls._guard:
            cache = cls._by_path.get(store_path)
            if cache is None:
                cache = cls._by_path[store_path] = cls(Path(f"{store_path}.runs-cache"))
            return cache

    def __init__(self, folder: Path):
        self.folder = folder
        self.lock = threading.Lock()
        self.store_id: str | None = None
        self.segments: list[tuple[int, int, object]] = []  # (after, upto, table), oldest first

    @property
    def upto(self) -> int:
        return self.segments[-1][1] if self.segments else 0

    def cached_tables(self, store, background: bool = False) -> list:
        """Bring the files up to date with ``store`` (a ``SQLiteStore``); their tables, newest first.

        The runs after ``self.upto`` are not in them; the caller reads those (holding ``self.lock``).
        """
        store_id, finished_upto = store.cache_bounds()
        if store_id != self.store_id:  # first use, or runs were deleted or changed: files of other ids go
            self.store_id, self.segments = store_id, []
            self._load()
        if self.segments and not self._matches(store, finished_upto):
            for after, upto, _ in self.segments:  # the store was put back from a copy, say
                _unlink(self._file(after, upto))
            self.segments = []
        if finished_upto - self.upto >= SEGMENT_ROWS:  # run ids have few gaps: the span tells the count
            self._add(store, self.upto, finished_upto, background)
        if len(self.segments) > MAX_SEGMENTS:
            self._merge()
        return [table for _, _, table in reversed(self.segments)]

    def _matches(self, store, finished_upto: int) -> bool:
        """Whether the store still holds the runs of the files: the newest run of each file, by id and
        correlation id (random per runner), and no file beyond the store's finished runs."""
        if finished_upto < self.upto:
            return False
        tables = [table for _, _, table in self.segments if table.num_rows]
        newest = {table["run_id"][0].as_py(): table["cid"][0].as_py() for table in tables}
        return store.run_cids(list(newest)) == newest

    def _file(self, after: int, upto: int) -> Path:
        return self.folder / f"{self.store_id}.{after}-{upto}.arrow"

    def _load(self) -> None:
        """Map the files of this store that chain from run 0; delete the rest."""
        found: dict[int, tuple[int, Path]] = {}
        for path in self.folder.glob(".*.arrow.*") if self.folder.is_dir() else []:
            with contextlib.suppress(FileNotFoundError):  # a file half written by a process that died
                if time.time() - path.stat().st_mtime > PARTIAL_FILE_AGE:
                    _unlink(path)
        for path in self.folder.glob("*.arrow") if self.folder.is_dir() else []:
            store_id, _, bounds = path.stem.partition(".")
            after, _, upto = bounds.partition("-")
            if store_id == self.store_id and after.isdigit() and upto.isdigit() and int(upto) > int(after):
                found[int(after)] = (int(upto), path)
            else:
                _unlink(path)
        if not found:
            return  # pyarrow (~40 MB) is imported only once there are runs to map
        import pyarrow as pa

        after = 0
        while after in found:
            upto, path = found.pop(after)
            try:
                table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
            except (OSError, pa.ArrowInvalid):
                _unlink(path)
                break
            if table.schema != _schema():
                _unlink(path)
                break
            self.segments.append((after, upto, table))
            after = upto
        for _, path in found.values():
            _unlink(path)

    def _add(self, store, after: int, upto: int, background: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(after, upto)
        store.write_runs_file(after, upto, path, background)
        self._map(after, upto, path)

    def _map(self, after: int, upto: int, path: Path) -> None:
        import pyarrow as pa

        self.segments.append((after, upto, pa.ipc.open_file(pa.memory_map(str(path))).read_all()))

    def _merge(self) -> None:
        """One file for all the runs of the files so far (Arrow only; SQLite is not read again)."""
        import pyarrow as pa

        old = self.segments
        after, upto = old[0][0], old[-1][1]
        merged = pa.concat_tables([table for _, _, table in reversed(old)])
        path = self._file(after, upto)
        write_file(merged, path)
        self.segments = []
        self._map(after, upto, path)
        for segment_after, segment_upto, _ in old:
            if (segment_after, segment_upto) != (after, upto):
                _unlink(self._file(segment_after, segment_upto))


def write_file(table, path: Path) -> None:
    """``table`` as an Arrow IPC file at ``path``, whole or not at all (written aside, then renamed)."""
    import pyarrow as pa

    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(partial, path)


def filtered(table, job=None, service=None, status=None, since: datetime | None = None):
    """The rows of a table of finished runs that a runs query with these filters selects."""
    import pyarrow as pa
    import pyarrow.compute as pc

    conditions = [
        pc.equal(table[name], value)
        for name, value in (("job", job), ("service", service), ("status", status))
        if value is not None
    ]
    if since is not None:
        when = pc.coalesce(table["started_at"], table["scheduled_at"])
        conditions.append(pc.greater_equal(when, pa.scalar(since, pa.timestamp("us", tz="UTC"))))
    if not conditions:
        return table
    mask = conditions[0]
    for condition in conditions[1:]:
        mask = pc.and_kleene(mask, condition)
    return table.filter(mask)


def _schema():
    from .base import typed_runs

    return typed_runs(_empty_runs(), encode=False).schema


def _empty_runs():
    import pyarrow as pa

    from .base import RUN_FIELDS

    return pa.table({name: pa.array([], pa.null()) for name in RUN_FIELDS})


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
