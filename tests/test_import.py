"""Importing jobs: crontab lines (papermill, nbconvert --execute, Python scripts) and jupyter-scheduler's SQLite
database of job definitions (issue 18 item 6). The translation is pure; scripts run end to end as services."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli
from IPython.core.error import UsageError

from nbsched.client.importing import import_crontab, import_jupyter_scheduler
from nbsched.client.importing.crontab import plan_crontab
from nbsched.errors import ImportSourceError

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
#: jupyter-scheduler's ``job_definitions`` table as SQLAlchemy creates it from ``JobDefinition`` (CommonColumns
#: first) in jupyter_scheduler/orm.py.
JOB_DEFINITIONS_DDL = """
CREATE TABLE job_definitions (
    runtime_environment_name VARCHAR(256) NOT NULL,
    runtime_environment_parameters VARCHAR(1024),
    compute_type VARCHAR(256),
    input_filename VARCHAR(256) NOT NULL,
    output_formats VARCHAR(512),
    name VARCHAR(256),
    tags VARCHAR(1024),
    parameters VARCHAR(1024),
    email_notifications VARCHAR(1024),
    timeout_seconds INTEGER,
    retry_on_timeout BOOLEAN,
    max_retries INTEGER,
    min_retry_interval_millis INTEGER,
    output_filename_template VARCHAR(256),
    update_time INTEGER,
    create_time INTEGER,
    job_definition_id VARCHAR(36) NOT NULL,
    schedule VARCHAR(256),
    timezone VARCHAR(36),
    url VARCHAR(256),
    active BOOLEAN,
    notification VARCHAR(1024),
    PRIMARY KEY (job_definition_id)
)
"""
SCRIPT = """
import sys
print("syncing", *sys.argv[1:])
print("a warning", file=sys.stderr)
sys.exit(3 if "--fail" in sys.argv else 0)
"""


@pytest.fixture
def files(tmp_path) -> Path:
    """A home with reports/daily.ipynb, bin/sync.py and bin/params.yaml."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "daily.ipynb").write_text(json.dumps(NOTEBOOK))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "sync.py").write_text(SCRIPT)
    (tmp_path / "bin" / "params.yaml").write_text("region: eu\nlimit: 10\n")
    return tmp_path


def plan(text: str, home: Path):
    entries, result = plan_crontab(text, home)
    return entries, {r.where: r.reason for r in result.refused}, result.notes


# -- crontab: the translation ----------------------------------------------------------------------
def test_papermill_lines_become_notebook_jobs_with_typed_parameters_in_the_crontabs_time_zone(files):
    text = (
        "MAILTO=me@example.com\nCRON_TZ=Europe/Warsaw\n"
        "0 6 * * * cd reports && papermill daily.ipynb out.ipynb -p day 1 -p ratio 0.5 -p dry True -p who eu "
        "-r code 007 -f ../bin/params.yaml --log-output > /dev/null 2>&1\n"
    )
    (entry,), refused, notes = plan(text, files)
    assert refused == {}
    assert (entry.job, entry.kind, entry.path) == ("daily", "notebook", str(files / "reports" / "daily.ipynb"))
    assert (entry.cron, entry.tz, entry.where) == ("0 6 * * *", "Europe/Warsaw", "line 3")
    assert entry.extra == {"day": 1, "ratio": 0.5, "dry": True, "who": "eu", "code": "007", "region": "eu", "limit": 10}
    assert notes == ["line 1: MAILTO is ignored (nbsched sends no mail of a run's output)"]


