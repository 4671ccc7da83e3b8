"""The one hierarchy of errors nbsched raises.

Every leaf also inherits the builtin a caller would naturally catch, so
``except LookupError`` works for a missing job as well as ``except JobNotFound``.
Errors cross the runner's socket by class name and are raised again on the client
side with the same class, message and ``field``: the option or form field the error is
about (``"cron"``, ``"every"``, ``"name"``, ...), so a form can show it next to that field.

Messages name no front end's commands. An error's ``hint`` says what a user may want next
(``"jobs"``: the job names), and each front end ends the message with that hint in its own
words: ``See nbsched jobs.`` on the command line, ``See %schedule list.`` in a notebook.
"""

from __future__ import annotations


class NbschedError(Exception):
    """Base of every error nbsched raises on purpose."""

    #: The job option (or connection setting) the error is about, e.g. ``"cron"``; None when it is about none.
    field: str | None = None
    #: What a front end's hint after the message points to (``"jobs"``, ``"runs"``, ``"deploy"``,
    #: ``"connections"``, ``"status"``, ``"restart"``, ``"start"``); None for no hint.
    hint: str | None = None

    def __init__(self, *args: object, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args)
        if field is not None:
            self.field = field
        if hint is not None:
            self.hint = hint


class InvalidInput(NbschedError, ValueError):
    """A value a user gave cannot be used; the message says what a valid one looks like."""


class InvalidJob(InvalidInput):
    """A job definition was refused; nothing was stored."""


class JobExists(InvalidInput):
    """A job with that name exists already."""

    field = "name"


class DeployError(InvalidInput):
    """Service source that cannot be deployed (syntax error, no Service subclass, ...)."""


class ImportSourceError(InvalidInput):
    """A crontab file or jupyter-scheduler database to import cannot be read as one; nothing was created."""


class ScriptFailed(NbschedError, RuntimeError):
    """A script run as a service (``nbsched import crontab``) ended with a non-zero exit status."""


class JobNotFound(NbschedError, LookupError):
    """No job has that name."""

    hint = "jobs"


class ServiceNotFound(NbschedError, LookupError):
    """No deployed service has that name."""

    field = "service"
    hint = "deploy"


class RunNotFound(NbschedError, LookupError):
    """No run has that id."""

    hint = "runs"


class ConnectionNotFound(NbschedError, LookupError):
    """No outgoing connection has that name."""

    hint = "connections"


class RunnerError(NbschedError, ConnectionError):
    """The runner cannot be reached or started."""


class NoRunner(RunnerError):
    """No runner is running for the home, and none was to be started."""

    hint = "start"


class ProtocolError(NbschedError, ValueError):
    """A socket message that does not follow the protocol."""


class AuthError(NbschedError, PermissionError):
    """A socket request without the right token."""


class WaitTimeout(NbschedError, TimeoutError):
    """A run did not end within the time a caller was willing to wait."""


class ServiceError(NbschedError, RuntimeError):
    """A service invoked from another service failed."""


class StoreError(NbschedError, OSError):
    """The store could not be written (locked by another process, disk full, read-only, ...)."""

    hint = "status"


class StoreGone(StoreError):
    """The store's file was deleted or replaced while the runner had it open: nothing more is written to it."""

    hint = "restart"


class RetryStarted(StoreError):
    """A retry was started already (by another runner of a shared store): this one records nothing."""

    hint = None


class Fenced(StoreError):
    """A runner lost its lease on a shared store (it expired, or another runner took over): it records no more runs."""


def error_types() -> dict[str, type[NbschedError]]:
    """Map class names to classes, for raising a remote error again locally."""
    found: dict[str, type[NbschedError]] = {}
    pending: list[type[NbschedError]] = [NbschedError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or ''."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""
