"""``%%service``: deploy the Service classes a cell defines, or (with a NAME) the cell as ``handle()``'s body."""

from __future__ import annotations

import re
import textwrap

from IPython.core.error import UsageError

from ..commands import one_line
from .parser import Session, as_usage_errors, show, split_line

#: Lines ``handle_source`` puts before the body, so warnings can name the cell's own line numbers.
HANDLE_BODY_OFFSET = 7


def handle_source(name: str, body: str) -> str:
    """Source of a service named ``name`` whose handle() is ``body`` (``self`` in scope)."""
    class_name = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", name) if part) or "Cell"
    if not class_name[0].isalpha():
        class_name = "Service" + class_name
    indented = textwrap.indent(textwrap.dedent(body).strip("\n") or "pass", " " * 8)
    return (
        "from nbsched import Service, SMTPMessage\n\n\n"
        f"class {class_name}(Service):\n    name = {name!r}\n\n    def handle(self):\n{indented}\n"
    )


def run_service_cell(session: Session, shell, line: str, cell: str) -> None:
    words = split_line(line, "%%service")
    if len(words) > 1:
        raise UsageError(
            f"%%service takes at most one service name, got {len(words)} words. "
            "Example: %%service my.quick.svc (or %%service alone for a cell of Service classes)."
        )
    source = handle_source(words[0], cell) if words else cell
    offset = HANDLE_BODY_OFFSET if words else 0
    result = as_usage_errors(_deploy_cell, session, source)
    for warning in result.get("warnings", []):
        show(f"warning: {_shift_line(one_line(warning), offset)}")
    for service in result["services"]:
        show(f"deployed {service['name']} (version {service['version']})")
    shell.ex(compile(source, "<cell>", "exec"))  # the classes are usable in the kernel too


def _deploy_cell(session: Session, source: str) -> dict:
    client = session.client()
    client.last_deploy = client.call("deploy", units=[{"source": source, "origin": "<cell>"}])
    return client.last_deploy


def _shift_line(text: str, offset: int) -> str:
    return re.sub(r"line (\d+)", lambda match: f"line {max(int(match.group(1)) - offset, 1)}", text, count=1)
