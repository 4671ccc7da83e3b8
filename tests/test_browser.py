"""The dashboard in a real JupyterLab, in headless Chromium (Debian's /usr/bin/chromium; Playwright downloads nothing).

One JupyterLab server and one page serve the whole module: a notebook creates a job and shows
``nbsched.ui()``; the tests then click in the page and check the runner's state through a client.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import HELLO_SERVICE, REPO, run_cli, stop_runner, wait_until

import nbsched

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK_CELLS = [
    'import nbsched\nclient = nbsched.connect()\nclient.schedule("api.hello", name="nightly-report", cron="0 2 * * *")',
    "dash = nbsched.ui()\ndash",
]
LAB_SETTINGS = {  # no news or update toasts over the page
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


@dataclass
class Lab:
    page: object
    client: nbsched.Client
    home: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_notebook(path: Path, sources: list[str] = NOTEBOOK_CELLS) -> None:
    cells = [
        {"id": f"cell-{index}", "cell_type": "code", "metadata": {}, "source": source, "outputs": []}
        | {"execution_count": None}
        for index, source in enumerate(sources)
    ]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))


def _write_lab_settings(settings_dir: Path) -> None:
    for relative, values in LAB_SETTINGS.items():
        target = settings_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


def _start_lab(root: Path, home: Path, port: int, token: str) -> subprocess.Popen:
    env = dict(os.environ, NBSCHED_HOME=str(home))  # the kernel inherits it
    for variable, folder in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "settings")):
        env[variable] = str(root.parent / folder)
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(root.parent / "workspaces")
    _write_lab_settings(root.parent / "settings")
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.allow_root=True",  # CI containers run as root
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = (root.parent / "lab.log").open("w")
    return subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


def _lab_answers(server: subprocess.Popen, log: Path, port: int, token: str) -> bool:
    if server.poll() is not None:
        raise AssertionError(f"JupyterLab exited ({server.returncode}):\n{log.read_text()[-3000:]}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def _kernel_idle(port: int, token: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sessions?token={token}", timeout=2) as reply:
            sessions = json.load(reply)
    except OSError:
        return False
    return any(session["kernel"]["execution_state"] == "idle" for session in sessions)


def _run_all_cells(page) -> None:
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def browser_tools():
    """Playwright's sync API, or a skip that says what is missing."""
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install playwright)")


@contextlib.contextmanager
def notebook_page(work: Path, home: Path, notebook: str, shot: str) -> Iterator[object]:
    """A JupyterLab on ``work / "root"`` (its kernels use ``home``) and a Chromium page with ``notebook`` open and
    its kernel idle; on the way out a screenshot ``shot`` (for a failed run), and everything stopped."""
    sync_api = browser_tools()
    root = work / "root"
    port, token = _free_port(), secrets.token_hex(16)
    server = _start_lab(root, home, port, token)
    try:
        wait_until(
            lambda: _lab_answers(server, work / "lab.log", port, token),
            timeout=90,
            interval=0.3,
            what="JupyterLab to answer",
        )
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1100})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook}?token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            wait_until(lambda: _kernel_idle(port, token), timeout=90, interval=0.3, what="the notebook's kernel")
            try:
                yield page
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@contextlib.contextmanager
def lab_of(notebook: str, cells: list[str], shot: str, fill: Callable[[Path], None] | None = None) -> Iterator[Lab]:
    """A runner in a temp home with the hello service (and, given ``fill``, what it writes into the home's store
    while no runner runs), and JupyterLab's page of a notebook of ``cells``; all removed afterwards."""
    browser_tools()
    work = Path(tempfile.mkdtemp(prefix="nbs-lab-"))
    home, root = work / "home", work / "root"
    home.mkdir(mode=0o700)
    root.mkdir()
    _write_notebook(root / notebook, cells)
    client = None
    try:
        client = nbsched.connect(home)
        client.deploy(str(HELLO_SERVICE))
        if fill is not None:
            client.shutdown()
            wait_until(lambda: not (home / "runner.sock").exists(), timeout=30, what="the runner to stop")
            fill(home)
            client = nbsched.connect(home)
        with notebook_page(work, home, notebook, shot) as page:
            yield Lab(page=page, client=client, home=home)
    finally:
        if client is not None:
            client.close()
        stop_runner(home)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with lab_of("dashboard.ipynb", NOTEBOOK_CELLS, "lab-last.png") as opened:
        _run_all_cells(opened.page)
        opened.page.locator(".nbsched-dashboard").wait_for(timeout=90_000)
        yield opened


