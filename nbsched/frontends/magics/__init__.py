"""The notebook front end: ``%%service``, ``%schedule`` and ``%connection`` (load with ``%load_ext nbsched``).

One module per magic (``schedule``, ``service``, ``connection``), the argparse and session they
share (``parser``) and their help texts (``help``). Options and spellings come from
``frontends.commands``, the vocabulary the command line and the dashboard use too.
"""

from __future__ import annotations

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from .connection import run_connection
from .parser import Session, expand_variables
from .schedule import run_schedule
from .service import handle_source, run_service_cell

__all__ = ["NbschedMagics", "Session", "handle_source", "load_ipython_extension"]


@magics_class
class NbschedMagics(Magics):
    """``%%service``, ``%schedule`` and ``%connection``."""

    def __init__(self, shell):
        super().__init__(shell)
        self.session = Session()

    @no_var_expand
    @line_magic
    def schedule(self, line: str = ""):
        """Schedule services and look at their runs; %schedule alone shows every subcommand."""
        return run_schedule(self.session, expand_variables(line, self.shell.user_ns))

    @no_var_expand
    @cell_magic
    def service(self, line: str, cell: str):
        """Deploy the Service classes this cell defines, or (with a NAME) the cell as handle()'s body."""
        run_service_cell(self.session, self.shell, line, cell)

    @no_var_expand
    @line_magic
    def connection(self, line: str = ""):
        """Add, list, test and delete outgoing connections (REST, SMTP, kvdb)."""
        return run_connection(self.session, expand_variables(line, self.shell.user_ns))


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(NbschedMagics)
