"""The worker's inbox: what the runner sent, read ahead by a thread; runs held until their time; results
sent back in batches; runs behind a slow one given back ("bounced")."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO

from . import pipe
from .pipe import RunMessage


class Inbox:
    """The messages the runner sent this worker, read ahead by a thread.

    The runner may queue several runs in a worker's pipe (pipelining). When the run in hand
    takes longer than ``BOUNCE_AFTER`` seconds, the runs waiting behind it go back to the
    runner ("bounced") to be run by another worker, so a slow run never holds up others.

    Runs held for later are prepared while they wait (``prepare`` builds a run's service object,
    or returns None); what it built waits in ``prepared`` (run id -> object) for the run's turn.
    """

    BOUNCE_AFTER = 0.05

    def __init__(self, out: BinaryIO, prepare: Callable[[RunMessage], Any] | None = None):
        self.out = out
        self.prepare = prepare
        self.messages: deque[RunMessage | pipe.Sources | pipe.Connections | None] = deque()  # None: the pipe ended
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.write_lock = threading.Lock()
        self.runs_started = 0
        self.running = False
        self.results: list[pipe.Result] = []  # finished, not yet sent
        self.held_since = 0.0  # when the first of them was held back
        self.spun_at = 0.0
        # Preparing runs held for later (only with ``prepare``):
        self.unprepared: deque = deque()  # runs held for later and other messages, in arrival order
        self.held: set[int] = set()  # ids of the runs held for later that still wait in ``messages``
        self.acted_on = 0  # messages other than runs handed out, not yet passed in ``unprepared``
        self.prepared: dict[int, Any] = {}
        self.lease_until = math.inf  # no run starts after this (``pipe.Lease``): the runner's lease may be gone

    #: While more runs are due at once, results are held back (one write, and one wake-up of the
    #: runner, after the burst: the runner reading results would otherwise take a core from the runs),
    #: up to ``BATCH`` of them and for at most ``BATCH_SECONDS`` after the first.
    BATCH = 50_000
    BATCH_SECONDS = 0.1
    #: The last stretch before a held run's time is waited for by polling the clock, not by sleeping
    #: (a thread sleeping on an idle virtual machine's core has been seen to wake 2 ms late), at most
    #: once every ``SPIN_EVERY`` seconds.
    SPIN = 0.003
    SPIN_EVERY = 0.1
    #: Runs held for later are prepared while waiting when their time is at least this far.
    PREPARE_MARGIN = 0.002
    #: While the runner's lease is lapsed, due runs wait; the clock is looked at again this often.
    LEASE_WAIT = 0.05

    def send(self, message: Any) -> None:
        with self.write_lock:
            pipe.write(self.out, message)

    def next(self, result: pipe.Result | None = None) -> RunMessage | pipe.Sources | pipe.Connections | None:
        """Hand in the result of the run just ended (if any) and take the next message (None: the pipe ended).

        While runs are due now, results are held back (up to ``BATCH``) and the next run comes
        at once. Otherwise the results go to the runner and this waits for the next message, a
        run held for later (``not_before``) coming out at its time.
        """
        with self.lock:
            self.running = False
            if result is not None:
                if not self.results:
                    self.held_since = time.monotonic()
                self.results.append(result)
            while True:
                if self.messages:
                    head = self.messages[0]
                    if type(head) is not RunMessage:
                        self._flush_results()
                        if head is not None:
                            self.acted_on += 1  # for _prepare_held: acted on once this returns
                        return self.messages.popleft()
                    now = time.time()
                    wait = head.not_before - now
                    if wait <= 0 and now < self.lease_until:
                        return self._hand_out(head)
                    if wait <= 0:  # the runner's lease lapsed: start nothing until it is renewed or runs cancelled
                        self._flush_results()
                        self.changed.wait(self.LEASE_WAIT)
                        continue
                self._flush_results()
                if not self.messages:
                    self.changed.wait()
                elif self.unprepared and wait > self.PREPARE_MARGIN:
                    self._prepare_held()  # under the lock: the messages stay as they are meanwhile
                else:
                    self._wait_for(head.not_before, wait)

    def _hand_out(self, run: RunMessage) -> RunMessage:
        results = self.results
        if results and (len(results) >= self.BATCH or time.monotonic() - self.held_since >= self.BATCH_SECONDS):
            self._flush_results()
        self.runs_started += 1  # the watchdog reads these now and then, without the lock
        self.running = True
        if run.not_before:
            self.held.discard(run.run_id)
        return self.messages.popleft()

    def _wait_for(self, moment: float, wait: float) -> None:
        """Wait (lock released) until ``moment`` or a new message; poll the clock for the last ``SPIN``."""
        if wait > self.SPIN or time.monotonic() - self.spun_at < self.SPIN_EVERY:
            self.changed.wait(max(wait - self.SPIN, 0.0) if wait > self.SPIN else wait)
            return
        while time.time() < moment:
            pass
        self.spun_at = time.monotonic()

    def _prepare_held(self) -> None:
        """Prepare the runs that wait (in order, up to a message the worker has yet to act on)."""
        while self.unprepared:
            message = self.unprepared[0]
            if type(message) is not RunMessage:
                if not self.acted_on:
                    return  # a registry or connections change comes first: prepare after it
                self.acted_on -= 1
            elif message.run_id in self.held:  # not run, given back or bounced meanwhile
                with contextlib.suppress(Exception):  # the run reports it when it starts
                    prepared = self.prepare(message)
                    if prepared is not None:
                        self.prepared[message.run_id] = prepared
            self.unprepared.popleft()

    def _flush_results(self) -> None:
        if self.results:
            self.send(pipe.Results(self.results))
            self.results = []

    def fill(self, source: BinaryIO) -> None:
        """Read the runner's messages until the pipe ends (the reading thread's loop)."""
        while True:
            message = pipe.read(source)
            with self.changed:
                if message is None:  # the runner is gone: no one records a run not started yet; its taker runs it
                    waiting = [m for m in self.messages if type(m) is RunMessage]
                    for run in waiting:
                        self._forget(run)
                    self.messages = deque(m for m in self.messages if type(m) is not RunMessage)
                if type(message) is pipe.Runs:
                    self._arrived(message.runs)
                elif type(message) is pipe.Cancel:
                    self._cancel(message.run_id)
                elif type(message) is pipe.Lease:
                    self.lease_until = message.valid_until
                else:
                    self.messages.append(message)
                    if message is not None and self.prepare is not None:
                        self.unprepared.append(message)
                self.changed.notify_all()
            if message is None:
                return

    def _arrived(self, runs: list[RunMessage]) -> None:
        self.messages.extend(runs)
        if self.prepare is not None:
            held = [run for run in runs if run.not_before]
            self.unprepared.extend(held)
            self.held.update(run.run_id for run in held)

    def _cancel(self, run_id: int) -> None:
        """Give back a run that has not started; one that has started runs to its end."""
        for index, message in enumerate(self.messages):
            if type(message) is RunMessage and message.run_id == run_id:
                del self.messages[index]
                self._forget(message)
                self.send(pipe.Cancelled(run_id))
                return

    def _forget(self, run: RunMessage) -> None:
        self.held.discard(run.run_id)
        self.prepared.pop(run.run_id, None)

    def watch(self) -> None:
        """Every ``BOUNCE_AFTER`` seconds: if the same run is still in hand, bounce the runs waiting behind it."""
        seen = -1
        while True:
            time.sleep(self.BOUNCE_AFTER)
            number, running = self.runs_started, self.running
            if not (running and number == seen):
                seen = number
                continue
            with self.changed:
                self._flush_results()  # results held back for a batch must not wait for a slow run
                waiting = [m for m in self.messages if type(m) is RunMessage]
                if waiting:
                    self.messages = deque(m for m in self.messages if type(m) is not RunMessage)
                    for run in waiting:
                        self._forget(run)
                    self.send(pipe.Bounced([run.run_id for run in waiting]))
