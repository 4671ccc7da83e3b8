"""Running one service in the worker: ``Worker`` turns a ``RunMessage`` into a ``Result``; ``Context`` is
what the running service reaches through ``self`` (connections, other services)."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from typing import Any

from ..service import JobInfo, Service, output_text
from .capture import Capture, ListHandler
from .notebook import NOTEBOOK_CLASS
from .pipe import Result, RunMessage
from .registry import Registry
from .state import ProcessState


class Context:
    """What a running service reaches through ``self``: connections and other services."""

    def __init__(self, worker: Worker, message: RunMessage):
        self.worker = worker
        self.message = message

    @property
    def connections(self):
        return self.worker.connections

    @property
    def out(self):
        return self.connections.out

    @property
    def email(self):
        return self.connections.email

    @property
    def kvdb(self):
        return self.connections.kvdb

    def invoke(self, name: str, payload: Any, parent) -> Any:
        service = self.worker.prepare(name, self.message, raw_request=payload, channel="invoke", job=None)
        service.cid = parent.cid
        service.handle()
        return service.response.payload


class Worker:
    """Executes run messages one by one."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.connection_definitions: dict[str, dict] = {}
        self._connections = None
        self._secrets: list[str] | None = None
        self._loggers: dict[str, logging.Logger] = {}
        # One capture and one log handler, pointed at each run's lines in turn.
        self._capture = Capture([])
        self._handler = ListHandler([])
        logging.getLogger().addHandler(self._handler)
        self.state = ProcessState()
        self.current: tuple[int, list[str]] | None = None  # the run in hand and its log lines (for live logs)

    def set_connections(self, definitions: dict[str, dict]) -> None:
        """The runner's connection definitions (name -> {kind, definition}); sent when they change."""
        if definitions == self.connection_definitions:
            return
        if self._connections is not None:
            self._connections.close()
        self.connection_definitions = dict(definitions)
        self._connections = None
        self._secrets = None

    @property
    def connections(self):
        """The live connections (HTTP sessions, Redis pools), kept until the definitions change."""
        if self._connections is None:
            from ..connections import Connections

            self._connections = Connections(self.connection_definitions)
        return self._connections

    def _mask(self, result: Result) -> None:
        """Blank connection secrets in what a run reports (its logs, error, traceback and output)."""
        result.error = self.mask_text(result.error)
        result.traceback = self.mask_text(result.traceback)
        result.output = self.mask_text(result.output)
        result.logs = self.mask_text(result.logs)

    def mask_text(self, text: str | None) -> str | None:
        """``text`` with the connections' secrets blanked (as it is, when no connection is defined)."""
        if not self.connection_definitions or text is None:
            return text
        if self._secrets is None:
            from ..connections import secrets_of

            self._secrets = secrets_of(self.connection_definitions)
        from ..connections import mask

        return mask(text, self._secrets)

    def warm(self, service: str) -> None:
        """A job of ``service`` is scheduled: if it is a notebook, boot a spare kernel for its next run now."""
        if self.registry.services.get(service, ("", ""))[1] == NOTEBOOK_CLASS:
            try:
                self.registry.service_class(service)._nbsched_ahead()
            except Exception:  # its run will say what is wrong
                logging.getLogger(__name__).exception("booting a kernel ahead for %s failed", service)

    def keep_spares(self, services: list[str]) -> None:
        """Spare kernels only for the kernels and folders of these notebook services (their jobs are active)."""
        from .kernels import KERNELS

        kinds = set()
        for service in services:
            if self.registry.services.get(service, ("", ""))[1] == NOTEBOOK_CLASS:
                try:
                    kinds.add(self.registry.service_class(service)._nbsched_kind())
                except Exception:  # a notebook that cannot be read has no kernel to keep
                    logging.getLogger(__name__).exception("reading the kernel of %s failed", service)
        KERNELS.keep(kinds)

    def prepare_ahead(self, message: RunMessage) -> Service | None:
        """The service object of a run held for later (``not_before``), built while it waits; or None.

        Only for a service already loaded whose class runs no code of its own when built (no
        ``__init__``), so nothing of the user's runs before the run's time; at the due time
        only the call remains.
        """
        cls = self.registry.classes.get(message.service)
        if cls is None and self.registry.services.get(message.service, ("", ""))[1] == NOTEBOOK_CLASS:
            cls = self.registry.service_class(message.service)  # builds a class; runs nothing of the notebook
        if cls is None or cls.__init__ is not Service.__init__ or cls.__new__ is not object.__new__:
            return None
        ahead = cls.__dict__.get("_nbsched_ahead")  # a notebook service boots a kernel for it meanwhile
        if ahead is not None:
            ahead.__func__(cls)
        return self.prepare(message.service, message, message.extra, message.channel, message.job)

    def prepare(self, name: str, message: RunMessage, raw_request: Any, channel: str, job: tuple | None) -> Service:
        service = self.registry.service_class(name)()
        service.cid = message.cid
        service.channel = channel
        service.job = JobInfo(*job) if job else None
        service.request.raw_request = raw_request
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = logging.getLogger(name)
        if logger.disabled:  # logging.config.dictConfig() in another run disables the loggers it does not name
            logger.disabled = False
        service.logger = logger
        service._context = Context(self, message)
        return service

    def run(self, message: RunMessage, prepared: Service | None = None) -> Result:
        """Run the service of ``message`` (``prepared``: its service object, built ahead) and say how it went."""
        lines: list[str] = []
        capture, self._handler.lines = self._capture, lines
        capture.lines, capture.partial = lines, ""
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = capture
        self.current = (message.run_id, lines)
        status, error, trace, output = "ok", None, None, None
        started = time.time()
        try:
            channel = message.channel
            service = prepared
            if service is None:
                service = self.prepare(message.service, message, message.extra, channel, message.job)
            if channel == "scheduler":
                started = time.time()
                service.before_job()
                try:
                    service.handle()
                finally:
                    service.after_job()
            else:
                started = time.time()
                service.handle()
            output = output_text(service.response.payload)
        except BaseException as exc:
            status, error = "error", _one_line(exc)
            trace = getattr(exc, "run_traceback", None) or traceback.format_exc()
            output = getattr(exc, "run_output", None)  # a notebook's executed copy, saved up to the failing cell
            if isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            finished = time.time()
            self.current = None
            sys.stdout, sys.stderr = saved
            if capture.partial:
                capture.finish()
            self._handler.lines = []
            self.state.restore()
        logs = "\n".join(lines) if lines else ""
        result = Result(message.run_id, status, error, trace, output, logs, started, finished)
        if self.connection_definitions:
            self._mask(result)
        return result


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:500]
