"""Finished runs of a SQLite store kept as Arrow files beside it: a long history is read without SQLite.

A run that has finished never changes again: history only grows, new runs get higher ids, and a
result goes to a run still marked running. So the runs up to the one before the oldest running
run can be written once, as Arrow IPC files: ``<store file>.runs-cache/<store id>.<after>-<upto>.arrow``
holds the runs with ``after < run_id <= upto``, newest first, typed as ``arrow.typed_runs`` types them.
A long read reads the files, filters them in Arrow, and asks SQLite only for the runs after the last file.

Beside each file, ``<file>.sum`` holds its size, CRC-32 and newest run, written after the file. A
file is read into memory, never mapped (a mapped file that someone truncates kills the process with
SIGBUS at the next read of it), and used only if it still has the size and checksum it was written
with; one that does not is written again from the store. So a file truncated, overwritten or removed
behind the runner's back costs a rewrite, never a wrong history or a signal.

The files are named by the store's id and its ``runs_generation``, which triggers in the store
count up whenever a run is deleted or a finished run changed (by hand, say); files of another
name are deleted and the runs read again. Deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .arrow import empty_runs_schema

#: The form of the files (their columns): part of their names, so that files of another form are written again.
#: 2: runs carry ``job_uid``.
CACHE_FORMAT = 2
#: A new file is written once at least this many finished runs are not in one yet (fewer are read from SQLite).
SEGMENT_ROWS = 50_000
#: More files than this are merged into one.
MAX_SEGMENTS = 16
#: A file being written (hidden, beside its final name) older than this many seconds was left by a dead writer.
PARTIAL_FILE_AGE = 3600


log = logging.getLogger(__name__)


class Source(Protocol):
    """What the cache reads a store through (``sqlite.SQLiteHistory``): the store's runs, by run id."""

    def cache_bounds(self) -> tuple[str, int]:
        """The name of the store's current files (its id, and how many times finished runs were deleted or
        changed), and the highest run id up to which every run has finished."""

    def run_cids(self, run_ids: list[int]) -> dict[int, str]:
        """The correlation ids of these runs, of those the store has."""

    def write_runs_file(self, after: int, upto: int, path: Path, background: bool = False) -> None:
        """The runs with ``after < run_id <= upto`` written as an Arrow IPC file at ``path``, and sealed (``seal``)
        (``background``: at a low priority, for a refresh no one waits for)."""

    def merge_runs_files(self, parts: list[dict], path: Path, background: bool = False) -> None:
        """The cache files ``parts`` (``path``, ``size``, ``crc32``; oldest first) as one file at ``path``, sealed."""


class ChangedFile(OSError):
    """A cache file is not the one written (truncated, overwritten or removed since)."""


