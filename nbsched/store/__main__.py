"""The store's command-line entry point: ``python -m nbsched.store copy SRC_URL DST_URL`` (``nbsched store copy``).

The command line runs it in a process of its own, because front ends import no store; it prints what was
copied, or one line saying what went wrong.
"""

from __future__ import annotations

import sys

from ..errors import NbschedError
from . import masked, open_store
from .copy import copy_store

USAGE = "usage: nbsched store copy SRC_URL DST_URL"


def main(argv: list[str] | None = None) -> int:
    """``copy SRC_URL DST_URL``: copy the first store into the second; print what was copied."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "copy":
        print(USAGE, file=sys.stderr)
        return 2
    source_url, destination_url = args[1:]
    try:
        source = open_store(source_url)
        try:
            destination = open_store(destination_url)
            try:
                copied = copy_store(source, destination)
            finally:
                destination.close()
        finally:
            source.close()
    except NbschedError as exc:
        print(f"nbsched: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"copied {copied} from {masked(source_url)} to {masked(destination_url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
