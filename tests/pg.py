"""The PostgreSQL server tests use: a database of their own per test session, and a fresh schema per test.

``NBSCHED_TEST_POSTGRES`` names the server's maintenance database (default: the ``postgres`` database at
127.0.0.1:5432 as user ``postgres``). Without a server there the PostgreSQL tests skip, unless
``NBSCHED_REQUIRE_POSTGRES=1`` (as in CI): then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

MAINTENANCE_URL = os.environ.get("NBSCHED_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _maintenance():
    """An autocommit connection to the maintenance database, or a skip (a failure when PostgreSQL is required)."""
    psycopg = pytest.importorskip("psycopg", reason='the PostgreSQL tests need psycopg: pip install -e ".[test]"')
    try:
        return psycopg.connect(MAINTENANCE_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        where = urlsplit(MAINTENANCE_URL).netloc.rpartition("@")[2]
        reason = f"no PostgreSQL answers at {where} ({' '.join(str(exc).split())[:200]})"
        if os.environ.get("NBSCHED_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"NBSCHED_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(f"{reason}; start one, or set NBSCHED_TEST_POSTGRES to a server's maintenance database URL")


def terminate(admin, database: str) -> None:
    """End every other connection to ``database``."""
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [database],
    )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a new database ``nbsched_test_<random>`` for this test session, dropped after it."""
    admin = _maintenance()
    name = f"nbsched_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(MAINTENANCE_URL)._replace(path=f"/{name}", query=""))
    finally:
        terminate(admin, name)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture
def pg_url(pg_database) -> str:
    """A store URL of the session's database with a schema of its own: each test starts from an empty store."""
    return f"{pg_database}?schema=t_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def pg_admin(pg_database):
    """An autocommit connection to the session's database, for what tests do behind a store's back."""
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as db:
        yield db
