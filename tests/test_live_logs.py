"""Live logs: a running run's lines reach ``client.logs``/``follow``, ``nbsched logs --follow`` and
``%schedule logs --follow`` as they are written, and following ends with the run (issue 18 item 5)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
from conftest import run_cli, wait_until
from IPython.core.error import UsageError

from nbsched.errors import InvalidInput, RunNotFound
from nbsched.runner.livelogs import LiveLogs, RunLines
from nbsched.worker import pipe
from nbsched.worker.livelogs import LiveLogs as WorkerLiveLogs

#: Prints a line, then waits for a file to appear before it prints the rest: the test decides when it ends.
SLOW_SOURCE = """
import os, time
from nbsched import Service

class Slow(Service):
    name = "slow.steps"

    def handle(self):
        gate = self.request.payload["gate"]
        print("step 1")
        self.logger.info("step 2 of %d", 3)
        while not os.path.exists(gate):
            time.sleep(0.02)
        print("last step")
        if self.request.payload.get("fail"):
            raise ValueError("it went wrong")
"""


def _start_slow(client, tmp_path, fail=False) -> tuple[int, object]:
    client.deploy(SLOW_SOURCE)
    gate = tmp_path / "gate"
    return client.invoke("slow.steps", extra={"gate": str(gate), "fail": fail}), gate


# -- the worker's end ------------------------------------------------------------------
def test_the_worker_sends_only_new_lines_of_the_run_in_hand_split_at_newlines_and_masked():
    sent, entries = [], ["one", "two\nthree"]
    current = [(7, entries)]
    live = WorkerLiveLogs(lambda: current[0], sent.append, lambda text: text.replace("secret", "***"))
    assert live.look() is True
    assert sent == [pipe.Logs(7, 0, ["one", "two", "three"])]
    assert live.look() is False  # nothing new: nothing sent
    entries.append("my secret")
    live.look()
    assert sent[-1] == pipe.Logs(7, 3, ["my ***"])
    current[0] = (8, ["a"])  # the next run starts from its first line
    live.look()
    assert sent[-1] == pipe.Logs(8, 0, ["a"])
    current[0] = None
    assert live.look() is False and len(sent) == 3


def test_a_chatty_batch_sends_only_the_lines_the_runner_keeps_each_cut_short(monkeypatch):
    from nbsched import config

    monkeypatch.setattr(config, "LIVE_LOG_LINES", 3)
    sent, entries = [], [f"line {n}" for n in range(5)] + ["x" * (config.LIVE_LOG_LINE_CHARS + 7)]
    WorkerLiveLogs(lambda: (1, entries), sent.append, lambda text: text).look()
    (message,) = sent
    assert (message.first, message.lines[:2]) == (3, ["line 3", "line 4"])
    assert message.lines[2] == "x" * config.LIVE_LOG_LINE_CHARS + " ... (7 more characters)"


def test_the_logs_frame_round_trips_through_the_pipe_and_bumped_its_version():
    import io

    stream = io.BytesIO(pipe.encode(pipe.Logs(3, 0, ["x", "y"])))
    assert pipe.read(stream) == pipe.Logs(3, 0, ["x", "y"])
    assert pipe.VERSION >= 3


# -- the runner's end --------------------------------------------------------------------
def test_the_runner_keeps_a_bounded_tail_per_running_run_with_absolute_offsets():
    running = {1}
    live = LiveLogs(running.__contains__, limit=3)
    live.add(1, 0, ["a", "b"])
    live.add(2, 0, ["late"])  # a run that is not running here: dropped
    assert live.read(1, 0) == (["a", "b"], 0)
    live.add(1, 2, ["c", "d", "e"])
    assert live.read(1, 0) == (["c", "d", "e"], 2)  # a and b are no longer kept
    assert live.read(1, 4) == (["e"], 0)
    assert live.read(1, 5) == ([], 0)
    assert live.read(2, 0) is None
    live.add(1, 10, ["k"])  # lines 5 to 9 were counted by the worker, not sent
    assert live.read(1, 0) == (["k"], 10) and live.read(1, 11) == ([], 0)
    running.discard(1)
    live.end(1)
    assert live.runs == {} and live.read(1, 0) is None


def test_a_waiting_follower_wakes_when_lines_come_and_when_the_run_ends():
    async def scenario():
        live = LiveLogs(lambda run_id: True)
        waiter = asyncio.create_task(live.wait(1, 0, 5.0))
        await asyncio.sleep(0.01)
        live.add(1, 0, ["hello"])
        started = time.monotonic()
        await waiter
        woke_on_line = time.monotonic() - started
        waiter = asyncio.create_task(live.wait(1, 1, 5.0))
        await asyncio.sleep(0.01)
        live.end(1)
        started = time.monotonic()
        await waiter
        return woke_on_line, time.monotonic() - started

    on_line, on_end = asyncio.run(scenario())
    assert on_line < 1.0 and on_end < 1.0


def test_run_lines_after_an_offset_past_the_end_is_empty():
    lines = RunLines(lines=__import__("collections").deque(["x"], maxlen=5), total=1)
    assert lines.after(3) == ([], 0)


# -- end to end: a real runner and worker ------------------------------------------------------
def test_a_running_runs_lines_come_before_it_ends_and_following_ends_with_it(client, tmp_path):
    run_id, gate = _start_slow(client, tmp_path)
    chunk = client.logs(run_id, after=0, wait=10)
    assert chunk["done"] is False and chunk["status"] == "running" and chunk["live"] is True
    assert chunk["lines"][0] == "step 1"
    seen = list(chunk["lines"])
    while len(seen) < 2:
        chunk = client.logs(run_id, after=chunk["next"], wait=10)
        seen += chunk["lines"]
    assert seen[1].endswith("INFO slow.steps: step 2 of 3")
    gate.touch()
    rest = list(client.follow(run_id))  # from the start: every line once, then it ends with the run
    assert rest[:2] == seen and rest[2] == "last step" and len(rest) == 3
    record = client.run(run_id)
    assert record["status"] == "ok" and record["logs"].split("\n") == rest


def test_logs_of_an_ended_run_are_its_stored_lines_after_the_offset(client):
    run_id = client.invoke("api.hello", extra={"who": "logs"})
    client.wait(run_id)
    everything = client.logs(run_id)
    assert everything["done"] is True and everything["status"] == "ok"
    assert everything["lines"] == (client.run(run_id)["logs"] or "").split("\n")[: len(everything["lines"])]
    later = client.logs(run_id, after=everything["next"], wait=5)  # nothing more: answered at once
    assert later["lines"] == [] and later["done"] is True


#: Bad ``logs`` requests: the arguments, the error and the start of its message.
BAD_LOGS_REQUESTS = [
    ({"after": -1}, InvalidInput, "Invalid after -1: use a line offset"),
    ({"after": "x"}, InvalidInput, "Invalid after 'x'"),
    ({"wait": 1e9}, InvalidInput, "Invalid wait 1000000000.0: use seconds to wait for new lines, 0 to 60"),
    ({"wait": True}, InvalidInput, "Invalid wait True"),
    ({"run_id": 424242}, RunNotFound, "No run with id 424242"),
    ({"run_id": "abc"}, RunNotFound, "Invalid run id 'abc'"),
]


def test_a_bad_logs_request_is_refused_by_name(client):
    run_id = client.invoke("api.hello")
    for args, error, message in BAD_LOGS_REQUESTS:
        with pytest.raises(error) as caught:
            client.call("logs", **{"run_id": run_id, **args})
        assert str(caught.value).startswith(message), args
    assert client.wait(run_id)["status"] == "ok"  # the runner goes on serving


def test_cli_follow_prints_lines_as_they_come_then_the_final_status_and_exits_by_it(client, tmp_path):
    run_id, gate = _start_slow(client, tmp_path, fail=True)
    command = [sys.executable, "-m", "nbsched", "logs", str(run_id), "--follow"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as follower:
        first = [follower.stdout.readline() for _ in range(2)]
        assert first == [f"run {run_id} (slow.steps): running\n", "step 1\n"]  # before the run has ended
        assert client.run(run_id)["status"] == "running"
        gate.touch()
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 1, err  # the run failed
    assert "last step\n" in out
    assert f"run {run_id}: error in " in out and "--- error\nValueError: it went wrong" in out
    finished = run_cli("logs", str(run_id), "--follow", home=client.settings.home)
    assert finished.returncode == 1 and "step 1\n" in finished.stdout and "it went wrong" in finished.stdout


def test_cli_follow_of_an_unknown_run_is_one_line_and_a_bad_id_does_not_parse(client):
    missing = run_cli("logs", "999", "--follow", home=client.settings.home)
    assert missing.returncode == 1 and missing.stderr.startswith("nbsched: error: No run with id 999")
    assert missing.stderr.count("\n") == 1 and missing.stdout == ""
    assert run_cli("logs", "abc", "--follow", home=client.settings.home).returncode == 2


def test_magic_follow_shows_the_lines_then_the_outcome(ip, client, tmp_path, capsys):
    run_id, gate = _start_slow(client, tmp_path)
    wait_until(lambda: client.logs(run_id)["lines"], what="the first live line")
    gate.touch()
    ip.run_line_magic("schedule", f"logs {run_id} --follow")
    out = capsys.readouterr().out
    assert "step 1" in out and "last step" in out and f"run {run_id}: ok in " in out
    with pytest.raises(UsageError, match="No run with id '999'"):
        ip.run_line_magic("schedule", "logs 999 --follow")


def test_the_dashboards_run_view_shows_a_running_runs_lines_then_its_end(client, tmp_path):
    import html
    import re

    from nbsched.frontends.ui import Dashboard

    def shown() -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", dash.history.details.value))

    run_id, gate = _start_slow(client, tmp_path)
    dash = Dashboard(client, auto_refresh=False)
    try:
        dash.history.show_run(run_id)
        wait_until(lambda: "step 1" in shown(), what="the first line in the run view")
        assert "running" in shown() and "last step" not in shown()
        gate.touch()
        wait_until(lambda: "last step" in shown() and "running" not in shown(), what="the run's end in the run view")
        assert "ok" in shown()
    finally:
        dash.history.follower.stop()
        dash.close()


def test_the_dashboards_run_view_shows_the_last_lines_of_a_run_that_logs_many(client, tmp_path, monkeypatch):
    import html
    import re

    from nbsched.frontends.ui import Dashboard, follow

    monkeypatch.setattr(follow, "SHOWN_LINES", 10)
    client.deploy(MANY_LINES_SOURCE)
    gate = tmp_path / "gate"
    run_id = client.invoke("many.lines", extra={"gate": str(gate)})
    dash = Dashboard(client, auto_refresh=False)

    def shown() -> list[str]:
        text = html.unescape(re.sub(r"<[^>]+>", "", dash.history.details.value))
        return text.split("Logs", 1)[-1].splitlines()

    try:
        dash.history.show_run(run_id)
        wait_until(lambda: "line 30" in shown(), what="the last line in the run view")
        lines = shown()
        assert "(20 earlier lines not shown; all of them are in the run's logs when it ends)" in lines
        assert [f"line {n}" for n in range(21, 31)] == [line for line in lines if line.startswith("line ")]
        gate.touch()
        wait_until(lambda: "line 1" in shown(), what="the stored logs, whole, once the run ended")
        assert [line for line in shown() if line.startswith("line ")] == [f"line {n}" for n in range(1, 31)]
    finally:
        dash.history.follower.stop()
        dash.close()


MANY_LINES_SOURCE = """
import os, time
from nbsched import Service

