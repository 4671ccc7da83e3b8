"""A 1-cell notebook on an interval job: fire -> finished, with and without spare kernels.

    python bench/notebook_job.py [--runs 15] [--every 3]

Deploys a notebook whose one cell prints ``time.time()``, schedules it every ``--every`` seconds from the
next whole second and lets it fire ``--runs`` times; then the same on a fresh runner with
``NBSCHED_SPARE_KERNELS=0`` (each run boots its kernel when it starts). Per run, from history and the
executed copy: fire lag (``started_at - scheduled_at``: the worker began the run), fire -> cell (the cell's
``time.time()`` - ``scheduled_at``: kernel taken, parameters injected, client connected) and fire -> finished
(``finished_at - scheduled_at``: the copy saved). The first run of each set (imports, no spare yet) is shown
apart. jupyter-scheduler's ~2.6 s per 1-cell job (measured by an earlier session; it is not installed here)
is printed beside it.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from datetime import UTC, datetime

import _common
import nbformat

#: jupyter-scheduler's time per 1-cell notebook job, measured by an earlier session (issue 18).
JUPYTER_SCHEDULER_S = 2.6


def write_notebook(folder) -> str:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells.append(nbformat.v4.new_code_cell("import time\nprint(repr(time.time()))"))
    path = folder / "one_cell.ipynb"
    nbformat.write(notebook, path)
    return str(path)


def measure(runs: int, every: float, spares: int) -> dict:
    os.environ["NBSCHED_SPARE_KERNELS"] = str(spares)
    with _common.Runner() as runner:
        client = runner.client
        client.deploy(write_notebook(runner.home))
        start = math.ceil(time.time() + 2)
        client.schedule(
            "one_cell", name="nb", every=f"{every:g}s", start=datetime.fromtimestamp(start, UTC), repeats=runs
        )
        _common.wait_until(start + runs * every + 1)
        _common.wait_all_finished(client, timeout=60)
        rows = sorted(_common.history_records(client, job="nb"), key=lambda r: r["scheduled_at"])
        figures = {"lag": [], "cell": [], "finished": [], "statuses": [r["status"] for r in rows]}
        for row in rows:
            if row["status"] != "ok":
                continue
            scheduled = _common.epoch(row["scheduled_at"])
            cell_time = float(_printed(row["output"]))
            figures["lag"].append((_common.epoch(row["started_at"]) - scheduled) * 1000)
            figures["cell"].append(cell_time - scheduled)
            figures["finished"].append(_common.epoch(row["finished_at"]) - scheduled)
    return figures


def _printed(path: str) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for o in notebook.cells[0].outputs).strip()


def report(title: str, figures: dict) -> None:
    statuses = figures["statuses"]
    print(f"{title}: {len(statuses)} runs, {statuses.count('ok')} ok, others {sorted(set(statuses) - {'ok'})}")
    if not figures["finished"]:
        return
    print(f"  first run: fire -> cell {figures['cell'][0]:.3f} s, fire -> finished {figures['finished'][0]:.3f} s")
    rest = {key: values[1:] for key, values in figures.items() if key != "statuses"}
    print(f"  runs 2..{len(statuses)}: fire lag {_common.spread(rest['lag'], 'ms', 1)}")
    print(f"  runs 2..{len(statuses)}: fire -> cell {_common.spread(rest['cell'], 's', 3)}")
    print(f"  runs 2..{len(statuses)}: fire -> finished {_common.spread(rest['finished'], 's', 3)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between fires")
    options = parser.parse_args()
    warm = measure(options.runs, options.every, spares=1)
    report("with a spare kernel (NBSCHED_SPARE_KERNELS=1)", warm)
    cold = measure(options.runs, options.every, spares=0)
    report("without spares (NBSCHED_SPARE_KERNELS=0)", cold)
    p50_warm = _common.percentile(warm["finished"][1:], 50)
    p50_cold = _common.percentile(cold["finished"][1:], 50)
    print(f"jupyter-scheduler: ~{JUPYTER_SCHEDULER_S} s per 1-cell job (measured by an earlier session, not here)")
    print(
        f"summary: fire -> finished p50 {p50_warm:.3f} s with a spare kernel, {p50_cold:.3f} s without; "
        f"fire lag p99 {_common.percentile(warm['lag'][1:], 99):.1f} ms; "
        f"{JUPYTER_SCHEDULER_S / p50_warm:.1f}x faster than jupyter-scheduler's ~{JUPYTER_SCHEDULER_S} s"
    )


if __name__ == "__main__":
    main()
