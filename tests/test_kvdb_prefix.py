"""The kvdb's key prefix: projects sharing one Redis keep apart (real runners, the real Redis at db 13).

Set through every front end (``client.connections.set_kvdb(url, prefix=...)``, ``nbsched connection kvdb
URL --prefix``, ``%connection kvdb URL --prefix``, the dashboard's Connections tab); ``self.kvdb.conn``
in a service then puts it before every key, and ``keys``/``scan_iter`` return keys without it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import redis
from conftest import run_cli, stop_runner

import nbsched
from nbsched import InvalidInput
from nbsched.connections.prefixed import KvdbCommandNotPrefixed, PrefixedRedis
from nbsched.frontends.ui import Dashboard

NOTES_SERVICE = """
from nbsched import Service

class Notes(Service):
    name = "t.notes"

    def handle(self):
        conn, value = self.kvdb.conn, self.request.payload.get("value")
        if value:
            conn.set("greeting", value)
            conn.hset("profile", "owner", value)
            conn.rpush("log", value)
        self.response.payload = {
            "prefix": self.kvdb.prefix,
            "greeting": conn.get("greeting").decode(),
            "owner": conn.hget("profile", "owner").decode(),
            "log": [item.decode() for item in conn.lrange("log", 0, -1)],
            "keys": sorted(key.decode() for key in conn.keys()),
            "scanned": sorted(key.decode() for key in conn.scan_iter("g*")),
        }
