"""Runs changed since a runs cache file was written (``cache``): left out of its table, their rows put in place.

A file's table is newest first; so are the rows read from the store. The rows go in by slices: the parts
of the file that did not change stay slices of its table (no copy), up to ``MAX_PIECES`` pieces.
"""

from __future__ import annotations

import json

from .arrow import empty_runs_schema

#: A file's table with more pieces than this, once its changed runs are taken out and put back, is filtered and
#: sorted instead: each piece is a chunk of the table (~50 us each down to the DataFrame), the sort costs ~0.5 s
#: a million runs.
MAX_PIECES = 4096


class Changed:
    """The runs changed since the files were written: their ids (to leave out of the files' tables), and the rows
    the store still has of them (None for none), to put in their place."""

    def __init__(self, run_ids: list[int], rows):
        self.run_ids = run_ids
        self.rows = rows

    def applied(self, table, after: int, upto: int):
        """The table of a cache file (the runs with ``after < run_id <= upto``, newest first) with the runs as the
        store holds them: the changed ones left out, and the rows of those of its span put in at their places.
        Unchanged parts stay slices of the file's table."""
        if not self.run_ids:
            return table
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = table["run_id"]
        left_out = pc.is_in(ids, value_set=pa.array(self.run_ids, pa.int64()))
        rows = self._rows_within(after, upto)
        if not pc.any(left_out).as_py() and not rows.num_rows:
            return table
        pieces = _pieces(table, _runs_of(left_out), rows, _places(ids, rows["run_id"]))
        if len(pieces) > MAX_PIECES:
            return pa.concat_tables([table.filter(pc.invert(left_out)), rows]).sort_by([("run_id", "descending")])
        return pa.concat_tables(pieces) if pieces else table.slice(0, 0)

    def _rows_within(self, after: int, upto: int):
        import pyarrow.compute as pc

        if self.rows is None:
            return empty_runs_schema().empty_table()
        ids = self.rows["run_id"]
        return self.rows.filter(pc.and_(pc.greater(ids, after), pc.less_equal(ids, upto)))


def patched(table, changed: dict):
    """(In the child process) a cache file's table with the runs ``changed["run_ids"]`` as the store file
    ``changed["store"]`` holds them (read with ``changed["select"]``), in one chunk, to be written again."""
    from .child import Reader

    reader = Reader(changed["store"])
    try:
        rows = reader.read(changed["select"], [json.dumps(changed["run_ids"])], len(changed["run_ids"]))
    finally:
        reader.close()
    return Changed(changed["run_ids"], rows).applied(table, -1, 2**63 - 1).combine_chunks()


def _places(ids, changed_ids) -> list[int]:
    """Where each of ``changed_ids`` goes among ``ids`` (both newest first): how many of ``ids`` are higher."""
    import numpy as np

    ascending = ids.to_numpy()[::-1]
    return (len(ascending) - np.searchsorted(ascending, changed_ids.to_numpy(), side="right")).tolist()


def _runs_of(mask) -> list[tuple[int, int]]:
    """The runs of true values of a boolean array, as ``(start, stop)`` positions, in order."""
    import numpy as np

    edges = np.diff(np.concatenate(([0], mask.to_numpy(zero_copy_only=False).astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _pieces(table, dropped: list[tuple[int, int]], rows, places: list[int]) -> list:
    """``table`` without its rows in the ``dropped`` runs (``(start, stop)``, in order), and with ``rows[i]`` before
    its row at ``places[i]``, as slices in order (runs of kept rows, and of rows put in side by side, stay one)."""
    marks = sorted([(place, 0, i) for i, place in enumerate(places)] + [(begin, 1, end) for begin, end in dropped])
    spans: list[tuple] = []  # (table or rows, start, stop)
    start = 0
    for position, kind, value in marks:
        if position > start:
            spans.append((table, start, position))
        if kind == 1:  # a run of rows left out: value is where it stops
            start = value
        elif spans and spans[-1][0] is rows and spans[-1][2] == value:  # the row after the last put in
            spans[-1] = (rows, spans[-1][1], value + 1)
            start = max(start, position)
        else:
            spans.append((rows, value, value + 1))
            start = max(start, position)
    if start < table.num_rows:
        spans.append((table, start, table.num_rows))
    return [source.slice(begin, stop - begin) for source, begin, stop in spans]
