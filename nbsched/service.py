"""The ``Service`` base class: what a user subclasses, and what a service sees while it runs.

A service is plain Python with a ``handle()`` method. The worker process that runs it sets
the context attributes (``cid``, ``request``, ``response``, ``logger``, ``channel``, ``job``
and the outgoing connections) before calling ``handle()``; outside a worker the class is
just a class, so it can be imported and unit-tested like any other.
"""

from __future__ import annotations

import json
import logging
from typing import Any, NamedTuple

CHANNELS = ("scheduler", "manual", "invoke", "cli")
#: Where a service's runs execute: ``"worker"``, a long-lived worker process shared with other runs (its
#: working directory, environment, umask and logging are put back after each run); ``"process"``, a fresh
#: process for each run, for code that patches modules or leaves other process-wide state behind.
# The worker's own references: a service that patches json.dumps does not change how outputs are stored.
_json_dumps, _json_loads = json.dumps, json.loads


class Request:
    """What a run was given: ``raw_request`` as given, ``payload`` parsed from it (``{}`` when nothing was)."""

    def __init__(self, raw_request: Any = None):
        self.raw_request = raw_request
        self._payload: Any = None
        self._parsed = False

    @property
    def payload(self) -> Any:
        """The extra, parsed: JSON, else ``key=value`` lines as a dict, else the raw text; ``{}`` with no extra,
        so ``self.request.payload.get("who", "world")`` works for a job scheduled without one."""
        if not self._parsed:
            self._payload = {} if self.raw_request is None else parse_payload(self.raw_request)
            self._parsed = True
        return self._payload


class Response:
    """What a run gives back: ``payload`` is stored as the run's output (as text)."""

    def __init__(self) -> None:
        self.payload: Any = None


class JobInfo(NamedTuple):
    """The job a scheduled run belongs to: its name, type and the number of this fire."""

    name: str
    type: str
    run_number: int


class Service:
    """Subclass this, set ``name`` and write ``handle()``.

    >>> class Hello(Service):
    ...     name = "api.hello"
    ...     def handle(self):
    ...         self.logger.info("hello %s", self.request.payload)
    """

    name: str | None = None
    #: ``"process"`` runs each run of this service in a fresh process (see ``model.jobs.ISOLATION``); a job's
    #: ``isolation="process"`` does the same for that job's runs. Read from the source when deployed,
    #: so set it in the class body (or in a base class defined in the same source).
    isolation: str = "worker"

    # Context, set by the worker for each run.
    cid: str = ""
    channel: str = "invoke"
    job: JobInfo | None = None
    request: Request
    response: Response

    def __init__(self) -> None:
        self.request = Request()
        self.response = Response()
        self._context: Any = None

    @property
    def logger(self) -> logging.Logger:
        """The service's logger (named after the service); what it logs lands in the run's logs."""
        try:
            return self.__dict__["_logger"]
        except KeyError:
            return self.__dict__.setdefault("_logger", logging.getLogger(self.name or type(self).__name__))

    @logger.setter
    def logger(self, value: logging.Logger) -> None:
        self.__dict__["_logger"] = value

    def handle(self) -> None:
        """The work of the service; override it."""
        raise NotImplementedError(f"Service {self.name!r} has no handle() method; define one.")

    def before_job(self) -> None:
        """Called before ``handle()`` for scheduled runs only."""

    def after_job(self) -> None:
        """Called after ``handle()`` (even when it failed) for scheduled runs only."""

    # Outgoing connections and other services, resolved through the worker's context.
    @property
    def out(self):
        return self._require_context().out

    @property
    def email(self):
        return self._require_context().email

    @property
    def kvdb(self):
        return self._require_context().kvdb

    def invoke(self, name: str, payload: Any = None) -> Any:
        """Run another deployed service in this worker and return its response payload."""
        return self._require_context().invoke(name, payload, parent=self)

    def _require_context(self):
        if self._context is None:
            from .errors import NbschedError

            raise NbschedError(
                f"Service {self.name!r} is not running under nbsched, so it has no connections; "
                "run it with client.invoke(...) or a job."
            )
        return self._context


def parse_payload(raw: Any) -> Any:
    """Parse an extra: JSON, else ``key=value`` lines, else the text itself; non-text as is."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if not text:
        return raw
    try:
        return _json_loads(text)
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and all("=" in line for line in lines):
        return dict((part.strip() for part in line.split("=", 1)) for line in lines)
    return raw


def output_text(payload: Any) -> str | None:
    """The text stored as a run's output for a response payload."""
    if payload is None:
        return None
    if isinstance(payload, str):
        return payload
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    if isinstance(payload, bool):
        return "true" if payload else "false"
    if isinstance(payload, int | float) and payload == payload and abs(payload) != float("inf"):
        return repr(payload)  # what json.dumps writes for a finite number, without its machinery
    try:
        return _json_dumps(payload, default=str)
    except (TypeError, ValueError):
        return repr(payload)