class Many(Service):
    name = "many.lines"

    def handle(self):
        for n in range(1, 31):
            print(f"line {n}")
        while not os.path.exists(self.request.payload["gate"]):
            time.sleep(0.02)
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_a_run_on_another_runner_of_a_shared_store_shows_its_logs_when_it_ends(pg_url, monkeypatch, tmp_path):
    from test_shared_runners import Fleet

    from nbsched.client.follow import follow_chunks

    fleet = Fleet(pg_url, 2, monkeypatch)
    try:
        here, there = fleet.clients
        there.deploy(SLOW_SOURCE)
        wait_until(lambda: "slow.steps" in {s["name"] for s in here.call("services")}, timeout=10, what="deploy")
        gate = tmp_path / "gate"
        run_id = there.invoke("slow.steps", extra={"gate": str(gate)})
        wait_until(lambda: there.logs(run_id)["lines"], what="the run started there")
        quiet = here.logs(run_id, wait=0.3)
        assert (quiet["done"], quiet["live"], quiet["lines"]) == (False, False, [])
        assert quiet["elsewhere"] == there.ping()["runner"]
        gate.touch()
        chunks = list(follow_chunks(here, run_id, wait=2))
        assert chunks[0][0].startswith(f"(run {run_id} runs on runner ") or chunks[0][0] == "step 1"
        lines = [line for chunk in chunks for line in chunk if not line.startswith("(run ")]
        assert lines[0] == "step 1" and lines[-1] == "last step" and len(lines) == 3
    finally:
        fleet.close()


def test_a_follow_interrupted_by_the_user_leaves_the_client_answering_the_next_request_right(client, tmp_path):
    import signal

    run_id, gate = _start_slow(client, tmp_path)
    wait_until(lambda: client.logs(run_id)["next"] >= 2, what="two live lines")

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            client.logs(run_id, after=2, wait=3)  # nothing new until the gate opens: interrupted while waiting
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    gate.touch()
    record = client.wait(run_id, timeout=30)  # not the interrupted request's late reply
    assert (record["run_id"], record["service"], record["status"]) == (run_id, "slow.steps", "ok")
