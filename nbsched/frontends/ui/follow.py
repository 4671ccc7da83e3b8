"""The History tab's run view of a running run: its log lines as they are written, its final record when it ends."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from ... import config
from ...client.api import Client
from ...client.follow import follow_chunks

log = logging.getLogger(__name__)
#: Seconds each of the follower's requests waits for new lines; a follower told to stop ends within this.
FOLLOW_WAIT_SECONDS = 2.0
#: The most lines of a running run the view shows (its last ones, as the runner keeps): a run that logs without
#: end costs the notebook neither memory nor time that grows with it. Its stored logs show whole when it ends.
SHOWN_LINES = config.LIVE_LOG_LINES


class RunFollower:
    """Follows one run at a time in a thread of its own, on a connection of its own (its long-polls never hold up
    the dashboard's calls): ``on_lines(run, text)`` with its last ``SHOWN_LINES`` lines so far as they come,
    ``on_end(run_id)`` at its end. Following another run, or ``stop()``, ends the previous one."""

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
            lines: deque[str] = deque(maxlen=SHOWN_LINES)
            seen = 0
            for chunk in follow_chunks(client, int(run["run_id"]), wait=FOLLOW_WAIT_SECONDS):
                if stop.is_set():
                    return
                lines.extend(chunk)
                seen += len(chunk)
                self.on_lines(run, _shown(lines, seen))
            if not stop.is_set():
                self.on_end(int(run["run_id"]))
        except Exception:  # a thread has no caller to raise to; the next click shows the run as stored
            log.exception("following run %s failed", run["run_id"])
        finally:
            client.close()


def _shown(lines: deque[str], seen: int) -> str:
    """The lines kept, after a note of how many earlier ones are not shown."""
    hidden = seen - len(lines)
    note = [f"({hidden:,} earlier lines not shown; all of them are in the run's logs when it ends)"] if hidden else []
    return "\n".join(note + list(lines))
