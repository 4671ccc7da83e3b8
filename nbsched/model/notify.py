"""What a job tells, and to whom, when a run of it ends: ``notify_on`` (statuses) and ``notify`` (targets).

A target is one of three forms, read here once and kept as typed:

* ``smtp:CONNECTION:to@example.com`` (several addresses: ``smtp:mail:a@example.com,b@example.com``): an e-mail
  through the named SMTP connection, with the error, the last log lines and the output;
* ``webhook:URL`` (``http`` or ``https``): the run record as a JSON POST;
* ``service:NAME``: that service invoked with the run record as its payload.

Whether the connection or service exists is checked when a notification is sent, not when the job is
defined: either may be added, replaced or deleted later, and a job must not fail to load because of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidJob, did_you_mean

#: The statuses a job may be told about; ``success`` is a run that ended ``ok`` (``ok`` is read as ``success``).
NOTIFY_ON = ("success", "error", "timeout", "interrupted", "missed")
#: The run status each of ``NOTIFY_ON`` stands for.
STATUS_OF = {"success": "ok", "error": "error", "timeout": "timeout", "interrupted": "interrupted", "missed": "missed"}
#: What ``notify_on`` is when a job has targets and names no statuses.
DEFAULT_NOTIFY_ON = ("error", "timeout")
TARGET_KINDS = ("smtp", "webhook", "service")
TARGET_HELP = "smtp:CONNECTION:to@example.com, webhook:https://example.com/hook or service:NAME"
#: Where a text of several targets splits: at a comma or blank before the next target's kind.
_SPLIT = re.compile(r"[,\s]+(?=(?:smtp|webhook|service):)")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$")
_CONNECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@/-]{0,199}$")
_URL = re.compile(r"^https?://[^\s/?#@]*@?[^\s/?#@]+(?:[/?#]\S*)?$")
_ADDRESS = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")


@dataclass(frozen=True)
class Target:
    """One place a notification goes: ``kind`` (smtp, webhook, service) and what it needs."""

    kind: str
    name: str  # the SMTP connection, the URL, or the service
    to: tuple[str, ...] = ()  # e-mail addresses (smtp only)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}:{','.join(self.to)}" if self.kind == "smtp" else f"{self.kind}:{self.name}"


def parse_target(text: object) -> Target:
    """Read one target; refuse it with ``InvalidJob`` (field ``notify``) showing the valid forms."""
    if not isinstance(text, str):
        raise _bad_target(text, "a target is text")
    kind, sep, rest = text.strip().partition(":")
    if not sep or kind not in TARGET_KINDS:
        hint = did_you_mean(kind, TARGET_KINDS).rstrip("?").replace(" Did you", ", did you") if sep else ""
        raise _bad_target(text, f"it starts with none of {', '.join(k + ':' for k in TARGET_KINDS)}{hint}")
    if kind == "webhook":
        if not _URL.match(rest):
            raise _bad_target(text, "a webhook needs an http or https URL")
        return Target("webhook", rest)
    if kind == "service":
        if not _SERVICE.match(rest):
            raise _bad_target(text, "a service name is letters, digits and . _ - : @ /")
        return Target("service", rest)
    connection, sep, addresses = rest.partition(":")
    to = tuple(address.strip() for address in addresses.split(",") if address.strip())
    if not sep or not _CONNECTION.match(connection) or not to or not all(_ADDRESS.match(a) for a in to):
        raise _bad_target(text, "an e-mail target names an SMTP connection and one or more addresses")
    return Target("smtp", connection, to)


def _bad_target(text: object, why: str) -> InvalidJob:
    return InvalidJob(f"Invalid notify target {text!r:.200}: {why}; use {TARGET_HELP}.", field="notify")


def _words(value: object, split) -> list:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [word for word in split(value.strip()) if word]
    if isinstance(value, list | tuple):
        return [word for item in value for word in (_words(item, split) if isinstance(item, str) else [item])]
    return [value]


def parse_targets(value: object) -> tuple[str, ...]:
    """``notify`` as given (one target, a list, or a text of several) as a tuple of targets, each written back
    in its one spelling."""
    targets = [str(parse_target(text)) for text in _words(value, _SPLIT.split)]
    return tuple(dict.fromkeys(targets))


def parse_notify_on(value: object, has_targets: bool) -> tuple[str, ...]:
    """``notify_on`` as given (a status, a list, or ``"error,timeout"``) as a tuple of ``NOTIFY_ON``; with targets
    and no statuses: ``DEFAULT_NOTIFY_ON``. Statuses without targets are refused: there is nowhere to send."""
    words = _words(value, lambda text: re.split(r"[,\s]+", text))
    statuses = []
    for word in words:
        status = "success" if word == "ok" else word
        if status not in NOTIFY_ON:
            hint = did_you_mean(str(word), NOTIFY_ON)
            raise InvalidJob(
                f"Invalid notify_on {word!r}.{hint} Use one or more of {', '.join(NOTIFY_ON)}, "
                "e.g. notify_on=['error', 'timeout'] (--notify-on error,timeout).",
                field="notify_on",
            )
        statuses.append(status)
    if statuses and not has_targets:
        raise InvalidJob(
            f"notify_on {', '.join(statuses)} names no target to tell: add notify=, e.g. {TARGET_HELP}.",
            field="notify",
        )
    if not statuses and has_targets:
        return DEFAULT_NOTIFY_ON
    return tuple(dict.fromkeys(statuses))


def wants(notify_on: tuple[str, ...], status: str) -> bool:
    """Whether a job with ``notify_on`` is told about a run that ended ``status``."""
    return any(STATUS_OF[name] == status for name in notify_on)