def _dashboard_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.locator(".nbsched-dashboard").screenshot(path=str(path))
    return path


ROW_BUTTONS = ("execute", "toggle", "edit", "delete")


def button_of(job: str, action: str) -> str:
    """The selector of a job row's button (one of ``ROW_BUTTONS``): the row's cells name the job, and its
    buttons follow them, in this order, in the table's grid."""
    buttons = ROW_BUTTONS[: ROW_BUTTONS.index(action) + 1]
    return f".nbsched-job-row:has(.nbsched-job-{job})" + "".join(f" + .nbsched-{button}" for button in buttons)


def test_dashboard_renders_and_lists_the_job_made_in_an_earlier_cell(lab):
    row = lab.page.locator(".nbsched-job-nightly-report")
    row.wait_for()

    assert "0 2 * * *" in row.inner_text()
    assert lab.page.get_by_text("Error displaying widget").count() == 0
    assert lab.page.locator(".nbsched-dashboard .lm-TabBar-tab").count() == 5


def test_execute_button_records_a_manual_run(lab):
    lab.page.locator(button_of("nightly-report", "execute")).click()

    wait_until(lambda: len(lab.client.history(job="nightly-report")) == 1, timeout=30, what="a run from the button")
    assert list(lab.client.history(job="nightly-report")["trigger"]) == ["manual"]
    lab.page.locator(".nbsched-jobs-status", has_text="started").wait_for()


def test_form_refuses_an_invalid_cron_inline(lab):
    page = lab.page
    page.locator(".nbsched-dashboard .lm-TabBar-tab", has_text="New / edit job").click()
    page.locator(".nbsched-form-name input").fill("browser-made")
    page.locator(".nbsched-form-kind button", has_text="cron").click()
    page.locator(".nbsched-form-cron input").fill("61 * * * *")

    page.locator(".nbsched-error-cron", has_text="Invalid cron expression").wait_for()
    page.locator(".nbsched-form-save").click()
    page.locator(".nbsched-error-cron", has_text="Invalid cron expression").wait_for()
    assert "browser-made" not in {job["name"] for job in _cli_jobs(lab.home)}


def test_saving_a_valid_job_from_the_form_makes_it_appear_in_nbsched_jobs(lab):
    page = lab.page
    page.locator(".nbsched-dashboard .lm-TabBar-tab", has_text="New / edit job").click()
    page.locator(".nbsched-form-name input").fill("browser-made")
    page.locator(".nbsched-form-kind button", has_text="cron").click()
    page.locator(".nbsched-form-cron input").fill("*/10 9-17 * * mon-fri")
    page.locator(".nbsched-cron-preview", has_text="Next runs").wait_for()
    page.locator(".nbsched-form-save").click()

    page.locator(".nbsched-form-result", has_text="Created job 'browser-made'").wait_for()
    job = next(job for job in _cli_jobs(lab.home) if job["name"] == "browser-made")
    assert (job["type"], job["service"]) == ("cron", "api.hello")

    page.locator(".nbsched-dashboard .lm-TabBar-tab", has_text=re.compile(r"^Jobs$")).click()
    page.locator(".nbsched-job-browser-made").wait_for()
    shot = _dashboard_screenshot(page, "dashboard.png")
    assert shot.stat().st_size > 10_000


def _cli_jobs(home: Path) -> list[dict]:
    result = run_cli("jobs", "--format", "json", home=home, check=True)
    return json.loads(result.stdout)