"""


@pytest.fixture
def other_client() -> nbsched.Client:
    """A second project: a runner in a home of its own."""
    path = Path(tempfile.mkdtemp(prefix="nbs-"))
    c = nbsched.connect(home=path)
    yield c
    c.close()
    stop_runner(path)
    shutil.rmtree(path, ignore_errors=True)


def notes(client: nbsched.Client, value: str | None = None) -> dict:
    run = client.wait(client.invoke("t.notes", {"value": value} if value else {}), timeout=30)
    assert run["status"] == "ok", run["error"]
    return json.loads(run["output"])


def test_two_projects_on_one_redis_each_read_their_own_keys(client, other_client, redis_url):
    for project, prefix in ((client, "alpha:"), (other_client, "beta:")):
        project.connections.set_kvdb(redis_url, prefix=prefix)
        project.deploy(NOTES_SERVICE)

    notes(client, "from alpha")
    notes(other_client, "from beta")
    alpha, beta = notes(client), notes(other_client)

    assert alpha == {
        "prefix": "alpha:",
        "greeting": "from alpha",
        "owner": "from alpha",
        "log": ["from alpha"],
        "keys": ["greeting", "log", "profile"],
        "scanned": ["greeting"],
    }
    assert (beta["prefix"], beta["greeting"], beta["owner"], beta["log"]) == (
        "beta:",
        "from beta",
        "from beta",
        ["from beta"],
    )
    raw = redis.Redis.from_url(redis_url)
    assert sorted(raw.keys()) == [
        b"alpha:greeting",
        b"alpha:log",
        b"alpha:profile",
        b"beta:greeting",
        b"beta:log",
        b"beta:profile",
    ]
    assert client.connections.list().set_index("name").loc["kvdb", "definition"]["prefix"] == "alpha:"


def test_without_a_prefix_the_kvdb_is_the_plain_redis_client_as_before(client, redis_url):
    client.connections.set_kvdb(redis_url)
    client.deploy(NOTES_SERVICE)

    assert notes(client, "plain")["prefix"] is None
    assert sorted(redis.Redis.from_url(redis_url).keys()) == [b"greeting", b"log", b"profile"]


@pytest.mark.parametrize(
    "prefix", ["two words:", "tab\there", "x" * 101, 42], ids=["space", "tab", "too-long", "not-text"]
)
def test_an_invalid_prefix_is_refused_naming_the_field(client, redis_url, prefix):
    with pytest.raises(InvalidInput, match=r"^Invalid prefix .* for the kvdb: use up to 100 characters") as caught:
        client.connections.set_kvdb(redis_url, prefix=prefix)
    assert caught.value.field == "prefix"
    assert "kvdb" not in list(client.connections.list()["name"])


def test_the_cli_and_the_magic_set_the_prefix(client, home, redis_url, ip, capsys):
    saved = run_cli("connection", "kvdb", redis_url, "--prefix", "cli:", home=home)
    refused = run_cli("connection", "kvdb", redis_url, "--prefix", "a b", home=home)
    assert saved.returncode == 0, saved.stderr
    assert client.connections.list().set_index("name").loc["kvdb", "definition"]["prefix"] == "cli:"
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        "nbsched: error: Invalid prefix 'a b' for the kvdb: use up to 100 characters of text without spaces, "
        "e.g. 'proj:'."
    ]

    ip.run_line_magic("connection", f"kvdb {redis_url} --prefix magic:")

    assert capsys.readouterr().out == f"kvdb -> {redis_url} (keys prefixed 'magic:')\n"
    assert client.connections.list().set_index("name").loc["kvdb", "definition"]["prefix"] == "magic:"


def test_the_dashboard_connection_form_saves_and_shows_the_prefix(client, redis_url):
    dash = Dashboard(client, auto_refresh=False)
    try:
        tab = dash.connections
        tab.kind.value = "kvdb"
        tab.url.value = redis_url
        tab.prefix.value = "dash:"
        tab.save.click()
        tab.prefix.value = ""
        tab.pick.value = ""
        tab.pick.value = "kvdb"
        shown = tab.prefix.value
        tab.prefix.value = "has space"
        tab.save.click()
        refusal = tab.status.value
    finally:
        dash.close()

    assert client.connections.list().set_index("name").loc["kvdb", "definition"]["prefix"] == "dash:"
    assert shown == "dash:"
    assert "Invalid prefix &#x27;has space&#x27; for the kvdb" in refusal


# -- the wrapper itself, against the real Redis -------------------------------------------------
@pytest.fixture
def prefixed(redis_url) -> PrefixedRedis:
    conn = PrefixedRedis(redis.Redis.from_url(redis_url), "p[1]*:")
    yield conn
    conn.close()


def test_multi_key_commands_take_the_prefix_and_patterns_match_it_literally(prefixed, redis_url):
    raw = redis.Redis.from_url(redis_url)
    raw.set("p11:a", "not ours")  # would match the prefix if its [1] and * were read as a pattern
    prefixed.mset({"a": "1", "b": "2"})
    prefixed.rename("b", "c")
    prefixed.sadd("s1", "x", "y")
    prefixed.sadd("s2", "y")

    assert prefixed.mget(["a", "c"]) == [b"1", b"2"]
    assert prefixed.exists("a", "c", "b") == 2
    assert prefixed.sinter("s1", "s2") == {b"y"}
    assert sorted(prefixed.keys()) == [b"a", b"c", b"s1", b"s2"]
    assert sorted(prefixed.scan(0, match="s*", count=1000)[1]) == [b"s1", b"s2"]
    assert prefixed.delete("a", "c") == 2
    assert sorted(raw.keys()) == [b"p11:a", b"p[1]*:s1", b"p[1]*:s2"]
    assert prefixed.ping() is True


def test_a_command_that_is_not_prefixed_is_refused_and_names_the_plain_client(prefixed):
    with pytest.raises(KvdbCommandNotPrefixed) as caught:
        prefixed.flushdb()
    assert str(caught.value) == (
        "self.kvdb.conn puts the prefix 'p[1]*:' before keys, and flushdb() is not a command it prefixes; "
        "use self.kvdb.conn.redis, the plain Redis client, and put self.kvdb.prefix before the keys yourself."
    )
    assert isinstance(caught.value, AttributeError)
    assert prefixed.redis.ping() is True