@dataclass(frozen=True)
class Segment:
    """One cache file: the runs with ``after < run_id <= upto``, and what the file held when it was written."""

    after: int
    upto: int
    size: int
    crc32: int
    newest: tuple[int, str] | None  # run_id and cid of its first (newest) run; None for a file of no runs


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
        self.lock = threading.RLock()
        self.store_id: str | None = None
        self.segments: list[Segment] = []  # oldest first
        self.writer: threading.Thread | None = None  # a write_later in progress

    def behind(self, store: Source) -> bool:
        """Whether the files lack more finished runs than they hold (and at least a file's worth): a store never
        read long, or one that grew much since. A long read then answers from the store at once and has the
        files written after it (``write_later``): writing them first would keep the caller waiting for them."""
        with self.lock:
            store_id, finished_upto = store.cache_bounds()
            if store_id != self.store_id:
                self.store_id, self.segments = store_id, []
                self._load()
            missing = finished_upto - self.upto
            return missing >= SEGMENT_ROWS and missing > self.upto

    def write_later(self, source: Callable[[], AbstractContextManager[Source]]) -> None:
        """Bring the files up to date in a thread of their own, at a low priority, reading the store through
        ``source()`` (a reader opened there, closed when done). A read meanwhile waits for it (``lock``)."""

        def write() -> None:
            try:
                with self.lock, source() as store:
                    self.cached_tables(store, background=True)
            except Exception as exc:  # the next long read tries again; this one was answered already
                log.warning("the runs cache of %s is not usable (%s); it is written at the next try", self.folder, exc)

        with self.lock:
            if self.writer is None or not self.writer.is_alive():
                self.writer = threading.Thread(target=write, name="runs-cache", daemon=True)
                self.writer.start()

    def settle(self, timeout: float | None = None) -> None:
        """Wait for a ``write_later`` in progress to end."""
        writer = self.writer
        if writer is not None:
            writer.join(timeout)

    @property
    def upto(self) -> int:
        return self.segments[-1].upto if self.segments else 0

    def cached_tables(self, store: Source, background: bool = False) -> Iterator:
        """Bring the files up to date with ``store``; their tables, newest first.

        The files are opened now and each is read, and checked, as the caller comes to it (a limited
        read stops early); a merge meanwhile does not matter. The runs after ``self.upto`` are not in
        them; the caller reads those (holding ``self.lock``). With ``background`` (a refresh, which only
        wants the files written), no file is read and nothing is returned.
        """
        store_id, finished_upto = store.cache_bounds()
        if store_id != self.store_id:  # first use, or runs were deleted or changed: files of other ids go
            self.store_id, self.segments = store_id, []
            self._load()
        if self.segments and not self._matches(store, finished_upto):
            self._drop(self.segments)  # the store was put back from a copy, say
            self.segments = []
        for i, segment in enumerate(self.segments):
            if not self._intact(segment):  # removed or resized since it was written
                self.segments[i] = self._write(store, segment.after, segment.upto, background)
        if finished_upto - self.upto >= SEGMENT_ROWS:  # run ids have few gaps: the span tells the count
            self.segments.append(self._write(store, self.upto, finished_upto, background))
        if len(self.segments) > MAX_SEGMENTS:
            self._merge(store, background)
        if background:
            return iter(())
        opened: list[tuple[Segment, int]] = []
        try:
            for segment in reversed(self.segments):
                opened.append((segment, self._open(segment)))
        except ChangedFile:
            for _, fd in opened:
                os.close(fd)
            raise
        return self._tables(store, opened)

    def _tables(self, store, opened: list[tuple[Segment, int]]) -> Iterator:
        """Each file's table, newest first: ``opened`` pairs a file with its descriptor."""
        try:
            while opened:
                segment, fd = opened.pop(0)
                table = _read(fd, segment)
                yield table if table is not None else self._rewritten(store, segment)
        finally:
            for _, fd in opened:
                os.close(fd)

    def _rewritten(self, store, segment: Segment):
        """The table of a file that changed since it was written, written again from the store."""
        with self.lock:
            log.warning("runs cache file %s changed since it was written; writing it again", self._path(segment))
            if segment not in self.segments:  # merged or dropped meanwhile
                raise ChangedFile(f"the runs cache file {self._path(segment)} changed since it was written")
            fresh = self._write(store, segment.after, segment.upto, background=False)
            self.segments[self.segments.index(segment)] = fresh
        table = _read(self._open(fresh), fresh)
        if table is None:
            raise ChangedFile(f"the runs cache file {self._path(fresh)} changed as it was written")
        return table

    def _matches(self, store, finished_upto: int) -> bool:
        """Whether the store still holds the runs of the files: the newest run of each file, by id and
        correlation id (random per runner), and no file beyond the store's finished runs."""
        if finished_upto < self.upto:
            return False
        newest = dict(segment.newest for segment in self.segments if segment.newest)
        return store.run_cids(list(newest)) == newest

    def _file(self, after: int, upto: int) -> Path:
        return self.folder / f"{self.store_id}.{after}-{upto}.arrow"

    def _path(self, segment: Segment) -> Path:
        return self._file(segment.after, segment.upto)

    def _intact(self, segment: Segment) -> bool:
        try:
            return self._path(segment).stat().st_size == segment.size
        except FileNotFoundError:
            return False

    def _open(self, segment: Segment) -> int:
        try:
            return os.open(self._path(segment), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ChangedFile(f"the runs cache file {self._path(segment)} was removed") from None

    def _load(self) -> None:
        """The files of this store that chain from run 0 and still have the size their sums say; delete the rest."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob(".*.arrow.*"):
            with contextlib.suppress(FileNotFoundError):  # a file half written by a process that died
                if time.time() - path.stat().st_mtime > PARTIAL_FILE_AGE:
                    _unlink(path)
        found: dict[int, Segment] = {}
        for path in self.folder.glob("*.arrow"):
            segment = self._listed(path)
            if segment is None:
                _unlink(path)
                _unlink(_sum_file(path))
            else:
                found[segment.after] = segment
        for path in self.folder.glob("*.arrow.sum"):
            if not path.with_suffix("").exists():
                _unlink(path)
        after = 0
        while after in found:
            segment = found.pop(after)
            self.segments.append(segment)
            after = segment.upto
        self._drop(list(found.values()))

    def _listed(self, path: Path) -> Segment | None:
        """The file at ``path`` as a segment: of this store, with its sums, and of the size they say."""
        store_id, _, bounds = path.stem.partition(".")
        after, _, upto = bounds.partition("-")
        if store_id != self.store_id or not after.isdigit() or not upto.isdigit() or int(upto) <= int(after):
            return None
        try:
            sums = json.loads(_sum_file(path).read_text())
            newest = tuple(sums["newest"]) if sums["newest"] else None
            segment = Segment(int(after), int(upto), int(sums["size"]), int(sums["crc32"]), newest)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return segment if self._intact(segment) else None

    def _write(self, store, after: int, upto: int, background: bool) -> Segment:
        """The runs ``after < run_id <= upto`` written as a file from the store, and sealed, by a child process
        (the runner never loads pyarrow to keep its cache); its segment."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(after, upto)
        _unlink(_sum_file(path))
        store.write_runs_file(after, upto, path, background)
        return self._sealed(after, upto)

    def _sealed(self, after: int, upto: int) -> Segment:
        """The file just written (and sealed: checked, its sums beside it) by the child process, as a segment."""
        segment = self._listed(self._file(after, upto))
        if segment is None:
            raise ChangedFile(f"the runs cache file {self._file(after, upto)} was not written whole")
        return segment

    def _merge(self, store, background: bool) -> None:
        """One file for all the runs of the files so far, written by the child process (Arrow only; SQLite is not
        read again), so that a runner that refreshes its cache never loads pyarrow nor holds the tables."""
        old = self.segments
        for i in range(len(old)):  # each checked; one that changed is written again first
            if not _whole(self._path(old[i]), old[i]):
                old[i] = self._write(store, old[i].after, old[i].upto, background)
        after, upto = old[0].after, old[-1].upto
        path = self._file(after, upto)
        _unlink(_sum_file(path))
        parts = [{"path": str(self._path(segment)), "size": segment.size, "crc32": segment.crc32} for segment in old]
        store.merge_runs_files(parts, path, background)
        self.segments = [self._sealed(after, upto)]
        self._drop([segment for segment in old if (segment.after, segment.upto) != (after, upto)])

    def _drop(self, segments: list[Segment]) -> None:
        for segment in segments:
            _unlink(self._path(segment))
            _unlink(_sum_file(self._path(segment)))


def _whole(path: Path, segment: Segment) -> bool:
    """Whether the file at ``path`` holds what ``segment`` says was written (its size and sum; no pyarrow)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    return len(data) == segment.size and zlib.crc32(data) == segment.crc32


def seal(path: Path) -> None:
    """Read the file just written at ``path``, check it, and write its sums beside it (in the child process)."""
    import pyarrow as pa

    data = path.read_bytes()
    table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    if table.schema != empty_runs_schema():
        _unlink(path)
        raise ChangedFile(f"the runs cache file {path} does not have the columns of a run")
    newest = (table["run_id"][0].as_py(), table["cid"][0].as_py()) if table.num_rows else None
    sums = {"size": len(data), "crc32": zlib.crc32(data), "newest": newest}
    partial = path.with_name(f".{path.name}.sum.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(json.dumps(sums))
    os.replace(partial, _sum_file(path))


def merge(parts: list[dict], path: Path) -> None:
    """(In the child process) the files ``parts`` (oldest first, each checked against its size and sum) as one
    file at ``path``, newest runs first as in each file, sealed."""
    import pyarrow as pa

    tables = []
    for part in parts:
        segment = Segment(0, 0, part["size"], part["crc32"], None)
        table = _read(os.open(part["path"], os.O_RDONLY | os.O_CLOEXEC), segment)
        if table is None:
            raise ChangedFile(f"the runs cache file {part['path']} changed since it was written")
        tables.append(table)
    write_file(pa.concat_tables(list(reversed(tables))), path)
    seal(path)


def _read(fd: int, segment: Segment):
    """The table of an open cache file (closed here), or None when it is not the file the segment was written as."""
    import pyarrow as pa

    with open(fd, "rb") as handle:
        data = handle.read(segment.size + 1)
    if len(data) != segment.size or zlib.crc32(data) != segment.crc32:
        return None
    try:
        return pa.ipc.open_file(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError):
        return None


def _sum_file(path: Path) -> Path:
    return path.with_name(f"{path.name}.sum")


def write_file(table, path: Path) -> None:
    """``table`` as an Arrow IPC file at ``path``, whole or not at all (written aside, then renamed)."""
    import pyarrow as pa

    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(partial, path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
