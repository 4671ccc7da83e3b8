"""Worker processes that run services (``python -m nbsched.worker``), their pipe to the runner, loading source."""
