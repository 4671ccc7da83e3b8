"""Where a PostgreSQL store lives: its URL parsed (server, database, ``?schema=``), and connections to it.

Every connection sets ``search_path`` to the store's schema (so the SQL names tables plainly) and its
time zone to UTC (so times come back as aware UTC datetimes). Messages name the server as
``host:port/database`` and never carry a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import InvalidInput, StoreError

#: The schema a store uses when its URL names none.
DEFAULT_SCHEMA = "nbsched"
#: What a schema name may be: a plain lower-case SQL identifier, short enough to leave room for its channel's name.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")
#: Seconds a connection attempt may take before the server counts as unreachable.
CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class PgLocation:
    """A PostgreSQL store's address: the libpq URL (without ``schema``), and the schema its objects live in."""

    url: str  # what libpq and ADBC connect to: the user's URL without the ``schema`` parameter
    schema: str
    host: str
    port: int
    database: str

    @property
    def where(self) -> str:
        """The server and database, as messages name them (never with a password)."""
        return f"{self.host}:{self.port}/{self.database}"

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel of the store's changes: one per schema."""
        return f"{self.schema}_changes"

    def options(self) -> str:
        """The session settings every connection gets (libpq's ``options``)."""
        return f"-c search_path={self.schema} -c TimeZone=UTC"

    def adbc_uri(self) -> str:
        """The URL for ADBC's PostgreSQL driver, with the session settings in it."""
        parts = urlsplit(self.url)
        query = [*parse_qsl(parts.query), ("options", self.options())]
        return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query, quote_via=quote)))


def parse(url: str) -> PgLocation:
    """``postgresql://user[:password]@host[:port]/database[?schema=NAME]`` (or ``postgres://``) as a ``PgLocation``."""
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError as exc:
        raise InvalidInput(
            f"The PostgreSQL store URL does not parse ({exc}); it looks like "
            "postgresql://user@host:5432/database?schema=nbsched."
        ) from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidInput(
            f"The schema name {schema!r} in the PostgreSQL store URL is not usable: give lower-case letters, digits "
            "and underscores, starting with a letter or underscore, at most 40 characters (e.g. ?schema=nbsched_team)."
        )
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return PgLocation(
        url=urlunsplit(parts._replace(query=rest)),
        schema=schema,
        host=parts.hostname or "localhost",
        port=port,
        database=database,
    )


def connect(location: PgLocation, autocommit: bool = True):
    """A psycopg connection to the store's database (its schema first on the search path, times in UTC)."""
    import psycopg

    try:
        return psycopg.connect(
            location.url, autocommit=autocommit, options=location.options(), connect_timeout=CONNECT_TIMEOUT
        )
    except psycopg.Error as exc:  # unreachable, refused, or a connection parameter libpq does not know
        raise unreachable(location, exc) from None


def unreachable(location: PgLocation, exc: Exception) -> StoreError:
    """The error for a server that could not be reached or refused the connection."""
    reason = masked_reason(location, exc)
    return StoreError(
        f"Cannot connect to the PostgreSQL store at {location.where} ({reason}). Check that the server runs there, "
        "accepts connections from this machine, and that NBSCHED_STORE names the right host, port, user and database."
    )


def masked_reason(location: PgLocation, exc: Exception) -> str:
    """What went wrong, on one line, with the URL's password (if any) masked."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    password = urlsplit(location.url).password
    return reason.replace(password, "***") if password else reason
