"""The tutorials run top to bottom in a real kernel, and a job outlives the kernel that scheduled it."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import REPO, wait_until
from nbclient import NotebookClient

import nbsched

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def shown_text(notebook) -> str:
    """What the code cells printed, and the plain text they displayed (the magics' confirmations)."""
    return "".join(_text_of(output) for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


def _text_of(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "display_data" and set(output.data) == {"text/plain"}:
        return output.data["text/plain"] + "\n"
    return ""


def test_there_are_four_tutorials():
    assert [path.name for path in NOTEBOOKS] == [
        "01-quickstart.ipynb",
        "02-data-sync.ipynb",
        "03-cron-and-timezones.ipynb",
        "04-notebook-jobs.ipynb",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_tutorial_runs_top_to_bottom_and_stops_its_runner(path: Path, home: Path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": path.parent}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    text = shown_text(notebook)
    assert "UsageError" not in text and "warning:" not in text
    assert f"NBSCHED_HOME = {home}" in text  # the test's home was kept, not replaced by a temp dir
    assert text.rstrip().endswith(" stopped")  # the last cell stopped the runner
    assert not (home / "runner.sock").exists()


@pytest.mark.slow
def test_runner_keeps_firing_a_job_after_the_kernel_that_scheduled_it_is_shut_down(home: Path):
    from jupyter_client.manager import start_new_kernel

    manager, kernel = start_new_kernel(kernel_name="python3")
    try:
        for code in (
            "%load_ext nbsched",
            "%%service kernel.tick\nself.response.payload = 'tick'",
            "%schedule every 1s kernel.tick --name tick",
        ):
            reply = kernel.execute_interactive(code, timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kernel.stop_channels()
        manager.shutdown_kernel(now=False)
    assert not manager.is_alive()
    client = nbsched.connect(autostart=False)
    try:
        before = len(client.history(job="tick"))
        wait_until(lambda: len(client.history(job="tick")) >= before + 3, timeout=20, what="3 more runs of tick")
        assert set(client.history(job="tick")["status"]) <= {"ok", "running"}
    finally:
        client.close()
