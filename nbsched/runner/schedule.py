"""The schedule: which job fires next, in O(log n) per decision.

A binary heap of ``(next_fire, name)`` with lazy deletion: changing or removing a job
leaves its old entry in the heap, and ``due`` skips entries that no longer match.
Pure data structure; it never reads the clock.
"""

from __future__ import annotations

import heapq
from datetime import datetime


class Schedule:
    """Next fire time per job name."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._next: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._next)

    def set(self, name: str, when: datetime | None) -> None:
        """Fire ``name`` at ``when``; None removes it from the schedule."""
        if when is None:
            self._next.pop(name, None)
            return
        if self._next.get(name) == when:
            return
        self._next[name] = when
        heapq.heappush(self._heap, (when, name))
        if len(self._heap) > 2 * len(self._next) + 64:
            self._compact()

    def remove(self, name: str) -> None:
        self._next.pop(name, None)

    def get(self, name: str) -> datetime | None:
        return self._next.get(name)

    def next_due(self) -> datetime | None:
        """The earliest fire time, or None when nothing is scheduled."""
        while self._heap:
            when, name = self._heap[0]
            if self._next.get(name) == when:
                return when
            heapq.heappop(self._heap)
        return None

    def due(self, now: datetime, limit: int | None = None) -> list[str]:
        """Remove and return the jobs whose fire time is at or before ``now``, earliest first (at most ``limit``)."""
        names: list[str] = []
        while self._heap and self._heap[0][0] <= now and (limit is None or len(names) < limit):
            when, name = heapq.heappop(self._heap)
            if self._next.get(name) == when:
                del self._next[name]
                names.append(name)
        return names

    def _compact(self) -> None:
        self._heap = [(when, name) for name, when in self._next.items()]
        heapq.heapify(self._heap)
