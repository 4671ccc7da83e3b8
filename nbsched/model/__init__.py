"""The model: jobs, triggers, cron lines and time parsing; pure, with no I/O (imports only errors and config)."""
