"""``python -m nbsched``: the command line (the same as the ``nbsched`` command)."""

from .frontends.cli import main

raise SystemExit(main())
