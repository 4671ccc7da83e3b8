"""nbsched: a real scheduler for Jupyter users.

Write a service in a notebook cell, give it a one-time, interval or cron schedule, and a
runner process that does not depend on the kernel runs it on time and records every run.
"""

from __future__ import annotations

from .client.api import BackfillCapped, Client, connect
from .errors import (
    AuthError,
    ConnectionNotFound,
    DeployError,
    InvalidInput,
    InvalidJob,
    JobExists,
    JobNotFound,
    NbschedError,
    ProtocolError,
    RunnerError,
    RunNotFound,
    ServiceError,
    ServiceNotFound,
    WaitTimeout,
)
from .model.triggers import Preview, preview
from .service import Service

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BackfillCapped",
    "Client",
    "ConnectionNotFound",
    "DeployError",
    "InvalidInput",
    "InvalidJob",
    "JobExists",
    "JobNotFound",
    "NbschedError",
    "Preview",
    "ProtocolError",
    "RunNotFound",
    "RunnerError",
    "SMTPMessage",
    "Service",
    "ServiceError",
    "ServiceNotFound",
    "WaitTimeout",
    "connect",
    "history",
    "load_ipython_extension",
    "preview",
    "ui",
]


def load_ipython_extension(ipython) -> None:
    """``%load_ext nbsched``: register the %%service, %schedule and %connection magics."""
    from .frontends.magics import load_ipython_extension as load

    load(ipython)


def history(job=None, service=None, status=None, since=None, limit=None):
    """Run history of the runner of ``NBSCHED_HOME`` as a DataFrame (see ``Client.history``)."""
    client = connect()
    try:
        return client.history(job=job, service=service, status=status, since=since, limit=limit)
    finally:
        client.close()


def ui(*args, **kwargs):
    """The ipywidgets dashboard: jobs, a job form, history and connections."""
    from .frontends.ui import ui as dashboard

    return dashboard(*args, **kwargs)


def __getattr__(name: str):
    # Optional parts load on first use, so `import nbsched` stays light for workers and the CLI.
    if name == "SMTPMessage":
        from .connections import SMTPMessage

        return SMTPMessage
    raise AttributeError(f"module 'nbsched' has no attribute {name!r}")
