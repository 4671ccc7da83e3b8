"""Finished runs of a SQLite store kept as Arrow files beside it: a long history is read without SQLite.

A run that has finished seldom changes again: history grows, new runs get higher ids, and a result
goes to a run still marked running. So the runs up to the one before the oldest running run are
written once, as Arrow IPC files: ``<store file>.runs-cache/<store id>.<after>-<upto>.<seen>.arrow``
holds the runs with ``after < run_id <= upto``, newest first, typed as ``arrow.typed_runs`` types them,
as they were after the store's change number ``seen``. A long read reads the files, filters them in
Arrow, and asks SQLite only for the runs after the last file, and for the runs changed since.

What does change, a few runs at a time (a retention step deletes the oldest ~200; a notification
that failed adds a line to a finished run's logs), the store's triggers record by run id, numbered
(``runs_changed``). A long read leaves the recorded runs out of the files' tables and puts in their
place those the store still has, read from SQLite (``changed``): the answer is what SQLite holds,
and no file is written again for it. A refresh (``background``; also right after a long read that
found one) writes again a file of which a share of at least ``CHANGED_SHARE`` has changed since it
was written, or of which ``CHANGED_KEPT`` runs changed and are still in the store (each is a piece
of the read: runs deleted side by side are one): the child process reads the file and, from SQLite,
only the changed runs (a file whose runs are all deleted becomes one of no runs). It then forgets the
records that every file holding their run has seen.

Beside each file, ``<file>.sum`` holds its size, CRC-32, number of runs and newest run, written after
the file. A file is read into memory, never mapped (a mapped file that someone truncates kills the
process with SIGBUS at the next read of it), and used only if it still has the size and checksum it
was written with; one that does not is written again from the store. So a file truncated, overwritten
or removed behind the runner's back costs a rewrite, never a wrong history or a signal.

The files are named by the store's id and its ``runs_generation``, which counts the changes the
triggers cannot record by run id (runs loaded with ids of their own; an older nbsched, whose
triggers count every change there); files of another name are deleted and the runs read again.
Deleting the folder is always safe.
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

from .arrow import empty_runs_schema
from .changed import Changed, patched
from .source import Source

#: The form of the files (their columns): part of their names, so that files of another form are written again.
#: 2: runs carry ``job_uid``. 3: runs changed since a file was written are left out of it at each read (an older
#: nbsched, which would serve them, does not take these files for its own).
CACHE_FORMAT = 3
#: A new file is written once at least this many finished runs are not in one yet (fewer are read from SQLite).
SEGMENT_ROWS = 50_000
#: More files than this are merged into one.
MAX_SEGMENTS = 16
#: A file being written (hidden, beside its final name) older than this many seconds was left by a dead writer.
PARTIAL_FILE_AGE = 3600
#: A refresh writes a file again once this share of its runs has changed since (or been deleted).
CHANGED_SHARE = 0.1
#: ... or once this many of its runs changed and are still in the store: each is put in its place at each read
#: (measured: 100 such runs cost ~0.07 s more a read of a million runs, 1,000 ~0.3 s).
CHANGED_KEPT = 500


log = logging.getLogger(__name__)


class ChangedFile(OSError):
    """A cache file is not the one written (truncated, overwritten or removed since)."""


@dataclass(frozen=True)
class Segment:
    """One cache file: the runs with ``after < run_id <= upto`` as they were after the store's change number
    ``seen``, and what the file held when it was written."""

    after: int
    upto: int
    seen: int
    size: int
    crc32: int
    rows: int
    newest: tuple[int, str] | None  # run_id and cid of its first (newest) run; None for a file of no runs


class Tables:
    """The tables of the files a long read opened, newest first, each read (and checked) as the caller comes to it,
    its changed runs as ``changed`` has them. ``close()`` closes the files not read (a read that stopped early, or
    failed before it read any: a generator not started would keep them open, and deleted files on disk)."""

    def __init__(self, cache: RunsCache, store, changed: Changed):
        self.cache = cache
        self.store = store
        self.changed = changed
        self.opened: list[tuple[Segment, int]] = []  # each file with its descriptor

    def __iter__(self) -> Tables:
        return self

    def __next__(self):
        if not self.opened:
            raise StopIteration
        segment, fd = self.opened.pop(0)
        table = _read(fd, segment)
        table = table if table is not None else self.cache._rewritten(self.store, segment)
        return self.changed.applied(table, segment.after, segment.upto)

    def close(self) -> None:
        opened, self.opened = self.opened, []
        for _, fd in opened:
            os.close(fd)


class RunsCache:
    """The cache files of one store file; one object per file in a process, shared by its threads."""

    _by_path: dict[str, RunsCache] = {}
    _guard = threading.Lock()

    @classmethod
    def of(cls, store_path: str) -> RunsCache:
        """The one cache of the store file at ``store_path``, however the path is spelled: two caches of a store
        would each forget the records of changes that the other's files still need (``_forget``)."""
        real = os.path.realpath(store_path)
        with cls._guard:
            cache = cls._by_path.get(real)
            if cache is None:
                cache = cls._by_path[real] = cls(Path(f"{real}.runs-cache"))
            return cache

    def __init__(self, folder: Path):
        self.folder = folder
        self.lock = threading.RLock()
        self.store_id: str | None = None
        self.segments: list[Segment] = []  # oldest first
        self.writer: threading.Thread | None = None  # a write_later in progress
        self.changes = 0  # the store's latest change number, as the last bringing up to date found it
        self.worn = False  # whether the last long read found a file to write again (``_worn``)

    def behind(self, store: Source) -> bool:
        """Whether the files lack more finished runs than they hold (and at least a file's worth): a store never
        read long, or one that grew much since. A long read then answers from the store at once and has the
        files written after it (``write_later``): writing them first would keep the caller waiting for them."""
        with self.lock:
            store_id, finished_upto, _ = store.cache_bounds()
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
        """Bring the files up to date with ``store``; their tables, newest first, as the store holds those runs.

        The files are opened now and each is read, and checked, as the caller comes to it (a limited
        read stops early); a merge meanwhile does not matter. The runs changed since a file was written
        are read from the store now, and take the place of the file's rows of them. The runs after
        ``self.upto`` are not in the files; the caller reads those (holding ``self.lock``). With
        ``background`` (a refresh, which only wants the files written), no file is read, files much
        changed are written again, the records no file needs any more are forgotten, and nothing is returned.
        """
        store_id, finished_upto, self.changes = store.cache_bounds()
        if store_id != self.store_id:  # first use, or a change not recorded by run id: files of other ids go
            self.store_id, self.segments = store_id, []
            self._load()
        if self.segments and not self._matches(store, finished_upto):
            self._drop(self.segments)  # the store was put back from a copy, say
            self.segments = []
        try:
            self._write_files(store, finished_upto, background)
        finally:  # also when a file cannot be written (a full disk): the records would pile up in the store
            if background:
                self._forget(store)
        if background:
            return iter(())
        changed = self._changes_since_written(store)  # before the files are opened: nothing to close if it fails
        tables = Tables(self, store, changed)
        try:
            for segment in reversed(self.segments):
                tables.opened.append((segment, self._open(segment)))
        except ChangedFile:
            tables.close()
            raise
        return tables

    def _write_files(self, store, finished_upto: int, background: bool) -> None:
        """Write again the files removed or resized (and, for a refresh, those much changed), write a file of the
        finished runs after the last one when they are enough, and merge the files when they are many. Each step
        leaves ``segments`` as the files are, should the next fail."""
        for i, segment in enumerate(self.segments):
            if not self._intact(segment):  # removed or resized since it was written
                self.segments[i] = self._rewrite(store, segment, background)
        if background:
            self._rewrite_changed(store)
        if finished_upto - self.upto >= SEGMENT_ROWS:  # run ids have few gaps: the span tells the count
            self.segments.append(self._write(store, self.upto, finished_upto, background))
        if len(self.segments) > MAX_SEGMENTS:
            self._merge(store, background)

    def _changes_since_written(self, store) -> Changed:
        """The runs changed since the oldest file was written (their ids, and the rows the store has of them)."""
        since = min((segment.seen for segment in self.segments), default=self.changes)
        run_ids = store.changed_runs(since, self.upto) if self.segments else []
        changed = Changed(run_ids, store.runs_table(run_ids) if run_ids else None)
        if run_ids:  # counted since the oldest file was written: a file written later may be taken for worn
            import numpy as np

            ids, kept = np.array(run_ids), changed.rows["run_id"].to_numpy()
            self.worn = any(_worn(segment, _within(ids, segment), _within(kept, segment)) for segment in self.segments)
        return changed

    def _rewrite_changed(self, store) -> None:
        """Write again each file of which at least ``CHANGED_SHARE`` of its runs changed since it was written: from
        the file, with its changed runs read from the store (SQLite is read for those only)."""
        for i, segment in enumerate(self.segments):
            if not _worn(segment, *store.changed_count(segment.after, segment.upto, segment.seen)):
                continue
            if not _whole(self._path(segment), segment):  # changed behind our back: all of it from the store
                self.segments[i] = self._rewrite(store, segment, background=True)
                continue
            run_ids = [run_id for run_id in store.changed_runs(segment.seen, segment.upto) if run_id > segment.after]
            self.changes = store.skip_changes()
            path = self._file(segment.after, segment.upto, self.changes)  # run_ids were read after that change
            _unlink(_sum_file(path))
            store.patch_runs_file(self._part(segment), run_ids, path, background=True)
            self.segments[i] = self._sealed(path)
            if path != self._path(segment):
                self._drop([segment])
        self.worn = False

    def _forget(self, store) -> None:
        """Forget the records of changes that every file holding their run has seen (and, past the last file,
        all so far: a file written later is written after them)."""
        spans = [(segment.after, segment.upto, segment.seen) for segment in self.segments]
        spans.append((self.upto, 2**63 - 1, self.changes))
        store.forget_changes(spans)

    def _rewritten(self, store, segment: Segment):
        """The table of a file that changed since it was written, written again from the store."""
        with self.lock:
            log.warning("runs cache file %s changed since it was written; writing it again", self._path(segment))
            if segment not in self.segments:  # merged or dropped meanwhile
                raise ChangedFile(f"the runs cache file {self._path(segment)} changed since it was written")
            fresh = self._rewrite(store, segment, background=False)
            self.segments[self.segments.index(segment)] = fresh
        table = _read(self._open(fresh), fresh)
        if table is None:
            raise ChangedFile(f"the runs cache file {self._path(fresh)} changed as it was written")
        return table

    def _matches(self, store, finished_upto: int) -> bool:
        """Whether the store still holds the runs of the files: no file of a change it has not made (its change
        numbers never go back), none beyond its finished runs, and the newest run of each file as the store has
        it, by id and correlation id (random per runner), unless recorded as changed since (then read anew)."""
        if finished_upto < self.upto or any(segment.seen > self.changes for segment in self.segments):
            return False
        newest = dict(segment.newest for segment in self.segments if segment.newest)
        found = store.run_cids(list(newest))
        if found == newest:
            return True
        changed = set(store.changed_runs(min(segment.seen for segment in self.segments), self.upto))
        return all(found.get(run_id) == cid for run_id, cid in newest.items() if run_id not in changed)

    def _file(self, after: int, upto: int, seen: int) -> Path:
        return self.folder / f"{self.store_id}.{after}-{upto}.{seen}.arrow"

    def _path(self, segment: Segment) -> Path:
        return self._file(segment.after, segment.upto, segment.seen)

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
                found[segment.after] = self._newer(found.get(segment.after), segment)
        for path in self.folder.glob("*.arrow.sum"):
            if not path.with_suffix("").exists():
                _unlink(path)
        after = 0
        while after in found:
            segment = found.pop(after)
            self.segments.append(segment)
            after = segment.upto
        self._drop(list(found.values()))

    def _newer(self, known: Segment | None, segment: Segment) -> Segment:
        """Of two files of runs from the same id on (one written again, the old one left by a process that died
        before it deleted it), the one that has seen more changes; the other is deleted. The records of the changes
        it has seen may be forgotten: the older one would serve those runs as they were."""
        if known is None:
            return segment
        newer, older = (segment, known) if (segment.seen, segment.upto) > (known.seen, known.upto) else (known, segment)
        self._drop([older])
        return newer

    def _listed(self, path: Path) -> Segment | None:
        """The file at ``path`` as a segment: of this store, with its sums, and of the size they say."""
        store_id, _, bounds = path.stem.partition(".")
        span, _, seen = bounds.partition(".")
        after, _, upto = span.partition("-")
        if store_id != self.store_id or not all(map(str.isdigit, (after, upto, seen))) or int(upto) <= int(after):
            return None
        try:
            sums = json.loads(_sum_file(path).read_text())
            newest = tuple(sums["newest"]) if sums["newest"] else None
            segment = Segment(
                int(after), int(upto), int(seen), int(sums["size"]), int(sums["crc32"]), int(sums["rows"]), newest
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return segment if self._intact(segment) else None

    def _write(self, store, after: int, upto: int, background: bool) -> Segment:
        """The runs ``after < run_id <= upto`` written as a file from the store, and sealed, by a child process
        (the runner never loads pyarrow to keep its cache); its segment. The file has seen the changes that
        ``cache_bounds`` counted before."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.changes = store.skip_changes()
        path = self._file(after, upto, self.changes)
        _unlink(_sum_file(path))
        store.write_runs_file(after, upto, path, background)
        return self._sealed(path)

    def _rewrite(self, store, segment: Segment, background: bool) -> Segment:
        """``segment``'s runs written again from the store (its old file deleted); the new segment."""
        fresh = self._write(store, segment.after, segment.upto, background)
        if self._path(fresh) != self._path(segment):  # of a later change number: a name of its own
            self._drop([segment])
        return fresh

    def _sealed(self, path: Path) -> Segment:
        """The file just written (and sealed: checked, its sums beside it) by the child process, as a segment."""
        segment = self._listed(path)
        if segment is None:
            raise ChangedFile(f"the runs cache file {path} was not written whole")
        return segment

    def _merge(self, store, background: bool) -> None:
        """One file for all the runs of the files so far, written by the child process (Arrow only; SQLite is not
        read again), so that a runner that refreshes its cache never loads pyarrow nor holds the tables."""
        old = self.segments
        for i in range(len(old)):  # each checked; one that changed is written again first
            if not _whole(self._path(old[i]), old[i]):
                old[i] = self._rewrite(store, old[i], background)
        # Its rows are those of the files: it has seen the changes that all of them have.
        path = self._file(old[0].after, old[-1].upto, min(segment.seen for segment in old))
        _unlink(_sum_file(path))
        store.merge_runs_files([self._part(segment) for segment in old], path, background)
        self.segments = [self._sealed(path)]
        self._drop([segment for segment in old if self._path(segment) != path])

    def _part(self, segment: Segment) -> dict:
        """A file as the child process checks it (``merge``)."""
        return {"path": str(self._path(segment)), "size": segment.size, "crc32": segment.crc32}

    def _drop(self, segments: list[Segment]) -> None:
        for segment in segments:
            _unlink(self._path(segment))
            _unlink(_sum_file(self._path(segment)))


def _worn(segment: Segment, changed: int, kept: int) -> bool:
    """Whether a file of which ``changed`` runs changed since it was written (``kept`` of them still in the store)
    is to be written again."""
    return changed > 0 and (changed >= CHANGED_SHARE * segment.rows or kept >= CHANGED_KEPT)


def _within(ids, segment: Segment) -> int:
    """How many of ``ids`` (a numpy array) are in ``segment``'s span."""
    import numpy as np

    return int(np.count_nonzero((ids > segment.after) & (ids <= segment.upto)))


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
    sums = {"size": len(data), "crc32": zlib.crc32(data), "rows": table.num_rows, "newest": newest}
    partial = path.with_name(f".{path.name}.sum.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(json.dumps(sums))
    os.replace(partial, _sum_file(path))


def merge(parts: list[dict], path: Path) -> None:
    """(In the child process) the files ``parts`` (oldest first, each checked against its size and sum) as one
    file at ``path``, newest runs first as in each file, sealed; a part with ``changed`` (``patch_runs_file``)
    with those runs as the store holds them now (``changed.patched``)."""
    import pyarrow as pa

    tables = []
    for part in parts:
        segment = Segment(0, 0, 0, part["size"], part["crc32"], 0, None)
        table = _read(os.open(part["path"], os.O_RDONLY | os.O_CLOEXEC), segment)
        if table is None:
            raise ChangedFile(f"the runs cache file {part['path']} changed since it was written")
        tables.append(patched(table, part["changed"]) if part.get("changed") else table)
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
