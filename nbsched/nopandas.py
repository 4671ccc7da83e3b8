"""``NoPandas``: an import finder that keeps pandas out of a process that only needs pyarrow (the runner, the
history child)."""

from __future__ import annotations


class NoPandas:
    """An import finder that keeps pandas out of the process that puts it first in ``sys.meta_path``.

    pyarrow imports pandas, when it is installed, on the first array it builds from Python values (and
    ``pyarrow.dataset``, which ADBC's DB-API imports, at once): ~47 MB and ~0.3 s of a core. Told that
    pandas is missing, pyarrow does without it.
    """

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not loaded in this nbsched process", name=name)
        return None
