"""The child process that deletes runs for the runner (``runner.retention``): ``-m nbsched.runner.retention_child``.

It reads one JSON request on stdin, ``{"store": URL, "home": PATH, "purges": [...]}``, deletes the runs of each
purge step by step on a store connection of its own, and writes ``{"removed": N}`` on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .. import config
from ..store import open_store
from .retention import Deleter, purge_from_record


def main() -> None:
    """Serve one request (see the module's docstring)."""
    os.nice(config.PURGE_NICE)  # the runner's workers, which start runs on time, get the CPU first
    request = json.load(sys.stdin)
    store = open_store(request["store"])
    try:
        deleter = Deleter(store, Path(request["home"]))
        removed = sum(deleter.purge(purge_from_record(record)) for record in request["purges"])
    finally:
        store.close()
    json.dump({"removed": removed}, sys.stdout)


if __name__ == "__main__":
    main()