def test_papermills_kernel_cwd_and_parameter_file_are_taken_as_papermill_takes_them(files):
    """``-k`` must name the kernel the notebook's metadata names (nbsched runs that one); ``-f`` is read from where
    papermill starts, not from ``--cwd``; a kernel directory other than the notebook's folder is noted."""
    notebook = dict(NOTEBOOK, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    (files / "reports" / "k.ipynb").write_text(json.dumps(notebook))
    text = (
        "0 1 * * * papermill reports/k.ipynb - -k ir\n"
        "0 2 * * * papermill reports/k.ipynb - --kernel python3 --cwd bin -f bin/params.yaml\n"
        "0 3 * * * cd reports && papermill k.ipynb - -k python3\n"
        "0 4 * * * cd reports && papermill k.ipynb - -k Python3\n"  # the same kernel: Jupyter lowers the name
        "0 5 * * * papermill reports/k.ipynb - --kernel=python3 --cwd=reports --log-level=INFO -p x --y=1\n"
    )
    entries, refused, _ = plan(text, files)
    assert refused == {
        "line 1": "papermill -k ir runs the notebook with the kernel 'ir'; nbsched runs it with the kernel its "
        "metadata names ('python3'): set the notebook's kernel to 'ir' (or drop -k), then import it again"
    }
    second, third, fourth, fifth = entries
    assert second.extra == {"region": "eu", "limit": 10}
    assert second.notes == (
        f"papermill ran the notebook's kernel in {files / 'bin'}; nbsched runs it in the notebook's folder "
        f"({files / 'reports'}): relative paths in the notebook mean files there",
    )
    assert (third.extra, third.notes) == (None, ())
    assert fourth.path == third.path
    assert (fifth.extra, fifth.notes) == ({"x": "--y=1"}, ())  # --opt=value as papermill takes it; a -p value kept


def test_nbconvert_execute_and_python_scripts_translate_with_their_directory_and_environment(files):
    text = (
        "TZ=America/New_York\nGREETING=hi\n"
        f"30 7 * * mon-fri jupyter nbconvert --to notebook --execute --inplace {files}/reports/daily.ipynb >> x.log\n"
        "@hourly cd ~/bin && DEBUG=1 /usr/bin/python3 -u sync.py --fast $GREETING\n"
    )
    (notebook, script), refused, _ = plan(text, files)
    assert refused == {}
    assert (notebook.job, notebook.cron, notebook.tz, notebook.extra) == (
        "daily",
        "30 7 * * mon-fri",
        "America/New_York",
        None,
    )
    assert (script.job, script.cron, script.kind) == ("sync", "@hourly", "script")
    assert script.script.argv == ("/usr/bin/python3", "-u", "sync.py", "--fast", "hi")
    assert script.script.cwd == str(files / "bin")
    assert dict(script.script.env) == {"GREETING": "hi", "DEBUG": "1"}


def test_the_time_zone_line_applies_to_the_lines_after_it(files):
    text = "0 1 * * * python bin/sync.py\nCRON_TZ=Asia/Tokyo\n0 2 * * * python bin/sync.py\n"
    (first, second), _, _ = plan(text, files)
    assert (first.tz, second.tz) == (None, "Asia/Tokyo")
    assert (first.job, second.job) == ("sync", "sync-2")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("@reboot python bin/sync.py", "@reboot has no schedule"),
        ("0 * * * python bin/sync.py", "it has fewer than 5 time fields before its command"),
        ("0 * * *", "a cron line has 5 time fields and a command"),
        (
            "61 * * * * python bin/sync.py",
            "Invalid cron expression '61 * * * *': the minute field '61' is out of range",
        ),
        ("0 1 * * * python bin/sync.py | grep x", "it uses a pipe (|); nbsched runs one command"),
        ("0 1 * * * python bin/sync.py && python bin/sync.py", "it uses a list of commands (&&)"),
        ("0 1 * * * python bin/sync.py > out.csv", "it redirects output to 'out.csv'; only output to /dev/null"),
        ("0 1 * * * python bin/sync.py < in.txt", "it uses an input redirection (<)"),
        ("0 1 * * * python bin/sync.py &", "it uses a background command (&)"),
        ("0 1 * * * date +%Y", "'%' in a cron command starts its standard input"),
        ("0 1 * * * python $(which x).py", "command substitution"),
        ("0 1 * * * ls -l", "unknown command 'ls': nbsched imports papermill, jupyter nbconvert --execute and python"),
        ("0 1 * * * python -c 'print(1)'", "python runs no script file here"),
        ("0 1 * * * python bin/missing.py", "no script at "),
        ("0 1 * * * python $NOPE/x.py", "$NOPE is not set in the crontab"),
        ("0 1 * * * papermill reports/none.ipynb out.ipynb", "no notebook at "),
        ("0 1 * * * papermill reports/daily.ipynb o.ipynb -p x", "-p needs a name and a value"),
        ("0 1 * * * papermill reports/daily.ipynb o.ipynb --prepare-only", "papermill --prepare-only executes nothing"),
        ("0 1 * * * papermill reports/daily.ipynb o.ipynb --frobnicate", "papermill option --frobnicate is not"),
        ("0 1 * * * papermill reports/daily.ipynb o.ipynb -p x nan", "its parameters are not plain JSON data"),
        ("0 1 * * * papermill reports/daily.ipynb o.ipynb -y '[1, 2]'", "the parameters of -y are not a mapping"),
        (
            "0 1 * * * jupyter nbconvert --to html reports/daily.ipynb",
            "jupyter nbconvert without --execute only converts",
        ),
        ("0 1 * * * python 'bin/sync.py", "it does not parse as a shell command"),
    ],
)
def test_what_cannot_be_translated_is_refused_with_its_line_and_the_rest_imported(files, line, reason):
    entries, refused, _ = plan(f"# header\n{line}\n0 5 * * * python bin/sync.py\n", files)
    assert list(refused) == ["line 2"] and refused["line 2"].startswith(reason)
    assert [entry.where for entry in entries] == ["line 3"]


