"""nbsched: a real scheduler for Jupyter users.

Write a service in a notebook cell, give it a one-time, interval or cron schedule, and a
runner process that does not depend on the kernel runs it on time and records every run.
"""

from __future__ import annotations

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
    from .client.api import connect

    client = connect()
    try:
        return client.history(job=job, service=service, status=status, since=since, limit=limit)
    finally:
        client.close()


def ui(*args, **kwargs):
    """The ipywidgets dashboard: jobs, a job form, history and connections."""
    from .frontends.ui import ui as dashboard

    return dashboard(*args, **kwargs)


#: What ``nbsched.NAME`` loads on first use (the module and its name there): ``import nbsched`` stays light for
#: the processes that need none of it (the history child, whose start a first long read waits for; workers).
_LAZY = {
    "BackfillCapped": ("client.api", "BackfillCapped"),
    "Client": ("client.api", "Client"),
    "connect": ("client.api", "connect"),
    "Preview": ("model.triggers", "Preview"),
    "preview": ("model.triggers", "preview"),
    "Service": ("service", "Service"),
    "SMTPMessage": ("connections", "SMTPMessage"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'nbsched' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # found as a plain attribute from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
