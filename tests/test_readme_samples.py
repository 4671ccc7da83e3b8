"""Every code block in README.md and docs/*.md runs as written, against a real runner in a temp home.

Per file and per kind, in the order they appear: ```python blocks run in one namespace; magic blocks
(``%load_ext``, ``%%service``, ``%schedule``) in a real IPython shell; shell blocks run their ``nbsched ...``
lines through the real command line. A block that is not run is in ``NOT_RUN`` with the reason.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

import nbsched

pytestmark = pytest.mark.slow

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGUAGES = ("", "bash", "sh", "shell", "console")

#: Blocks that are not run, by (file, first line), with the reason.
NOT_RUN = {
    ("README.md", 'pip install -e ".[lab]" && jupyter lab'): "installs, then serves until stopped",
    ("README.md", 'pip install -e ".[test]" && pytest'): "the test suite itself (.ci/run runs this line)",
    ("README.md", "nbsched/"): "the package layout, not commands",
    ("docs/postgresql.md", 'pip install "nbsched[postgres]"     # psycopg 3 and ADBC\'s PostgreSQL driver'): (
        "installs"
    ),
    ("docs/postgresql.md", "export NBSCHED_STORE=postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME]"): (
        "the URL's template, not a URL"
    ),
    ("docs/postgresql.md", "[Unit]"): "a systemd unit file",
    ("docs/live-logs.md", "nbsched logs RUN_ID --follow          # exit status 0 if the run ended ok, 1 otherwise"): (
        "a synopsis with placeholders (tests/test_live_logs.py runs it)"
    ),
    ("docs/import.md", "nbsched import crontab FILE [--dry-run]"): (
        "a synopsis with placeholders (tests/test_import.py runs it)"
    ),
}
#: What the samples say comes from the environment (secrets given as ``--password-env VAR`` or ``env:VAR``).
SAMPLE_ENVIRONMENT = {"SOURCE_PW": "source-secret", "SMTP_PASSWORD": "smtp-secret", "API_TOKEN": "api-token"}


@pytest.fixture
def environment(home, monkeypatch):
    """The sample's environment, in the repository (the samples name ``services/`` as a reader in a checkout would)."""
    for name, value in SAMPLE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NBSCHED_TIMEZONE", "UTC")  # so that a sample's `%schedule config timezone=...` is undone
    monkeypatch.chdir(REPO)
    return home


@dataclass(frozen=True)
class Block:
    """A fenced code block: its file (relative to the repository), first line number, language and text."""

    path: str
    line: int
    language: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0] if self.text else ""

    @property
    def kind(self) -> str:
        """``magic``, ``python``, ``shell`` (it has ``nbsched`` lines) or ``other``."""
        first = self.first_line.lstrip()
        if first.startswith("%"):
            return "magic"
        if self.language == "python":
            return "python"
        if self.language in SHELL_LANGUAGES and any(line[0] == "nbsched" for line in shell_lines(self.text)):
            return "shell"
        return "other"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            if language is None:
                language, start, lines = line[3:].strip(), number + 1, []
            else:
                blocks.append(Block(str(path.relative_to(REPO)), start, language, "\n".join(lines)))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def shell_lines(text: str) -> list[list[str]]:
    """A shell block's commands as argument lists: continuations joined, comments dropped, split at ``;`` and ``&&``."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&")
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in (";", "&&"):
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(token)
    return commands


def blocks_of(kind: str) -> list:
    """One pytest parameter per document that has blocks of ``kind`` to run."""
    params = []
    for path in DOCUMENTS:
        blocks = [b for b in fenced_blocks(path) if b.kind == kind and (b.path, b.first_line) not in NOT_RUN]
        if blocks:
            params.append(pytest.param(blocks, id=blocks[0].path))
    return params


def test_every_block_runs_or_says_why_not():
    blocks = [block for path in DOCUMENTS for block in fenced_blocks(path)]
    keys = {(block.path, block.first_line) for block in blocks}
    assert [key for key in NOT_RUN if key not in keys] == [], "NOT_RUN names blocks that are gone"
    unexplained = [str(b) for b in blocks if b.kind == "other" and (b.path, b.first_line) not in NOT_RUN]
    assert unexplained == [], "blocks that are neither run nor listed in NOT_RUN with a reason"


@pytest.mark.parametrize("blocks", blocks_of("python"))
def test_python_blocks_run_as_written(blocks, environment):
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:
        before = dict(namespace)
        exec(compile(block.text, str(block), "exec"), namespace)
        if any(_is_service(value) and before.get(key) is not value for key, value in namespace.items()):
            _run_once_without_extra(block)
    client = namespace.get("c")
    if isinstance(client, nbsched.Client):
        client.close()


def _is_service(value) -> bool:
    return isinstance(value, type) and issubclass(value, nbsched.Service) and value is not nbsched.Service


def _run_once_without_extra(block: Block) -> None:
    """Deploy the services a block defines and run each once with no extra: the sample must work as it is."""
    client = nbsched.connect()
    try:
        for name in client.deploy(block.text):
            run = client.wait(client.invoke(name))
            assert run["status"] == "ok", f"{block}: {name} -> {run['status']}: {run['error']}"
    finally:
        client.close()


@pytest.mark.parametrize("blocks", blocks_of("magic"))
def test_magic_blocks_run_as_written(blocks, ip, environment):
    for block in blocks:
        result = ip.run_cell(block.text)
        assert result.success, f"{block}: {result.error_before_exec or result.error_in_exec!r}"


@pytest.mark.parametrize("blocks", blocks_of("shell"))
def test_shell_blocks_run_as_written(blocks, environment, request):
    home = environment
    env = dict(os.environ, NBSCHED_HOME=str(home))
    if any("redis://127.0.0.1:6379" in block.text for block in blocks):
        request.getfixturevalue("redis_url")  # the local Redis the samples name: skips (or fails in CI) without it
    needs_postgres = any("postgresql://" in block.text for block in blocks)
    pg_url = request.getfixturevalue("pg_url") if needs_postgres else None
    if blocks[0].path == "docs/postgresql.md":  # its copy from SQLite assumes a home in use: a runner, a job
        _run_cli(blocks[0], ["deploy", "services/hello.py"], env)
        _run_cli(blocks[0], ["schedule", "api.hello", "--every", "1h", "--name", "hourly"], env)
    for block in blocks:
        for command in shell_lines(block.text):
            command = [_substitute(arg, home, pg_url) for arg in command]
            if command[0] == "export":
                name, _, value = command[1].partition("=")
                if name != "NBSCHED_HOME":  # the temp home stands for the sample's own
                    env[name] = value
            elif command[0] == "nbsched":
                _run_cli(block, command[1:], env)


def _substitute(arg: str, home: Path, pg_url: str | None) -> str:
    """The sample's placeholders as this test has them: the home, and the test's PostgreSQL database."""
    arg = arg.replace("$HOME/.nbsched", str(home))
    if pg_url is not None:
        arg = re.sub(r"postgresql://\S+", pg_url, arg)
    return arg


def _run_cli(block: Block, args: list[str], env: dict) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nbsched", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, f"{block}: nbsched {shlex.join(args)} -> {result.returncode}: {result.stderr}"