def test_lines_after_a_refused_time_zone_are_refused_not_run_in_another_zone(files):
    entries, refused, _ = plan(
        "0 1 * * * python bin/sync.py\nCRON_TZ=Nowhere/City\n0 2 * * * python bin/sync.py\n", files
    )
    assert [entry.where for entry in entries] == ["line 1"]
    assert refused["line 2"].startswith("Unknown time zone 'Nowhere/City'")
    assert refused["line 3"].startswith("the time zone before it is refused")


# -- crontab: files and the runner -------------------------------------------------------------------
def test_a_missing_or_unreadable_crontab_is_one_clear_line(tmp_path):
    with pytest.raises(ImportSourceError, match=r"^No crontab file at .*nope\.cron: save yours with 'crontab -l"):
        import_crontab(None, tmp_path / "nope.cron", dry_run=True)
    (tmp_path / "binary.cron").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ImportSourceError, match=r"^Cannot read the crontab .*binary\.cron"):
        import_crontab(None, tmp_path / "binary.cron", dry_run=True)


def test_a_crontab_import_runs_scripts_as_services_that_log_their_output_and_fail_by_exit_status(client, files):
    crontab = files / "my.cron"
    crontab.write_text(
        f"GREETING=hello\n*/5 * * * * cd {files} && python3 bin/sync.py --fast $GREETING\n"
        f"0 1 * * * python3 {files}/bin/sync.py --fail > /dev/null 2>&1\n0 2 * * * cat a | b\n"
    )
    result = client.import_crontab(crontab)
    assert [entry.job for entry in result.created] == ["sync", "sync-2"]
    assert [refusal.where for refusal in result.refused] == ["line 4"]
    jobs = client.jobs().set_index("name")
    assert list(jobs.index) == ["sync", "sync-2"] and list(jobs["service"]) == ["script.sync", "script.sync-2"]
    assert client.job("sync")["cron"] == "*/5 * * * *"
    ok = client.wait(client.execute("sync"), timeout=30)
    assert ok["status"] == "ok" and ok["logs"].split("\n") == ["syncing --fast hello", "a warning"]
    failed = client.wait(client.execute("sync-2"), timeout=30)
    assert failed["status"] == "error" and failed["error"] == (
        f"ScriptFailed: python3 {files}/bin/sync.py --fail exited with status 3."
    )
    again = client.import_crontab(crontab)  # nothing twice: the jobs exist
    assert again.created == [] and all("exists (imported before?)" in r.reason for r in again.refused[1:])
    assert len(client.jobs()) == 2


