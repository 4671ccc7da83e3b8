"""``nbsched demo``: start a runner, deploy a service, schedule it, and show its first runs."""

from __future__ import annotations

import sys
import time

from ..client.api import connect

DEMO_SERVICE = '''\
from nbsched import Service


class Hello(Service):
    """Says hello to whoever the job's extra names, and returns the time it ran."""

    name = "demo.hello"

    def handle(self):
        who = (self.request.payload or {}).get("who", "world")
        job = self.job.name if self.job else "-"
        self.logger.info("hello, %s (job %s, run %s)", who, job, self.job.run_number if self.job else "-")
        self.response.payload = {"greeted": who}
'''


def run_demo(wait_runs: int = 3, interval: str = "5s") -> int:
    out = sys.stdout
    client = connect()
    info = client.ping()
    out.write(f"runner {info['runner']} is up (home {info['home']})\n")
    client.deploy(DEMO_SERVICE)
    out.write("deployed service demo.hello\n")
    if "demo-hello" not in set(client.jobs()["name"]):
        client.schedule("demo.hello", name="demo-hello", every=interval, extra='{"who": "nbsched demo"}')
    out.write(f"job demo-hello runs demo.hello every {interval}; waiting for {wait_runs} runs ...\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(client.history(job="demo-hello")) < wait_runs:
        time.sleep(0.5)
    history = client.history(job="demo-hello", limit=wait_runs)
    out.write(history[["run_id", "status", "scheduled_at", "delay_ms", "duration_ms", "output"]].to_string(index=False))
    out.write(
        "\n\nThe runner keeps going in the background. Next steps:\n"
        "  nbsched jobs                  # the schedule\n"
        "  nbsched history --limit 10    # what happened\n"
        "  nbsched pause demo-hello      # stop the demo job\n"
        "  nbsched runner stop           # stop the runner\n"
    )
    return 0
