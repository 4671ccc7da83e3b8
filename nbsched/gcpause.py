"""``gc_paused``: Python's cyclic garbage collector paused while millions of small objects are built."""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic GC while building millions of small containers (it cannot free any of them).

    Decoding a 1,000,000-row history allocates ~1M lists; with the GC on, each gen-2 pass walks
    all of them again, which makes the decode several times slower.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