def test_a_refused_line_creates_nothing_and_a_dry_run_nothing_at_all(client, files):
    crontab = files / "my.cron"
    crontab.write_text(f"0 1 * * * python3 {files}/bin/sync.py | tee x\n0 2 * * * python3 {files}/bin/sync.py\n")
    dry = client.import_crontab(crontab, dry_run=True)
    assert [entry.job for entry in dry.created] == ["sync"] and dry.lines()[-1] == (
        "1 job(s) to create (dry run: none created), 1 refused"
    )
    assert client.jobs().empty and "script.sync" not in set(client.services()["name"])


def test_cli_import_dry_run_needs_no_runner_and_a_refusal_sets_the_exit_status(home, files):
    crontab = files / "my.cron"
    crontab.write_text("0 2 * * * python3 bin/missing.py\n")
    result = run_cli("import", "crontab", str(crontab), "--dry-run", home=home)
    assert result.returncode == 1
    assert result.stderr.startswith("refused line 1: '0 2 * * * python3 bin/missing.py': no script at ")
    assert result.stdout == "0 job(s) to create (dry run: none created), 1 refused\n"
    assert not (home / "runner.pid").exists()
    missing = run_cli("import", "crontab", str(files / "nope.cron"), home=home)
    assert missing.returncode == 1 and missing.stderr.startswith("nbsched: error: No crontab file at ")
    no_file = run_cli("import", "crontab", home=home)
    assert no_file.returncode == 1 and "import crontab needs the crontab file" in no_file.stderr
    assert run_cli("import", "cron-tab", "x", home=home).returncode == 2


def test_magic_import_shows_what_it_created_and_refuses_bad_input_in_one_line(ip, client, files):
    crontab = files / "my.cron"
    crontab.write_text(f"0 2 * * * python3 {files}/bin/sync.py\n")
    ip.run_line_magic("schedule", f"import crontab {crontab}")
    assert list(client.jobs()["name"]) == ["sync"]
    with pytest.raises(UsageError, match="No crontab file at"):
        ip.run_line_magic("schedule", f"import crontab {files}/nope.cron")
    with pytest.raises(UsageError, match="invalid choice"):
        ip.run_line_magic("schedule", "import cron-tab x")


# -- jupyter-scheduler ---------------------------------------------------------------------------------
def scheduler_db(path: Path, rows: list[dict]) -> Path:
    """A jupyter-scheduler database with ``rows`` of job definitions (defaults for the other columns)."""
    with sqlite3.connect(path) as db:
        db.execute(JOB_DEFINITIONS_DDL)
        for number, row in enumerate(rows):
            values = {
                "runtime_environment_name": "python3",
                "input_filename": "daily.ipynb",
                "output_formats": json.dumps(["ipynb"]),
                "timeout_seconds": 600,
                "create_time": 1_700_000_000_000 + number,
                "url": f"/job_definitions/{row['job_definition_id']}",
                "active": 1,
                **row,
            }
            columns = ", ".join(values)
            db.execute(
                f"INSERT INTO job_definitions ({columns}) VALUES ({', '.join('?' * len(values))})", [*values.values()]
            )
    db.close()
    return path


def staged(data_dir: Path, definition_id: str, filename: str = "daily.ipynb") -> None:
    folder = data_dir / "scheduler_staging_area" / definition_id
    folder.mkdir(parents=True)
    (folder / filename).write_text(json.dumps(NOTEBOOK))


