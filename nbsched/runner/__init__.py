"""The runner process: the socket server, the engine that fires and records runs, the schedule heap, the
worker pool. Run it with ``python -m nbsched.runner`` (foreground) or ``nbsched runner start`` (detached)."""
