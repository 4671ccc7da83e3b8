"""What the runs cache (``cache``) reads a store through: the interface ``sqlite.SQLiteHistory`` implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Source(Protocol):
    """What the cache reads a store through (``sqlite.SQLiteHistory``): the store's runs, by run id."""

    def cache_bounds(self) -> tuple[str, int, int]:
        """The name of the store's current files (its id, and how many changes it could not record by run
        id), the highest run id up to which every run has finished, and the number of its latest recorded
        change of runs (0 for none)."""

    def run_cids(self, run_ids: list[int]) -> dict[int, str]:
        """The correlation ids of these runs, of those the store has."""

    def changed_runs(self, since: int, upto: int) -> list[int]:
        """The ids (up to ``upto``) of the runs deleted or changed in the store's changes after number ``since``."""

    def changed_count(self, after: int, upto: int, since: int) -> tuple[int, int]:
        """How many runs with ``after < run_id <= upto`` were deleted or changed after change number ``since``, and
        how many of those the store still has."""

    def skip_changes(self) -> int:
        """Number the store's next changes of runs from far above its latest (``CHANGES_SKIPPED``), so that a copy
        of it taken before, put back, never reaches the numbers of files written now; the latest number now."""

    def forget_changes(self, spans: list[tuple[int, int, int]]) -> None:
        """Forget the records of changes up to number ``seen`` of the runs with ``after < run_id <= upto``, for
        each ``(after, upto, seen)`` of ``spans``."""

    def runs_table(self, run_ids: list[int]):
        """The runs of these ids the store has, newest first, as an Arrow table typed as ``arrow.typed_runs``."""

    def write_runs_file(self, after: int, upto: int, path: Path, background: bool = False) -> None:
        """The runs with ``after < run_id <= upto`` written as an Arrow IPC file at ``path``, and sealed (``seal``)
        (``background``: at a low priority, for a refresh no one waits for)."""

    def merge_runs_files(self, parts: list[dict], path: Path, background: bool = False) -> None:
        """The cache files ``parts`` (``path``, ``size``, ``crc32``; oldest first) as one file at ``path``, sealed."""

    def patch_runs_file(self, part: dict, run_ids: list[int], path: Path, background: bool = False) -> None:
        """The cache file ``part`` (as for ``merge_runs_files``) written again at ``path``, sealed, with the runs
        ``run_ids`` as the store holds them now (left out, and the rows of those it still has put in)."""
