"""``%connection``: add, list, test and delete outgoing connections (REST, SMTP, kvdb).

Options and spellings are the command line's (``commands``): headers ``NAME:VALUE`` or
``NAME=VALUE``, timeouts ``10s`` or ``10``.
"""

from __future__ import annotations

import re

from .. import connection_options
from ..commands import one_line
from .help import CONNECTION_HELP
from .parser import Parser, Session, run_subcommand, show, subcommands_of


def _connection_parser(kind: str, example: str) -> Parser:
    parser = Parser(f"%connection {kind}", example)
    parser.add_argument("name")
    parser.add_argument("address", metavar="URL" if kind == "rest" else "HOST:PORT")
    connection_options.add_connection_options(parser, kind)
    return parser


def con_rest(session: Session, words: list[str]):
    parser = _connection_parser("rest", '%connection rest "My Data Source" http://127.0.0.1:8000/data')
    options = parser.parse(words)
    address = options.address  # the runner checks it, naming the connection
    args = connection_options.rest_arguments(options)
    session.client().connections.add_rest(options.name, address, **args)
    show(f"REST connection {options.name!r} -> {address}" + _secret_note(args))


def con_smtp(session: Session, words: list[str]):
    parser = _connection_parser("smtp", "%connection smtp mail 127.0.0.1:8025 --username me --password-env SMTP_PW")
    options = parser.parse(words)
    host, port = connection_options.host_port(options.address)
    args = connection_options.smtp_arguments(options)
    session.client().connections.add_smtp(options.name, host, port, **args)
    show(f"SMTP connection {options.name!r} -> {host}:{port}" + _secret_note(args))


def _secret_note(args: dict) -> str:
    return " (secret stored, not shown)" if args.get("password") or args.get("token") else ""


def con_kvdb(session: Session, words: list[str]):
    parser = Parser("%connection kvdb", "%connection kvdb redis://127.0.0.1:6379/0 --prefix proj:")
    parser.add_argument("url")
    connection_options.add_kvdb_options(parser)
    options = parser.parse(words)
    session.client().connections.set_kvdb(connection_options.check_kvdb_url(options.url), prefix=options.prefix)
    show(f"kvdb -> {_hide_password(options.url)}" + (f" (keys prefixed {options.prefix!r})" if options.prefix else ""))


def _hide_password(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def con_list(session: Session, words: list[str]):
    Parser("%connection list", "%connection list").parse(words)
    return session.client().connections.list()


def con_delete(session: Session, words: list[str]):
    parser = Parser("%connection delete", "%connection delete mail")
    parser.add_argument("name")
    options = parser.parse(words)
    session.client().connections.delete(options.name)
    show(f"deleted connection {options.name!r}")


def con_test(session: Session, words: list[str]):
    parser = Parser("%connection test", "%connection test mail")
    parser.add_argument("name")
    options = parser.parse(words)
    result = session.client().connections.test(options.name)
    show(_test_summary(options.name, result))


def _test_summary(name: str, result: dict) -> str:
    detail = one_line(result.get("detail") or "")
    return f"connection {name!r}: {'ok' if result.get('ok') else 'FAILED'}" + (f" ({detail})" if detail else "")


def con_help(session: Session, words: list[str]):
    show(CONNECTION_HELP)


SUBCOMMANDS = subcommands_of(globals(), "con_")


def run_connection(session: Session, line: str):
    return run_subcommand(session, line, "%connection", CONNECTION_HELP, SUBCOMMANDS)
