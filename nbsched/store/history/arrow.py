"""The Arrow form of run history: each run field's type, tables from rows, IPC streams, filters in Arrow.

pyarrow is imported inside each function: a runner that never sends a long history never loads it.
"""

from __future__ import annotations

import functools

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
#: Listings of up to this many bytes are written in one pass (a longer one is measured first, then written).
SMALL_STREAM_BYTES = 1 << 20


@functools.cache
def run_types() -> tuple:
    """The Arrow type of each ``RUN_FIELDS`` column, in order (text as ``string``, times as UTC microseconds)."""
    import pyarrow as pa

    special = {"timestamp": pa.timestamp("us", tz="UTC"), "string": pa.string()}
    kinds = (RUN_ARROW_TYPES.get(name, "string") for name in RUN_FIELDS)
    return tuple(special.get(kind) or pa.type_for_alias(kind) for kind in kinds)


@functools.cache
def empty_runs_schema():
    """The schema of a typed runs table (``typed_runs``): that of the runs cache's files and of the wire."""
    import pyarrow as pa

    return pa.schema(list(zip(RUN_FIELDS, run_types(), strict=True)))


def rows_table(rows: list[tuple]):
    """Rows of ``RUN_FIELDS`` values (times as ISO text) as an Arrow table typed as ``RUN_ARROW_TYPES`` says."""
    import pyarrow as pa

    try:  # the rows as one array of structs (one call), its times parsed in Arrow
        columns = pa.array(rows, type=_text_rows_type()).flatten()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a value of another Python type: typed as found, then cast
        values = list(zip(*rows, strict=True)) if rows else [()] * len(RUN_FIELDS)
        found = pa.table({name: pa.array(list(column)) for name, column in zip(RUN_FIELDS, values, strict=True)})
        return typed_runs(found)
    for i, kind in enumerate(run_types()):
        if pa.types.is_timestamp(kind):
            columns[i] = columns[i].cast(kind)
    return pa.Table.from_arrays(columns, schema=empty_runs_schema())


@functools.cache
def _text_rows_type():
    """A run row as a struct, its times as text (as SQLite and JSON hold them)."""
    import pyarrow as pa

    types = [pa.string() if pa.types.is_timestamp(kind) else kind for kind in run_types()]
    return pa.struct(list(zip(RUN_FIELDS, types, strict=True)))


def typed_runs(table):
    """``table``'s run columns typed as ``RUN_ARROW_TYPES`` says."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for name, kind in zip(RUN_FIELDS, run_types(), strict=True):
        column = table.column(name)
        if pa.types.is_timestamp(kind):
            if not pa.types.is_timestamp(column.type):
                column = pc.cast(column.cast(pa.string()), kind)
        elif column.type != kind:
            column = column.cast(kind)  # an all-NULL column may come typed as anything
        columns.append(column)
    return pa.table(columns, names=list(RUN_FIELDS))


def arrow_stream(table) -> memoryview:
    """``table`` with the run columns typed as ``RUN_ARROW_TYPES`` says, as Arrow IPC stream bytes.

    Text goes as plain strings, never dictionary-encoded: pandas takes plain Arrow strings as they are, while
    decoding a million rows' dictionaries costs more than sending their bytes over a local socket."""
    import pyarrow as pa

    typed = table if table.schema == empty_runs_schema() else typed_runs(table)
    # The size of its buffers (not ``nbytes``: that one looks for buffers shared by slices, a tenth of a second
    # for a million runs).
    if typed.get_total_buffer_size() <= SMALL_STREAM_BYTES:
        sink = pa.BufferOutputStream()
        write_stream(sink, [typed])
        return memoryview(sink.getvalue())
    # Measure, then write into one buffer of the right size (not zeroed first): a growing stream copies it
    # several times.
    mock = pa.MockOutputStream()
    write_stream(mock, [typed])
    data = pa.allocate_buffer(mock.size())
    write_stream(pa.FixedSizeBufferWriter(data), [typed])
    return memoryview(data)


def write_stream(sink, tables) -> None:
    """Tables typed as ``typed_runs`` types them, one after another, as one Arrow IPC stream written to ``sink``
    (an Arrow stream or a binary file) as each comes."""
    import pyarrow as pa

    with pa.ipc.new_stream(sink, empty_runs_schema()) as writer:
        for table in tables:
            writer.write_table(table)


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
