"""The Arrow form of run history: each run field's type, tables from rows, IPC streams, filters in Arrow.

pyarrow is imported inside each function: a runner that never sends a long history never loads it.
"""

from __future__ import annotations

from ...model.runs import RUN_FIELDS
from ..base import RunQuery

#: The Arrow type of each run field in a runs table (times are cast from their ISO text).
RUN_ARROW_TYPES = {
    "run_id": "int64",
    "attempt": "int64",
    "delay_ms": "float64",
    "duration_ms": "float64",
    "scheduled_at": "timestamp",
    "started_at": "timestamp",
    "finished_at": "timestamp",
}
#: Text columns with few distinct values: sent dictionary-encoded (a small index per row).
RUN_REPEATED_TEXT = ("job", "service", "service_version", "trigger", "status", "runner", "job_uid")


def rows_table(rows: list[tuple]):
    """Rows of ``RUN_FIELDS`` values (times as ISO text) as an Arrow table, its columns typed as found."""
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [()] * len(RUN_FIELDS)
    return pa.table({name: pa.array(list(values)) for name, values in zip(RUN_FIELDS, columns, strict=True)})


def typed_runs(table, encode: bool = True):
    """``table``'s run columns typed as ``RUN_ARROW_TYPES`` says (repeated text dictionary-encoded
    when ``encode``: parts to be concatenated later are typed without it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for name in RUN_FIELDS:
        column = table.column(name)
        kind = RUN_ARROW_TYPES.get(name, "string")
        if kind == "timestamp":
            if not pa.types.is_timestamp(column.type):
                column = pc.cast(column.cast(pa.string()), pa.timestamp("us", tz="UTC"))
        else:
            column = column.cast(kind)  # an all-NULL column may come typed as anything
            if encode and name in RUN_REPEATED_TEXT:
                column = pc.dictionary_encode(column)
        columns.append(column)
    return pa.table(columns, names=list(RUN_FIELDS))


def empty_runs_schema():
    """The schema ``typed_runs(..., encode=False)`` gives: that of the runs cache's files."""
    import pyarrow as pa

    return typed_runs(pa.table({name: pa.array([], pa.null()) for name in RUN_FIELDS}), encode=False).schema


def arrow_stream(table) -> bytearray:
    """``table`` with the run columns typed as ``RUN_ARROW_TYPES`` says, as Arrow IPC stream bytes."""
    import pyarrow as pa

    typed = typed_runs(table).combine_chunks()
    # Measure, then write into one buffer of the right size: a growing stream copies it several times.
    mock = pa.MockOutputStream()
    with pa.ipc.new_stream(mock, typed.schema) as writer:
        writer.write_table(typed)
    data = bytearray(mock.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(pa.py_buffer(data)), typed.schema) as writer:
        writer.write_table(typed)
    return data


def filtered(table, query: RunQuery):
    """The rows of a table of finished runs that ``query`` selects, but for its limit (``as_of`` concerns only
    runs still running, which such a table does not hold)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    conditions = [
        pc.equal(table[name], value)
        for name, value in (
            ("job", query.job),
            ("job_uid", query.job_uid),
            ("service", query.service),
            ("status", query.status),
        )
        if value is not None
    ]
    if query.since is not None:
        when = pc.coalesce(table["started_at"], table["scheduled_at"])
        conditions.append(pc.greater_equal(when, pa.scalar(query.since, pa.timestamp("us", tz="UTC"))))
    if not conditions:
        return table
    mask = conditions[0]
    for condition in conditions[1:]:
        mask = pc.and_kleene(mask, condition)
    return table.filter(mask)