def test_job_definitions_become_notebook_jobs_with_parameters_time_zones_and_active_flags(tmp_path):
    for definition_id in ("a1", "b2", "c3", "d4"):
        staged(tmp_path, definition_id)
    rows = [
        {
            "job_definition_id": "a1",
            "name": "Daily report",
            "schedule": "0 6 * * *",
            "timezone": "Europe/Warsaw",
            "parameters": json.dumps({"day": 1, "region": "eu"}),
        },
        {"job_definition_id": "b2", "name": "paused one", "schedule": "*/15 * * * *", "timezone": None, "active": 0},
        {"job_definition_id": "c3", "name": "on demand", "schedule": None},
        {"job_definition_id": "d4", "name": "bad zone", "schedule": "0 1 * * *", "timezone": "Mars/Base"},
        {"job_definition_id": "e5", "name": "not staged", "schedule": "0 1 * * *", "input_filename": "gone.ipynb"},
    ]
    db = scheduler_db(tmp_path / "scheduler.sqlite", rows)
    result = import_jupyter_scheduler(None, db, dry_run=True)
    daily, paused = result.created
    assert (daily.job, daily.cron, daily.tz, daily.extra, daily.active) == (
        "Daily-report",
        "0 6 * * *",
        "Europe/Warsaw",
        {"day": 1, "region": "eu"},
        True,
    )
    assert daily.path == str(tmp_path / "scheduler_staging_area" / "a1" / "daily.ipynb")
    assert (paused.job, paused.tz, paused.extra, paused.active) == ("paused-one", None, None, False)
    reasons = {r.where: r.reason for r in result.refused}
    assert reasons["job definition 'on demand' (c3)"].startswith("it has no schedule (it runs on demand)")
    assert reasons["job definition 'bad zone' (d4)"].startswith("Unknown time zone 'Mars/Base'")
    assert reasons["job definition 'not staged' (e5)"].startswith("its notebook is not at ")


def test_a_notebook_not_staged_is_found_under_the_root_dir(tmp_path):
    (tmp_path / "root" / "reports").mkdir(parents=True)
    (tmp_path / "root" / "reports" / "w.ipynb").write_text(json.dumps(NOTEBOOK))
    row = {"job_definition_id": "x", "name": "w", "schedule": "0 1 * * *", "input_filename": "reports/w.ipynb"}
    db = scheduler_db(tmp_path / "scheduler.sqlite", [row])
    (entry,) = import_jupyter_scheduler(None, db, dry_run=True, root_dir=tmp_path / "root").created
    assert entry.path == str(tmp_path / "root" / "reports" / "w.ipynb")


def test_a_database_at_a_path_with_uri_characters_is_read_and_a_field_of_another_type_is_refused(tmp_path):
    folder = tmp_path / "odd?name#%20dir"
    folder.mkdir()
    staged(folder, "a1")
    rows = [
        {"job_definition_id": "a1", "name": "ok", "schedule": "0 6 * * *"},
        {"job_definition_id": "b2", "name": "blob", "schedule": "0 6 * * *", "input_filename": b"x.ipynb"},
    ]
    db = scheduler_db(folder / "scheduler.sqlite", rows)
    result = import_jupyter_scheduler(None, db, dry_run=True)
    assert [entry.job for entry in result.created] == ["ok"]
    assert [refusal.where for refusal in result.refused] == ["job definition 'blob' (b2)"]


def test_a_database_that_is_missing_not_sqlite_or_not_jupyter_schedulers_is_one_clear_line(tmp_path):
    with pytest.raises(ImportSourceError, match=r"^No jupyter-scheduler database at .*none\.sqlite: give the path"):
        import_jupyter_scheduler(None, tmp_path / "none.sqlite", dry_run=True)
    (tmp_path / "text.sqlite").write_text("not a database at all, just text" * 100)
    with pytest.raises(ImportSourceError, match=r"^Cannot read .*text\.sqlite as a jupyter-scheduler database: file"):
        import_jupyter_scheduler(None, tmp_path / "text.sqlite", dry_run=True)
    with sqlite3.connect(tmp_path / "other.sqlite") as db:
        db.execute("CREATE TABLE jobs (id TEXT)")
    db.close()
    with pytest.raises(ImportSourceError, match=r"other\.sqlite has no job_definitions table: it is not a jupyter-s"):
        import_jupyter_scheduler(None, tmp_path / "other.sqlite", dry_run=True)
    with sqlite3.connect(tmp_path / "old.sqlite") as db:
        db.execute("CREATE TABLE job_definitions (job_definition_id TEXT, name TEXT, schedule TEXT)")
    db.close()
    with pytest.raises(ImportSourceError, match=r"has no column input_filename, timezone, parameters, active"):
        import_jupyter_scheduler(None, tmp_path / "old.sqlite", dry_run=True)


