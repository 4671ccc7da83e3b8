"""Worker processes that run services (``python -m nbsched.worker``), and loading service source."""
