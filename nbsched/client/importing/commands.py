"""The command of a crontab line, translated: ``papermill IN OUT -p NAME VALUE``, ``jupyter nbconvert --execute NB``
or a Python script (``python x.py args``), after a ``cd DIR &&`` and before redirections of its output (pure).

What cannot be translated raises ``Untranslatable`` with the reason, in words a crontab's author knows.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

#: An output redirection at the end of a command: ``> x``, ``>> x``, ``2> x``, ``&> x``, or ``2>&1``.
_TRAILING_REDIRECT = re.compile(r"\s*(?:(?P<dup>[12]?>&[12])|(?P<op>[12]?>>?|&>>?)\s*(?P<target>[^\s<>|;&]+))\s*$")
_OPERATOR = re.compile(r"^[();<>|&]+$")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
#: What each shell operator is, for the refusal.
_OPERATORS = {"|": "a pipe (|)", "||": "a list of commands (||)", "&&": "a list of commands (&&)", ";": "a list (;)"}
#: papermill options that change nothing nbsched does (with how many values each takes).
_PAPERMILL_IGNORED = {
    "--log-output": 0,
    "--no-log-output": 0,
    "--progress-bar": 0,
    "--no-progress-bar": 0,
    "--request-save-on-cell-execute": 0,
    "--no-request-save-on-cell-execute": 0,
    "--report-mode": 0,
    "--no-report-mode": 0,
    "--log-level": 1,
    "--autosave-cell-every": 1,
    "--start-timeout": 1,
    "--start_timeout": 1,
    "--execution-timeout": 1,
    "--language": 1,
    "-l": 1,
    "--engine": 1,
}
#: papermill's options that name the kernel: nbsched runs a notebook with the kernel its metadata names.
_PAPERMILL_KERNEL = ("-k", "--kernel")
#: nbconvert options that change nothing nbsched does (with how many values each takes, 0 for flags).
_NBCONVERT_IGNORED = {"--execute": 0, "--inplace": 0, "--allow-errors": 0, "--stdout": 0, "--to": 1}
_NBCONVERT_IGNORED |= {"--output": 1, "--output-dir": 1, "--log-level": 1, "--debug": 0}
#: python options that take a value; flags such as ``-u`` and ``-O`` take none.
_PYTHON_VALUED = {"-X", "-W", "--check-hash-based-pycs"}


class Untranslatable(ValueError):
    """A crontab command nbsched cannot run as it is; the message says why."""


@dataclass
class Command:
    """What a crontab command runs: a notebook (with parameters) or a script (its argv), where, and notes."""

    path: Path
    cwd: Path
    parameters: dict | None = None
    argv: list[str] | None = None  #: None: a notebook
    env: dict[str, str] | None = None
    notes: list[str] | None = None


def translate(command: str, env: dict[str, str], home: Path) -> Command:
    """Translate the command part of a crontab line (``env``: the crontab's variables; ``home``: where cron runs)."""
    if re.search(r"(?<!\\)%", command):
        raise Untranslatable("'%' in a cron command starts its standard input; nbsched gives a run none")
    command = command.replace("\\%", "%")
    if "`" in command or "$(" in command:
        raise Untranslatable("command substitution (` or $(...)) needs a shell; write the value in the line")
    notes: list[str] = []
    command = _strip_redirections(command, notes)
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError as exc:
        raise Untranslatable(f"it does not parse as a shell command ({exc})") from None
    variables = {"HOME": str(home), **env}
    cwd, words = _change_directory(words, variables, home)
    command_env, words = _assignments(words, variables)
    _refuse_operators(words)
    words = [_expand(word, variables) for word in words]
    if not words:
        raise Untranslatable("it runs no command")
    program = Path(words[0]).name
    if program == "papermill":
        return _papermill(words[1:], cwd, notes)
    if _PYTHON.fullmatch(program) and words[1:3] == ["-m", "papermill"]:
        return _papermill(words[3:], cwd, notes)
    if (program == "jupyter" and words[1:2] == ["nbconvert"]) or program == "jupyter-nbconvert":
        return _nbconvert(words[2 if program == "jupyter" else 1 :], cwd, notes)
    if _PYTHON.fullmatch(program):
        return _python(words, cwd, {**env, **command_env}, notes)
    raise Untranslatable(
        f"unknown command {words[0]!r}: nbsched imports papermill, jupyter nbconvert --execute and python script lines"
    )


def _strip_redirections(command: str, notes: list[str]) -> str:
    """The command without its trailing output redirections, which may only drop output or write a log file."""
    while match := _TRAILING_REDIRECT.search(command):
        target = match["target"]
        if target is not None and target != "/dev/null":
            if not target.endswith((".log", ".txt", ".out")):
                raise Untranslatable(
                    f"it redirects output to {target!r}; only output to /dev/null or a log file (.log) is replaced "
                    "(by the run's logs)"
                )
            notes.append(f"output went to {target}; it is in the run's logs now")
        command = command[: match.start()]
    return command


def _change_directory(words: list[str], variables: dict, home: Path) -> tuple[Path, list[str]]:
    """A leading ``cd DIR &&`` (or ``;``): the directory the command runs in (cron's is the home directory)."""
    if len(words) >= 3 and words[0] == "cd" and words[2] in ("&&", ";"):
        return _path(_expand(words[1], variables), home), words[3:]
    return home, words


def _assignments(words: list[str], variables: dict) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` words: the environment of this command only."""
    env = {}
    while words and _ASSIGNMENT.match(words[0]):
        name, _, value = words[0].partition("=")
        env[name] = _expand(value, variables)
        words = words[1:]
    return env, words


def _refuse_operators(words: list[str]) -> None:
    for word in words:
        if _OPERATOR.match(word):
            what = _OPERATORS.get(word, f"the shell operator {word!r}")
            if "<" in word:
                what = "an input redirection (<)"
            elif ">" in word:
                what = "an output redirection before the end of the line"
            elif word == "&":
                what = "a background command (&)"
            raise Untranslatable(f"it uses {what}; nbsched runs one command (wrap them in a script)")


def _expand(word: str, variables: dict[str, str]) -> str:
    """``~`` and ``$NAME``/``${NAME}`` of the crontab's variables (and ``HOME``); another variable is refused."""
    if word.startswith("~"):
        word = variables["HOME"] + word[1:] if word == "~" or word.startswith("~/") else word

    def value(match: re.Match) -> str:
        name = match[1] or match[2]
        if name not in variables:
            raise Untranslatable(f"${name} is not set in the crontab; set it on a line of its own or write its value")
        return variables[name]

    return _VARIABLE.sub(value, word)


def _path(word: str, cwd: Path) -> Path:
    return Path(os.path.normpath(cwd / word))


def _notebook(word: str, cwd: Path) -> Path:
    path = _path(word, cwd)
    if path.suffix != ".ipynb":
        raise Untranslatable(f"{word!r} is not a notebook (.ipynb)")
    if not path.is_file():
        raise Untranslatable(f"no notebook at {path}")
    return path


def _value_of(options: list[str], index: int, option: str) -> str:
    if index + 1 >= len(options):
        raise Untranslatable(f"{option} needs a value")
    return options[index + 1]


def _papermill(options: list[str], cwd: Path, notes: list[str]) -> Command:
    """``papermill IN [OUT] [-p NAME VALUE] [-r NAME VALUE] [-y YAML] [-f FILE] [-b BASE64] [--cwd DIR] ...``."""
    positional, parameters, run_in, kernel, index = [], {}, cwd, None, 0
    options = list(options)
    while index < len(options):
        option = options[index]
        if option.startswith("--") and "=" in option:  # --cwd=DIR, as papermill (click) takes it: --cwd DIR
            option, value = option.split("=", 1)
            options[index : index + 1] = [option, value]
        if option in ("-p", "--parameters", "-r", "--parameters_raw", "--parameters-raw"):
            if index + 2 >= len(options):
                raise Untranslatable(f"{option} needs a name and a value")
            name, value = options[index + 1], options[index + 2]
            parameters[name] = value if option.startswith(("-r", "--parameters_r", "--parameters-r")) else _typed(value)
            index += 3
            continue
        if option in ("-y", "--parameters_yaml", "-b", "--parameters_base64", "-f", "--parameters_file"):
            # papermill reads the file from where it is started, not from --cwd (the kernel's directory)
            parameters.update(_yaml_parameters(option, _value_of(options, index, option), cwd))
        elif option in _PAPERMILL_KERNEL:
            kernel = _value_of(options, index, option)
        elif option == "--cwd":
            run_in = _path(_value_of(options, index, option), cwd)
        elif option == "--prepare-only":
            raise Untranslatable("papermill --prepare-only executes nothing")
        elif option in _PAPERMILL_IGNORED:
            index += 1 + _PAPERMILL_IGNORED[option]
            continue
        elif option.startswith("-") and option != "-":
            raise Untranslatable(f"papermill option {option} is not translated")
        else:
            positional.append(option)
            index += 1
            continue
        index += 2
    if not positional or len(positional) > 2:
        raise Untranslatable("papermill needs the input notebook (and the output notebook)")
    if len(positional) == 2 and positional[1] != "-":
        notes.append(f"papermill wrote {positional[1]}; the executed copy is the run's output now")
    notebook = _notebook(positional[0], cwd)
    if kernel is not None:
        _check_kernel(notebook, kernel)
    if run_in.resolve() != notebook.parent.resolve():
        notes.append(
            f"papermill ran the notebook's kernel in {run_in}; nbsched runs it in the notebook's folder "
            f"({notebook.parent}): relative paths in the notebook mean files there"
        )
    return Command(notebook, run_in, parameters or None, notes=notes)


def _check_kernel(notebook: Path, kernel: str) -> None:
    """Refuse ``papermill -k KERNEL`` when the notebook's metadata names another kernel (nbsched runs that one)."""
    try:
        named = json.loads(notebook.read_text(encoding="utf-8"))["metadata"]["kernelspec"]["name"]
    except (OSError, ValueError, TypeError, KeyError):
        return  # deploying the notebook says what is wrong with it
    if str(named).lower() != kernel.lower():  # Jupyter finds a kernel by its name in lower case
        raise Untranslatable(
            f"papermill -k {kernel} runs the notebook with the kernel {kernel!r}; nbsched runs it with the kernel its "
            f"metadata names ({named!r}): set the notebook's kernel to {kernel!r} (or drop -k), then import it again"
        )


def _typed(value: str):
    """A ``-p`` value as papermill reads it: True, False, None, an int, a float, or the text."""
    special = {"True": True, "False": False, "None": None}
    if value in special:
        return special[value]
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _yaml_parameters(option: str, value: str, cwd: Path) -> dict:
    try:
        import yaml
    except ImportError:
        raise Untranslatable(f"papermill's {option} parameters are YAML: pip install pyyaml") from None

    try:
        if option in ("-f", "--parameters_file"):
            value = _path(value, cwd).read_text(encoding="utf-8")
        elif option in ("-b", "--parameters_base64"):
            value = base64.b64decode(value).decode("utf-8")
        loaded = yaml.safe_load(value)
    except (OSError, UnicodeDecodeError, binascii.Error, yaml.YAMLError) as exc:
        raise Untranslatable(f"the parameters of {option} cannot be read ({' '.join(str(exc).split())})") from None
    if not isinstance(loaded, dict):
        raise Untranslatable(f"the parameters of {option} are not a mapping of names to values")
    return loaded


def _nbconvert(options: list[str], cwd: Path, notes: list[str]) -> Command:
    """``jupyter nbconvert --execute [--to notebook] [--inplace] [--output X] ... NB``."""
    if "--execute" not in options:
        raise Untranslatable("jupyter nbconvert without --execute only converts; nothing to run")
    notebooks, index = [], 0
    while index < len(options):
        option = options[index]
        name = option.split("=", 1)[0]
        if option.startswith("--ExecutePreprocessor.") or (name in _NBCONVERT_IGNORED and "=" in option):
            index += 1
        elif name in _NBCONVERT_IGNORED:
            index += 1 + _NBCONVERT_IGNORED[name]
        elif option.startswith("-"):
            raise Untranslatable(f"jupyter nbconvert option {option} is not translated")
        else:
            notebooks.append(option)
            index += 1
    if len(notebooks) != 1:
        raise Untranslatable("jupyter nbconvert --execute needs one notebook per line")
    notes.append("nbconvert's converted file is not written; the executed copy is the run's output")
    return Command(_notebook(notebooks[0], cwd), cwd, notes=notes)


def _python(words: list[str], cwd: Path, env: dict[str, str], notes: list[str]) -> Command:
    """``python [options] script.py [args]`` or ``python -m module [args]``: run as written, in ``cwd``."""
    index = 1
    while index < len(words) and words[index].startswith("-") and words[index] not in ("-m", "-c", "-"):
        index += 2 if words[index] in _PYTHON_VALUED else 1
    if index >= len(words) or words[index] in ("-c", "-"):
        raise Untranslatable("python runs no script file here (-c or standard input); put the code in a script")
    if words[index] == "-m":
        if index + 1 >= len(words):
            raise Untranslatable("python -m needs a module")
        module = words[index + 1]
        return Command(Path(module.rpartition(".")[2]), cwd, argv=words, env=env, notes=notes)
    script = _path(words[index], cwd)
    if not script.is_file():
        raise Untranslatable(f"no script at {script}")
    return Command(script, cwd, argv=words, env=env, notes=notes)
