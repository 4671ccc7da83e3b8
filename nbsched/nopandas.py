"""``NoPandas``, ``NoNumpy``: import finders that keep pandas (and numpy) out of a process that only needs pyarrow
(the runner, the history child)."""

from __future__ import annotations


class NoPandas:
    """An import finder that keeps pandas out of the process that puts it first in ``sys.meta_path``.

    pyarrow imports pandas, when it is installed, on the first array it builds from Python values (and
    ``pyarrow.dataset``, which ADBC's DB-API imports, at once): ~47 MB and ~0.3 s of a core. Told that
    pandas is missing, pyarrow does without it.
    """

    kept_out = ("pandas",)

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in cls.kept_out:
            raise ModuleNotFoundError(f"{name} is not loaded in this nbsched process", name=name)
        return None


class NoNumpy(NoPandas):
    """``NoPandas`` that keeps numpy out too, for the history child: pyarrow (whose dependencies are all optional)
    needs numpy only to convert to and from numpy arrays, which the child never does, and loading it is half of
    ``import pyarrow.compute`` (~0.09 s of the child's start, which a first long read waits for)."""

    kept_out = ("pandas", "numpy")
