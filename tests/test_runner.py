"""The real runner process: detached start, firing, run records, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_cli, stop_runner, wait_until

import nbsched
from nbsched.errors import RunnerError, WaitTimeout
from nbsched.model.runs import RUN_FIELDS

pytestmark = pytest.mark.slow


def runner_pid(home) -> int:
    return int((home / "runner.pid").read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_detached_runner_keeps_firing_after_the_process_that_started_it_exits(home):
    script = (
        "import nbsched\n"
        "c = nbsched.connect()\n"
        "c.deploy('services/hello.py')\n"
        "c.schedule('api.hello', name='beat', every='1s')\n"
    )
    starter = subprocess.Popen([sys.executable, "-c", script], cwd=str(REPO))
    assert starter.wait(timeout=60) == 0
    client = nbsched.connect(autostart=False)
    pid = runner_pid(home)
    assert pid != starter.pid and alive(pid)
    count = len(client.history(job="beat"))
    wait_until(lambda: len(client.history(job="beat")) >= count + 2, timeout=20, what="two more fires after exit")
    runs = client.history(job="beat")
    assert "ok" in set(runs["status"]) and set(runs["status"]) <= {"ok", "running", "skipped"}
    # On a busy machine a run may outlast the second before the next fire: that one is skipped (overlap=skip),
    # and says so; nothing else may go wrong.
    assert all("was still running (overlap=skip)" in error for error in runs[runs["status"] == "skipped"]["error"])


def test_a_run_records_every_field_with_logs_and_output(client):
    client.schedule("api.hello", name="hello", every="1h", extra='{"who": "tests"}')
    run_id = client.execute("hello")
    record = client.wait(run_id, timeout=30)
    assert record["status"] == "ok"
    assert record["trigger"] == "manual" and record["job"] == "hello" and record["service"] == "api.hello"
    assert record["output"] == '{"greeted": "tests", "channel": "manual"}'
    assert "INFO api.hello: hello, tests" in record["logs"]
    assert f"printed lines are captured too (cid {record['cid']})" in record["logs"]
    assert record["service_version"] == client.services().set_index("name").loc["api.hello", "version"]
    assert record["duration_ms"] >= 0 and record["delay_ms"] >= 0
    assert record["runner"].endswith(f":{runner_pid(client.settings.home)}")
    assert set(record) == set(RUN_FIELDS)


def test_a_failing_service_records_the_error_and_traceback(client):
    client.deploy(
        "from nbsched import Service\n\n"
        "class Broken(Service):\n"
        "    name = 'api.broken'\n\n"
        "    def handle(self):\n"
        "        raise ValueError('the source is empty')\n"
    )
    record = client.wait(client.invoke("api.broken"), timeout=30)
    assert record["status"] == "error"
    assert record["error"] == "ValueError: the source is empty"
    assert "raise ValueError('the source is empty')" in record["traceback"]


def test_a_worker_that_dies_is_recorded_and_replaced(client):
    client.deploy(
        "import os\nfrom nbsched import Service\n\n"
        "class Crash(Service):\n"
        "    name = 'api.crash'\n\n"
        "    def handle(self):\n"
        "        os._exit(7)\n"
    )
    record = client.wait(client.invoke("api.crash"), timeout=30)
    assert record["status"] == "error"
    assert "worker process running this service died (exit code 7)" in record["error"]
    assert client.wait(client.invoke("api.hello"), timeout=30)["status"] == "ok"


def test_wait_gives_up_with_a_clear_error(client):
    client.deploy(
        "import time\nfrom nbsched import Service\n\n"
        "class Nap(Service):\n"
        "    name = 'api.nap'\n\n"
        "    def handle(self):\n"
        "        time.sleep(3)\n"
    )
    run_id = client.invoke("api.nap")
    with pytest.raises(WaitTimeout, match=f"Run {run_id} did not finish within 0.2s"):
        client.wait(run_id, timeout=0.2)
    assert client.wait(run_id, timeout=30)["status"] == "ok"


def test_a_second_runner_for_the_same_home_finds_the_first(client):
    pid = runner_pid(client.settings.home)
    result = run_cli("runner", "start", home=client.settings.home)
    assert result.returncode == 0
    assert f"A runner is already running for {client.settings.home} (pid {pid})" in result.stdout
    direct = subprocess.run([sys.executable, "-m", "nbsched.runner"], capture_output=True, text=True, timeout=30)
    assert direct.returncode == 3 and f"(pid {pid})" in direct.stderr
    assert alive(pid)


def test_sigterm_stops_the_runner_cleanly_and_keeps_the_schedule(client):
    home = client.settings.home
    client.schedule("api.hello", name="hello", every="1h")
    pid = runner_pid(home)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=20, what="runner exit")
    assert not (home / "runner.sock").exists() and not (home / "runner.pid").exists()
    with pytest.raises(RunnerError) as refused:
        nbsched.connect(autostart=False)
    assert str(refused.value) == f"No runner is running for NBSCHED_HOME={home}"
    assert refused.value.__notes__ == ["(start one: nbsched.connect())"]
    restarted = nbsched.connect()
    assert list(restarted.jobs()["name"]) == ["hello"]
    stop_runner(home)


def test_runner_status_and_stop_see_a_runner_that_does_not_answer_by_its_pid_lock(client):
    """A runner too busy to answer within the ping's timeout (here: its socket is gone) is still running: status
    says so, stop stops it (SIGTERM); only once it has exited does stop say no runner was running."""
    home = client.settings.home
    pid = runner_pid(home)
    (home / "runner.sock").unlink()
    status = run_cli("runner", "status", home=home)
    assert status.stdout.strip() == (
        f"runner (pid {pid}) is running for {home} but did not answer: it accepts no connection on its socket"
    ), status.stderr
    stopped = run_cli("runner", "stop", home=home)
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"runner (pid {pid}) stopped", stopped.stderr
    wait_until(lambda: not alive(pid), timeout=20, what="runner exit")
    assert run_cli("runner", "stop", home=home).stdout.strip() == f"no runner was running for {home}"


def test_home_socket_and_token_are_private(client):
    home = client.settings.home
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    assert oct((home / "runner.sock").stat().st_mode & 0o777) == "0o600"
    assert oct((home / "token").stat().st_mode & 0o777) == "0o600"


def test_interval_fires_stay_on_the_grid_under_a_real_runner(client):
    start = time.time() + 1.0
    client.schedule(
        "api.hello", name="grid", every="1s", start=f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(start))}"
    )
    wait_until(lambda: len(client.history(job="grid", status="ok")) >= 3, timeout=20, what="three runs")
    frame = client.history(job="grid").sort_values("scheduled_at")  # every fire, a skipped one too (busy machine)
    gaps = frame["scheduled_at"].diff().dropna().dt.total_seconds()
    assert set(gaps) == {1.0}
    assert (frame["scheduled_at"].dt.microsecond == 0).all()


def test_runs_queued_behind_a_slow_run_move_to_another_worker(client):
    client.deploy(
        "import time\nfrom nbsched import Service\n\n"
        "class Slow(Service):\n"
        "    name = 'api.slow'\n\n"
        "    def handle(self):\n"
        "        time.sleep(4)\n"
    )
    slow = client.invoke("api.slow")
    began = time.monotonic()
    quick = [client.invoke("api.hello") for _ in range(20)]
    for run_id in quick:
        assert client.wait(run_id, timeout=30)["status"] == "ok"
    assert time.monotonic() - began < 3, "a quick run waited for the slow one"
    assert client.run(slow)["status"] == "running"


def test_pausing_takes_back_a_fire_already_handed_to_a_worker(client):
    client.schedule("api.hello", name="soon", at="in 3s")
    # The fire is claimed half a second ahead and handed to a worker to hold until its time.
    # (raw rows, not DataFrames: the window before the fire is only half a second)
    wait_until(lambda: client.job("soon")["fires"] == 1, timeout=10, what="the fire to be claimed")
    assert client.history_rows(job="soon")["rows"] == []  # claimed, but not shown before its time
    client.pause("soon")

    def ended():
        result = client.history_rows(job="soon")
        records = [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]
        return records and records[0]["status"] != "running" and records[0]

    record = wait_until(ended, timeout=10, what="the held run to end")
    assert record["status"] == "skipped"
    assert record["error"] == "Job 'soon' was paused before this run started."
    assert record["started_at"] is None
