"""Notebooks as services (DESIGN.md 6b): real notebooks run in real kernels by a real runner.

Parameters injected after the ``parameters`` cell, a failing cell named in the run's error, a timeout that
kills the kernel, spare kernels booted ahead and never reused, no kernel left behind by a stopped or killed
runner, and wrong input refused in one line at deploy or in the run's error.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from conftest import alive, run_cli, stop_runner, wait_until
from IPython.core.error import UsageError

import nbsched
from nbsched.client.api import source_units
from nbsched.errors import DeployError, InvalidInput
from nbsched.worker.notebook import INJECTED_TAG, inject_parameters, parameter_lines


def write_notebook(path: Path, *sources: str, parameters: str | None = None, kernel: str | None = "python3") -> Path:
    """A notebook file with a ``parameters`` cell (if given) and then a code cell per source."""
    notebook = nbformat.v4.new_notebook()
    if kernel:
        notebook.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    if parameters is not None:
        notebook.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    notebook.cells.append(nbformat.v4.new_markdown_cell("# A report"))
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in sources)
    nbformat.write(notebook, path)
    return path


def kernel_pids(home: Path) -> set[int]:
    """The kernels the home's workers started (their command lines name a connection file under home/kernels)."""
    folder = str(home / "kernels")
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if folder in (entry / "cmdline").read_bytes().decode(errors="replace") and alive(int(entry.name)):
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


def printed(path: str) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)


@pytest.fixture
def one_worker(home, monkeypatch) -> nbsched.Client:
    """A runner with one worker (so consecutive runs meet the same spare kernels)."""
    monkeypatch.setenv("NBSCHED_WORKERS", "1")
    client = nbsched.connect()
    yield client
    client.close()


# -- parameters, without a kernel --------------------------------------------------------
def test_parameters_go_after_the_parameters_cell_as_python_literals(tmp_path):
    path = write_notebook(tmp_path / "daily.ipynb", "print(region)", parameters="region = 'us'")
    notebook = nbformat.read(path, as_version=4)
    injected = inject_parameters(notebook, {"region": "eu", "days": [1, 2], "on": True, "none": None})
    tags = [cell.get("metadata", {}).get("tags", []) for cell in injected["cells"]]
    assert tags[:2] == [["parameters"], [INJECTED_TAG]]
    assert injected["cells"][1]["source"] == "# Parameters\nregion = 'eu'\ndays = [1, 2]\non = True\nnone = None\n"
    again = inject_parameters(injected, {"region": "asia"})  # a copy run before: its injected cell is replaced
    assert sum(INJECTED_TAG in (c.get("metadata", {}).get("tags") or []) for c in again["cells"]) == 1
    assert inject_parameters(notebook, None) == notebook


def test_without_a_parameters_cell_parameters_go_on_top(tmp_path):
    notebook = nbformat.read(write_notebook(tmp_path / "n.ipynb", "x"), as_version=4)
    assert inject_parameters(notebook, {"x": 1})["cells"][0]["source"] == "# Parameters\nx = 1\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"my-key": 1}, "Parameter 'my-key' of the extra cannot be a Python variable name"),
        ({"class": 1}, "Parameter 'class' of the extra cannot be a Python variable name"),
        ([1, 2], 'must be a JSON object of parameters, e.g. {"region": "eu"}; got a list'),
        ("not json", "must be a JSON object of parameters"),
        ({"x": float("nan")}, "Parameter 'x' = nan cannot be written as a Python literal"),
        ({"x": {1, 2}}, "Parameter 'x' = {1, 2} cannot be written as a Python literal"),
    ],
)
def test_a_parameter_that_cannot_be_a_python_literal_is_refused(extra, message):
    with pytest.raises(InvalidInput) as caught:
        parameter_lines(extra)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.field == "extra"


def test_a_file_that_is_neither_python_nor_a_notebook_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DeployError, match=r"data.csv: only Python files \(.py\) and notebooks \(.ipynb\) can be"):
        source_units(str(tmp_path / "data.csv"))


