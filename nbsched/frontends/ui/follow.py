"""The History tab's run view of a running run: its log lines as they are written, its final record when it ends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ...client.api import Client
from ...client.follow import follow_chunks

log = logging.getLogger(__name__)
#: Seconds each of the follower's requests waits for new lines; a follower told to stop ends within this.
FOLLOW_WAIT_SECONDS = 2.0


class RunFollower:
    """Follows one run at a time in a thread of its own, on a connection of its own (its long-polls never hold up
    the dashboard's calls): ``on_lines(run, text)`` with all its lines so far as they come, ``on_end(run_id)`` at
    its end. Following another run, or ``stop()``, ends the previous one."""

    def __init__(self, client, on_lines: Callable[[dict, str], None], on_end: Callable[[int], None]):
        self.settings = client.settings
        self.on_lines = on_lines
        self.on_end = on_end
        self._stop = threading.Event()

    def follow(self, run: dict) -> None:
        """Follow ``run`` (a record from ``client.run``) if it is running; stop following any other."""
        self.stop()
        if run.get("status") != "running":
            return
        self._stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(run, self._stop), daemon=True, name="nbsched-ui-follow")
        thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self, run: dict, stop: threading.Event) -> None:
        try:
            client = Client(self.settings, autostart=False)
        except Exception:  # no runner: the view keeps what it shows
            log.debug("could not follow run %s", run["run_id"], exc_info=True)
            return
        try:
            lines: list[str] = []
            for chunk in follow_chunks(client, int(run["run_id"]), wait=FOLLOW_WAIT_SECONDS):
                if stop.is_set():
                    return
                lines += chunk
                self.on_lines(run, "\n".join(lines))
            if not stop.is_set():
                self.on_end(int(run["run_id"]))
        except Exception:  # a thread has no caller to raise to; the next click shows the run as stored
            log.exception("following run %s failed", run["run_id"])
        finally:
            client.close()
