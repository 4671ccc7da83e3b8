"""``python -m nbsched.worker``: one worker process, started by the runner's pool."""

from .process import main

main()
