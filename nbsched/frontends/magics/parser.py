"""What the three magics share: argparse that raises UsageError, splitting a line, ``$name``, the session's client.

A mistake the user made (an unknown subcommand or option, a value nbsched refuses, a job that
does not exist, ...) becomes IPython's ``UsageError``: one line that says what to do, never a
traceback.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable

from IPython.core.error import UsageError
from IPython.display import display

from ... import config
from ...client.api import Client
from ...client.launch import started_text
from ...errors import NbschedError, did_you_mean
from ..commands import error_text

#: A subcommand: the session and the words after the subcommand's name; what it returns is the cell's value.
Subcommand = Callable[["Session", list[str]], object]


def show(text: str) -> None:
    """``text`` as the output of the cell, shown as plain text (the library itself never prints)."""
    display({"text/plain": text}, raw=True)


class HelpShown(Exception):
    """``--help`` showed the help; nothing else to do."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, with an example) instead of exiting."""

    def __init__(self, prog: str, example: str, **kwargs):
        super().__init__(prog=prog, add_help=True, allow_abbrev=False, **kwargs)
        self.example = example

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}. Example: {self.example}")

    def print_help(self, file=None):
        show(self.format_help().rstrip("\n"))

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise UsageError(message.strip())
        raise HelpShown()

    def parse(self, words: list[str]) -> argparse.Namespace:
        options, unknown = self.parse_known_args(words)
        if unknown:
            self._refuse_unknown(unknown[0])
        return options

    def _refuse_unknown(self, word: str):
        if word.startswith("-"):
            flags = [flag for action in self._actions for flag in action.option_strings]
            hint = did_you_mean(word.split("=")[0], flags)
            raise UsageError(f"{self.prog}: unknown option {word!r}.{hint} Example: {self.example}")
        raise UsageError(
            f"{self.prog}: unexpected argument {word!r} (quote values with spaces). Example: {self.example}"
        )


def expand_variables(line: str, namespace: dict) -> str:
    """Replace ``$name`` by the value of the notebook variable ``name``; ``{...}`` stays as typed (JSON)."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in namespace:
            return match.group(0)
        return shlex.quote(str(namespace[name]))

    return re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", value, line)


def split_line(line: str, prog: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f'{prog}: {exc} (close the quote). Example: %schedule cron "0 9 * * mon" api.hello') from None


class Session:
    """The client the magics share; a new one when NBSCHED_* settings change (e.g. the time zone)."""

    def __init__(self) -> None:
        self._client: Client | None = None

    def client(self) -> Client:
        settings = config.settings()
        if self._client is None or self._client.settings != settings:
            self.close()
            self._client = Client(settings)
            if self._client.started_runner is not None:
                show(started_text(settings, self._client.started_runner))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def run_subcommand(session: Session, line: str, magic: str, help_text: str, subcommands: dict[str, Subcommand]):
    """Split a magic's line, show its help when empty, and run the subcommand it names."""
    words = split_line(line, magic)
    if not words:
        show(help_text)
        return None
    name, rest = words[0], words[1:]
    if name not in subcommands:
        raise UsageError(
            f"Unknown subcommand {name!r}.{did_you_mean(name, list(subcommands))} "
            f"Subcommands: {', '.join(subcommands)}. See {magic} help."
        )
    return as_usage_errors(subcommands[name], session, rest)


def as_usage_errors(func: Callable, *args, **kwargs):
    """Call ``func``; an NbschedError becomes a one-line UsageError, ending with its hint in the magics' words."""
    try:
        return func(*args, **kwargs)
    except HelpShown:
        return None
    except NbschedError as exc:
        raise UsageError(error_text(exc, "magic")) from None


def subcommands_of(namespace: dict, prefix: str) -> dict[str, Subcommand]:
    """The functions named ``prefix + NAME`` in a module, by NAME, in the order they are defined."""
    return {name.removeprefix(prefix): func for name, func in namespace.items() if name.startswith(prefix)}