def test_cli_import_jupyter_scheduler_dry_run_lists_the_jobs(home, tmp_path):
    staged(tmp_path, "a1")
    row = {
        "job_definition_id": "a1",
        "name": "daily",
        "schedule": "0 6 * * *",
        "timezone": "Europe/Warsaw",
        "parameters": json.dumps({"day": 1}),
    }
    db = scheduler_db(tmp_path / "scheduler.sqlite", [row])
    result = run_cli("import", "jupyter-scheduler", str(db), "--dry-run", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('would create job daily: cron "0 6 * * *" in Europe/Warsaw, notebook ')
    assert "extra {\"day\": 1} [job definition 'daily' (a1)]" in result.stdout
    bad = run_cli("import", "jupyter-scheduler", str(tmp_path / "nope.sqlite"), "--dry-run", home=home)
    assert bad.returncode == 1 and bad.stderr.startswith("nbsched: error: No jupyter-scheduler database at ")
    assert bad.stderr.count("\n") == 1


# -- notebooks end to end (needs notebook services: issue 18 items 1-2) ------------------------------------
PARAMETERIZED = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": "day = 1",
            "outputs": [],
            "execution_count": None,
            "id": "p",
        },
        {
            "cell_type": "code",
            "metadata": {},
            "source": "print(day)",
            "outputs": [],
            "execution_count": None,
            "id": "q",
        },
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_notebook_lines_and_definitions_become_jobs_of_the_notebooks_service(client, files, tmp_path):
    from nbsched.errors import DeployError

    notebook = files / "reports" / "daily.ipynb"
    notebook.write_text(json.dumps(PARAMETERIZED))
    try:
        client.deploy(str(notebook))
    except DeployError:
        pytest.skip("notebook services (issue 18 items 1-2) are not merged into this tree yet")
    (files / "nb.cron").write_text(f"CRON_TZ=Europe/Warsaw\n0 6 * * * papermill {notebook} out.ipynb -p day 3\n")
    result = client.import_crontab(files / "nb.cron")
    assert [entry.job for entry in result.created] == ["daily"] and result.refused == []
    job = client.job("daily")
    assert (job["service"], job["cron"], job["tz"], job["extra"]) == ("daily", "0 6 * * *", "Europe/Warsaw", {"day": 3})
    staged(tmp_path, "a1")
    (tmp_path / "scheduler_staging_area" / "a1" / "daily.ipynb").write_text(json.dumps(PARAMETERIZED))
    row = {
        "job_definition_id": "a1",
        "name": "weekly",
        "schedule": "0 7 * * mon",
        "parameters": '{"day": 7}',
        "timezone": "Asia/Tokyo",
        "active": 0,
    }
    imported = client.import_jupyter_scheduler(scheduler_db(tmp_path / "scheduler.sqlite", [row]))
    assert [entry.job for entry in imported.created] == ["weekly"]
    weekly = client.job("weekly")
    assert (weekly["service"], weekly["tz"], weekly["extra"], weekly["active"]) == (
        "daily",
        "Asia/Tokyo",
        {"day": 7},
        False,
    )


def test_a_script_lines_quotes_backslashes_and_percent_signs_reach_the_script_as_written(client, files):
    crontab = files / "odd.cron"
    crontab.write_text(f'0 1 * * * python3 {files}/bin/sync.py \'say """hi"""\' back\\\\slash 50\\%\n')
    (entry,) = client.import_crontab(crontab).created
    run = client.wait(client.execute(entry.job), timeout=30)
    assert run["status"] == "ok", run["error"]
    assert run["logs"].split("\n")[0] == 'syncing say """hi""" back\\slash 50%'
