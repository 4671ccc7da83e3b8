"""``logs RUN_ID --follow`` (command line and magics): a run's lines as they are written, then how it ended."""

from __future__ import annotations

from collections.abc import Callable

from ..client.follow import follow_chunks

#: What a followed run's outcome shows after its logs (the logs were shown as they came).
OUTCOME_FIELDS = ("error", "output", "traceback")


def follow_run(client, run_id: int, emit: Callable[[str], None]) -> dict:
    """Emit the run's log lines as they are written (one text per batch), then its final status; its record."""
    record = client.run(run_id)  # RunNotFound before anything is shown
    emit(f"run {record['run_id']} ({record['job'] or record['service']}): {record['status']}")
    for lines in follow_chunks(client, record["run_id"]):
        emit("\n".join(lines))
    record = client.run(run_id)
    emit(outcome_text(record))
    return record


def outcome_text(record: dict) -> str:
    """``run 42: ok in 12.5 ms`` and the run's error, output and traceback, if any."""
    took = f" in {record['duration_ms']:.1f} ms" if record.get("duration_ms") is not None else ""
    lines = [f"run {record['run_id']}: {record['status']}{took}"]
    lines += [f"--- {key}\n{str(record[key]).rstrip()}" for key in OUTCOME_FIELDS if record.get(key)]
    return "\n".join(lines)
