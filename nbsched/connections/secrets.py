"""Secrets of connections: finding them (``secrets_of``), reading ``env:VAR`` ones (``resolve``), masking them.

Secrets (passwords, tokens, the values of headers and URL query keys named as secrets, a password
in a URL) never leave the runner in a listing or an error, and ``mask`` blanks their values in a
run's logs, error, traceback and output: whole values only, never part of a longer word.
"""

from __future__ import annotations

import base64
import functools
import os
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from .. import config
from ..errors import InvalidInput

MASK = "***"
#: A ``key=value`` pair of a URL's query.
_QUERY_PAIR = re.compile(r"(?P<head>[?&;])(?P<key>[^=&;#\s]+)=(?P<value>[^&;#\s]*)")
#: The password of a URL that does not parse: between the user's ``:`` and the last ``@`` of the authority.
_USERINFO = re.compile(r"(?P<user>[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/]*):[^\s@]*@")


# -- names and URLs -----------------------------------------------------------------------
def is_secret_name(name: str) -> bool:
    """Whether a header name or URL query key names a secret (``config.SECRET_NAMES``, ``SECRET_WORDS``)."""
    lowered = name.lower()
    words = set(re.split(r"[^a-z0-9]+", lowered))
    return any(part in lowered for part in config.secret_names()) or not words.isdisjoint(config.SECRET_WORDS)


def masked(value: str) -> str:
    """A secret as listings show it: ``***``, or the ``env:VAR`` reference it is."""
    return value if value.startswith("env:") else MASK


def masked_url(url: str) -> str:
    """``url`` as shown anywhere: its password and the values of query keys named as secrets masked; a URL
    that does not parse, too (what a user typed wrong may hold a password all the same)."""
    if url.startswith("env:"):
        return url
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        url = _USERINFO.sub(rf"\g<user>:{MASK}@", url)
    else:
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            url = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))
    return _QUERY_PAIR.sub(_masked_pair, url)


def _masked_pair(match: re.Match) -> str:
    if not match["value"] or not is_secret_name(unquote(match["key"])):
        return match[0]
    return f"{match['head']}{match['key']}={MASK}"


def _url_secrets(url: str) -> list[str]:
    """The secrets in a URL: its password and the values of query keys named as secrets, as written and decoded."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    values = [password] if password else []
    values += [m["value"] for m in _QUERY_PAIR.finditer(url) if m["value"] and is_secret_name(unquote(m["key"]))]
    return [form for value in values for form in {value, unquote(value)}]


# -- values -------------------------------------------------------------------------------
def resolve(value: str | None, what: str) -> str | None:
    """A secret's value: itself, or for ``env:VAR`` the variable from this process's environment."""
    if not value or not value.startswith("env:"):
        return value
    variable = value[4:]
    if variable not in os.environ:
        raise InvalidInput(
            f"{what} is {value!r} but {variable} is not set in the runner's environment; "
            f"export {variable} and restart the runner (nbsched runner restart)."
        )
    return os.environ[variable]


def secrets_of(definitions: dict[str, dict]) -> list[str]:
    """Every secret value in ``definitions`` (name -> {kind, definition}), resolved; longest first."""
    found: set[str] = set()
    for record in definitions.values():
        spec = record["definition"]
        values = [spec.get("password"), spec.get("token")]
        values += [v for k, v in (spec.get("headers") or {}).items() if is_secret_name(k)]
        url = spec.get("url") if record["kind"] == "kvdb" else spec.get("address")
        if url and url.startswith("env:"):
            values.append(url)
        elif url:
            found.update(_url_secrets(url))
        for value in values:
            try:
                secret = resolve(value, "secret")
            except InvalidInput:
                continue
            if not secret:
                continue
            found.add(secret)
            if record["kind"] == "kvdb" and value.startswith("env:"):
                found.update(_url_secrets(secret))
        if spec.get("username") and spec.get("password"):
            try:
                pair = f"{resolve(spec['username'], 'username')}:{resolve(spec['password'], 'password')}"
            except InvalidInput:
                continue
            found.add(base64.b64encode(pair.encode()).decode())
    return sorted(found, key=len, reverse=True)


# -- masking text -------------------------------------------------------------------------
def mask(text: str | None, secrets: list[str]) -> str | None:
    """``text`` with every secret value replaced by ``***``: where it stands whole, not inside a longer word;
    one shorter than ``config.MASK_MIN_CHARS`` only where it stands as a value (after ``=`` or ``:``, or
    quoted), so that a password ``test`` leaves "test passed" as it is."""
    if not text or not secrets:
        return text
    return _mask_pattern(tuple(secrets)).sub(MASK, text)


@functools.lru_cache(maxsize=64)
def _mask_pattern(secrets: tuple[str, ...]) -> re.Pattern:
    alternatives = []
    for secret in sorted(secrets, key=len, reverse=True):
        before = r"(?<!\w)" if re.match(r"\w", secret) else ""
        after = r"(?!\w)" if re.search(r"\w$", secret) else ""
        if len(secret) < config.MASK_MIN_CHARS:
            before = r"(?:(?<=[=:\"'])|(?<=[=:] ))"
        alternatives.append(f"{before}{re.escape(secret)}{after}")
    return re.compile("|".join(alternatives))
