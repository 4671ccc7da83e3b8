"""``python -m nbsched.runner``: the runner (foreground; ``--detached`` when a client starts it)."""

import sys

from .server import main

sys.exit(main())
