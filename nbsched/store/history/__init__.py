"""Run history as the wire carries it: the ``History`` reader, the Arrow codec, SQLite's fast reader and cache.

``reader`` (``History``: any store's listings as JSON rows or Arrow) · ``arrow`` (types, tables, streams) ·
``sqlite`` (a SQLite store's reader: text straight from SQLite, long listings from ``cache``'s Arrow files
and ``child``, the process that reads SQLite into Arrow with ADBC).
"""

from __future__ import annotations

from .reader import History

__all__ = ["History"]
