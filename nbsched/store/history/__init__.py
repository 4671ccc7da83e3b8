"""Long run histories as Arrow: the runs cache files and the child process that reads SQLite into Arrow."""
