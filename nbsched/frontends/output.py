"""Listings written to a terminal or a file as table, JSON or CSV, a row at a time (``nbsched history --all``).

JSON is an array with one object per line, CSV a header and a line per row; both are written as the
rows come, so a million runs go out in the memory of one chunk. A table sizes its columns from its
first ``TABLE_BLOCK`` rows and goes on in those widths.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, TextIO

import orjson

#: A table's columns are as wide as their widest cell among this many first rows.
TABLE_BLOCK = 1000


def write_records(
    out: TextIO, records: Iterable[dict], columns: Sequence[str], fmt: str, cell: Callable[[str, Any], str]
) -> None:
    """``records`` (dicts) in ``fmt`` (table, json or csv), each as it comes; a table's cells through ``cell``."""
    if fmt == "table":
        _write_table(out, records, columns, cell)
    else:
        write_rows(out, ([record.get(column) for column in columns] for record in records), columns, fmt)


def write_rows(out: TextIO, rows: Iterable[Sequence], columns: Sequence[str], fmt: str) -> None:
    """Rows (values in ``columns`` order) as a JSON array of objects or as CSV, each row as it comes."""
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    keys = list(columns)
    separator = "[\n"
    for row in rows:
        out.write(separator)
        out.write(orjson.dumps(dict(zip(keys, row, strict=True)), option=orjson.OPT_NON_STR_KEYS).decode())
        separator = ",\n"
    out.write("[]\n" if separator == "[\n" else "\n]\n")


def _write_table(out: TextIO, records: Iterable[dict], columns: Sequence[str], cell: Callable[[str, Any], str]):
    lines = ([cell(column, record.get(column)) for column in columns] for record in records)
    first = list(islice(lines, TABLE_BLOCK))
    if not first:
        out.write("(none)\n")
        return
    widths = [max(len(column), *(len(line[i]) for line in first)) for i, column in enumerate(columns)]
    out.write(_line(columns, widths))
    for line in first:
        out.write(_line(line, widths))
    for line in lines:
        out.write(_line(line, widths))


def _line(cells: Sequence[str], widths: list[int]) -> str:
    return "  ".join(text.ljust(width) for text, width in zip(cells, widths, strict=True)).rstrip() + "\n"
