"""The connection options every front end shares: REST, SMTP and kvdb options, headers, secrets, host:port."""

from __future__ import annotations

import argparse
import os

from ..connections.definitions import TLS_MODES
from ..errors import InvalidInput
from .commands import seconds

#: How a secret option may be given (in its help text).
SECRET_HELP = "as it is or env:VARIABLE (read from the runner's environment; keeps it out of shell history)"


def add_connection_options(parser: argparse.ArgumentParser, kind: str) -> None:
    """The options of a REST or SMTP connection (after its NAME and address)."""
    parser.add_argument("--username", help="user to log in as")
    parser.add_argument("--password", help=f"password, {SECRET_HELP}")
    parser.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    parser.add_argument("--ask-password", action="store_true", help="prompt for the password")
    parser.add_argument("--timeout", help="e.g. 10 or 10s (default 10s)")
    if kind == "rest":
        parser.add_argument(
            "--header", action="append", default=[], metavar="NAME:VALUE", help="a default header (or NAME=VALUE)"
        )
        parser.add_argument("--token", help=f"a bearer token, {SECRET_HELP}")
        parser.add_argument("--no-verify", action="store_true", help="do not check the server's TLS certificate")
    else:
        parser.add_argument("--tls", choices=TLS_MODES, help=f"{', '.join(TLS_MODES)} (default none)")
        parser.add_argument("--sender", help="the From address when a message sets none")


def add_kvdb_options(parser: argparse.ArgumentParser) -> None:
    """The options of the kvdb connection (after its URL)."""
    parser.add_argument(
        "--prefix", help="put before every key self.kvdb.conn uses, e.g. proj: (projects sharing a Redis keep apart)"
    )


def rest_arguments(options: argparse.Namespace) -> dict:
    """Keyword arguments of ``client.connections.add_rest`` (after name and address) from parsed options."""
    args = _given(
        headers=headers(options.header), username=options.username, password=secret(options), token=options.token
    )
    if options.timeout is not None:
        args["timeout"] = seconds(options.timeout)
    if options.no_verify:
        args["verify"] = False
    return args


def smtp_arguments(options: argparse.Namespace) -> dict:
    """Keyword arguments of ``client.connections.add_smtp`` (after name, host and port) from parsed options."""
    args = _given(username=options.username, password=secret(options), tls=options.tls, sender=options.sender)
    if options.timeout is not None:
        args["timeout"] = seconds(options.timeout)
    return args


def _given(**values) -> dict:
    return {key: value for key, value in values.items() if value not in (None, [], {})}


def secret(options: argparse.Namespace) -> str | None:
    """The password from --password-env VAR, --ask-password (a hidden prompt) or --password; never printed."""
    if options.password_env:
        if options.password_env not in os.environ:
            raise InvalidInput(
                f"No environment variable {options.password_env!r}; set it, or use --ask-password.", field="password"
            )
        return os.environ[options.password_env]
    if options.ask_password:
        import getpass

        return getpass.getpass("password: ")
    return options.password


def header(text: str) -> tuple[str, str]:
    """``NAME:VALUE`` or ``NAME=VALUE`` (split at the first ``:`` or ``=``) as (name, value)."""
    split = min((at for at in (text.find("="), text.find(":")) if at > 0), default=-1)
    if split < 0 or not text[:split].strip():
        raise InvalidInput(
            f"Invalid --header {text!r}: use NAME:VALUE or NAME=VALUE, e.g. --header 'Accept: application/json'.",
            field="headers",
        )
    return text[:split].strip(), text[split + 1 :].strip()


def headers(pairs: list[str]) -> dict[str, str]:
    return dict(header(pair) for pair in pairs)


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidInput(f"Invalid SMTP address {text!r}: use HOST:PORT, e.g. smtp.example.com:587.", field="address")
    return host, int(port)


def check_kvdb_url(url: str) -> str:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise InvalidInput(
            f"Invalid kvdb URL {url!r}: use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0.", field="url"
        )
    return url