# -- deploying -----------------------------------------------------------------------------
def test_bad_notebooks_are_refused_at_deploy_in_one_line(client, tmp_path):
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    (tmp_path / "plain.ipynb").write_text('{"a": 1}')
    write_notebook(tmp_path / "nokernel.ipynb", "1", kernel=None)
    write_notebook(tmp_path / "rkernel.ipynb", "1", kernel="ir-not-installed")
    (tmp_path / "badmeta.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": [], "cells": []}')
    (tmp_path / "badcell.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ["x"]}')
    expected = {
        "broken": "Cannot deploy {}: it is not valid notebook JSON (",
        "plain": "Cannot deploy {}: it is JSON but not a notebook (no 'cells' list).",
        "nokernel": "Cannot deploy {}: its metadata names no kernel (metadata.kernelspec.name)",
        "rkernel": "Cannot deploy {}: no kernel named 'ir-not-installed' is installed where the runner runs",
        "badmeta": "Cannot deploy {}: its metadata is not a JSON object.",
        "badcell": "Cannot deploy {}: cell 1 is not a notebook cell",
    }
    for stem, message in expected.items():
        path = (tmp_path / f"{stem}.ipynb").resolve()
        with pytest.raises(DeployError) as caught:
            client.deploy(str(path))
        assert str(caught.value).startswith(message.format(path)) and "\n" not in str(caught.value)
    assert "broken" not in list(client.services()["name"])  # nothing stored
    result = run_cli("deploy", str(tmp_path / "rkernel.ipynb"))
    assert result.returncode != 0 and "no kernel named 'ir-not-installed'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_deploy_by_cli_and_magic_names_the_service_after_the_stem(client, ip, tmp_path, capsys, home):
    path = write_notebook(tmp_path / "daily.ipynb", "print('hi')")
    result = run_cli("deploy", str(path), "--html", home=home, check=True)
    assert result.stdout.startswith("deployed daily (version ")
    ip.run_line_magic("schedule", f"deploy {path}")
    assert capsys.readouterr().out.startswith("deployed daily (version ")
    services = client.services().set_index("name")
    assert services.loc["daily", "class_name"] == "<notebook>"
    (tmp_path / "x.txt").write_text("notes\n")
    with pytest.raises(UsageError, match="only Python files"):
        ip.run_line_magic("schedule", f"deploy {tmp_path / 'x.txt'} --html")  # not a notebook: one line
    (tmp_path / "svc.py").write_text("x = 1\n")
    with pytest.raises(DeployError, match="html applies to notebooks"):
        client.deploy(str(tmp_path / "svc.py"), html=True)


# -- running -------------------------------------------------------------------------------
def test_runs_inject_parameters_name_the_failing_cell_and_use_fresh_spare_kernels(one_worker, tmp_path, home):
    client = one_worker
    path = write_notebook(
        tmp_path / "report.ipynb",
        "import os\nprint('region', region, 'kernel', os.getpid())",
        "1 / 0 if region == 'bad' else None",
        "os._exit(1) if region == 'die' else None",
        parameters="region = 'us'",
    )
    client.deploy(str(path), html=True)
    first = client.wait(client.invoke("report", {"region": "eu"}), timeout=60)
    assert first["status"] == "ok", first
    assert first["output"] == str(home / "outputs" / "report" / f"{first['run_id']}.ipynb")
    copy = nbformat.read(first["output"], as_version=4)
    assert copy.cells[1].metadata.tags == [INJECTED_TAG] and "region = 'eu'" in copy.cells[1].source
    assert "region eu kernel" in printed(first["output"])
    assert Path(first["output"]).with_suffix(".html").read_text().startswith("<!DOCTYPE html>")
    assert "cell 1/6: region = 'us'" in first["logs"] and "cell 4/6: import os" in first["logs"]
    first_kernel = int(printed(first["output"]).split()[-1])

    wait_until(lambda: kernel_pids(home) - {first_kernel}, timeout=30, what="a spare kernel booted ahead")
    spare = kernel_pids(home) - {first_kernel}
    assert not alive(first_kernel)  # the used kernel was shut down
    failed = client.wait(client.invoke("report", {"region": "bad"}), timeout=60)
    assert failed["status"] == "error"
    assert (
        failed["error"]
        == "CellError: cell 5 (1 / 0 if region == 'bad' else None) raised ZeroDivisionError: division by zero"
    )
    assert "ZeroDivisionError" in failed["traceback"] and "\x1b[" not in failed["traceback"]
    assert Path(failed["output"]).exists()  # the copy, saved up to the failing cell
    second_kernel = int(printed(failed["output"]).split()[-1])
    assert second_kernel in spare  # the run took the spare: no wait for a kernel to boot

    died = client.wait(client.invoke("report", {"region": "die"}), timeout=60)
    assert died["status"] == "error" and died["error"].startswith("CellError: cell 6 (os._exit(1) if region == 'die'")
    assert "the kernel died" in died["error"]

    with pytest.raises(InvalidInput, match="Parameter 'my-key' of the extra cannot be a Python variable name"):
        client.invoke("report", {"my-key": 1})  # refused before a run is stored
    with pytest.raises(InvalidInput, match="Parameter 'class' of the extra"):
        client.schedule("report", name="bad", every="1h", extra={"class": 1})
    assert "bad" not in list(client.jobs()["name"])
    assert len(client.history(service="report")) == 3


def test_scheduling_a_notebook_job_boots_a_kernel_that_its_first_run_takes(client, tmp_path, home):
    client.deploy(str(write_notebook(tmp_path / "pid.ipynb", "import os\nprint(os.getpid())")))
    assert not kernel_pids(home)  # deploying alone boots nothing
    client.schedule("pid", name="pid", every="1d", start=datetime.now(UTC) + timedelta(hours=1))
    booted = wait_until(lambda: kernel_pids(home), timeout=30, what="a kernel booted for the job ahead of its fire")
    run = client.wait(client.execute("pid"), timeout=60)  # goes where the fire would: to the worker with the spare
    assert run["status"] == "ok" and int(printed(run["output"])) in booted


def test_spare_kernels_are_kept_only_for_notebooks_with_an_active_job(client, tmp_path, home):
    """A paused or deleted job no longer holds a booted kernel; a resumed one gets its spare again."""
    client.deploy(str(write_notebook(tmp_path / "pid.ipynb", "import os\nprint(os.getpid())")))
    later = datetime.now(UTC) + timedelta(hours=1)
    client.schedule("pid", name="pid", every="1d", start=later)
    wait_until(lambda: kernel_pids(home), timeout=30, what="a spare kernel booted for the job")
    client.pause("pid")
    wait_until(lambda: not kernel_pids(home), timeout=30, what="the paused job's spare kernel shut down")
    client.resume("pid")
    wait_until(lambda: kernel_pids(home), timeout=30, what="a spare kernel booted again on resume")
    run = client.wait(client.execute("pid"), timeout=60)  # a run with the job active: a spare follows it
    assert run["status"] == "ok"
    wait_until(lambda: kernel_pids(home) - {int(printed(run["output"]))}, timeout=30, what="a spare after the run")
    client.delete("pid")
    wait_until(lambda: not kernel_pids(home), timeout=30, what="the deleted job's spare kernel shut down")
    run = client.wait(client.invoke("pid"), timeout=60)  # on demand, no job: no spare is kept after it
    assert run["status"] == "ok"
    time.sleep(3)  # a spare would be booting by now
    assert not kernel_pids(home)


def test_an_executed_copy_that_cannot_be_saved_is_the_runs_error_and_a_failing_cell_stays_its_error(
    client, tmp_path, home
):
    client.deploy(str(write_notebook(tmp_path / "fine.ipynb", "print('ran')")))
    client.deploy(str(write_notebook(tmp_path / "broken.ipynb", "1 / 0")))
    (home / "outputs").mkdir(exist_ok=True)
    for name in ("fine", "broken"):
        (home / "outputs" / name).write_text("a file where the folder of its copies would go")
    fine = client.wait(client.invoke("fine"), timeout=60)
    assert fine["status"] == "error"
    assert fine["error"].startswith("OSError: The notebook ran, but its executed copy could not be saved to ")
    assert "cell 2/2: print('ran')" in fine["logs"] and "saving the executed notebook" in fine["logs"]
    broken = client.wait(client.invoke("broken"), timeout=60)
    assert broken["status"] == "error" and "raised ZeroDivisionError" in broken["error"]  # the cell's error stays


def test_a_timeout_kills_the_kernel(one_worker, tmp_path):
    client = one_worker
    cell = f"import os, time\nopen({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))"
    path = write_notebook(tmp_path / "slow.ipynb", cell + "\nif slow:\n    time.sleep(60)", parameters="slow = False")
    client.deploy(str(path))
    # A first run loads what notebook runs need and leaves a spare kernel: the timed run's cell starts at once.
    assert client.wait(client.invoke("slow"), timeout=60)["status"] == "ok"
    client.schedule("slow", name="slow", every="1h", timeout="3s", active=False, extra={"slow": True})
    run = client.wait(client.execute("slow"), timeout=60)
    assert run["status"] == "timeout"
    kernel = int((tmp_path / "pid").read_text())
    wait_until(lambda: not alive(kernel), timeout=10, what="the kernel killed with its run")


@pytest.mark.parametrize("how", ["stop", "SIGKILL"])
def test_no_kernel_or_worker_outlives_its_runner(home, tmp_path, how):
    """Stopped: its idle spare kernels go too. SIGKILLed in the middle of a run: the kernel running it and the
    spares die with their workers, which die with the runner (parent-death signals, no one left to clean up)."""
    client = nbsched.connect()
    cell = f"import os, time\nopen({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))"
    client.deploy(str(write_notebook(tmp_path / "quick.ipynb", cell)))
    client.deploy(str(write_notebook(tmp_path / "hang.ipynb", cell + "\ntime.sleep(60)")))
    assert client.wait(client.invoke("quick"), timeout=60)["status"] == "ok"
    used = int((tmp_path / "pid").read_text())
    wait_until(lambda: kernel_pids(home) - {used}, timeout=30, what="a spare kernel")
    if how == "SIGKILL":
        client.invoke("hang")
        wait_until(lambda: int((tmp_path / "pid").read_text()) != used, timeout=30, what="the hanging cell")
    kernels = kernel_pids(home)
    assert kernels and used not in kernels
    runner = client.ping()["pid"]
    workers = [int(p) for p in Path(f"/proc/{runner}/task/{runner}/children").read_text().split()]
    client.close()
    if how == "stop":
        stop_runner(home)
    else:
        os.kill(runner, signal.SIGKILL)
    wait_until(
        lambda: not any(alive(pid) for pid in kernels | set(workers)), timeout=15, what="kernels and workers gone"
    )


@pytest.mark.slow
def test_notebook_runs_go_on_with_every_kernel_of_the_user_closed(home, tmp_path):
    from jupyter_client.manager import start_new_kernel

    path = write_notebook(tmp_path / "tick.ipynb", "print('tick')")
    manager, kernel = start_new_kernel(kernel_name="python3")
    try:
        code = f"import nbsched\nc = nbsched.connect()\nc.deploy({str(path)!r})\nc.schedule('tick', every='1s')"
        reply = kernel.execute_interactive(code, timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        kernel.stop_channels()
        manager.shutdown_kernel(now=True)
    closed = time.time()
    client = nbsched.connect()
    runner = client.ping()["pid"]
    try:
        wait_until(
            lambda: (
                (h := client.history(job="tick", status="ok")).empty is False
                and (h["finished_at"].map(lambda t: t.timestamp()) > closed).sum() >= 2
            ),
            timeout=40,
            what="two notebook runs after the user's kernel closed",
        )
    finally:
        client.close()
    assert alive(runner)  # the same runner all along


def test_the_spare_count_is_at_most_what_a_worker_keeps_and_a_bad_value_is_said(monkeypatch, caplog):
    from nbsched import config
    from nbsched.worker.kernels import spare_count

    for text, expected in (("2", 2), ("0", 0), ("-3", 0), ("99", config.MAX_SPARE_KERNELS)):
        monkeypatch.setenv("NBSCHED_SPARE_KERNELS", text)
        assert spare_count() == expected
    monkeypatch.setenv("NBSCHED_SPARE_KERNELS", "many")
    assert spare_count() == config.SPARE_KERNELS
    assert "NBSCHED_SPARE_KERNELS='many' is not a whole number" in caplog.text
