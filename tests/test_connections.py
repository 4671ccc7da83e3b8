"""Connections (REST, SMTP, kvdb) and the service context, against a real runner and real servers.

The HTTP and SMTP servers run in this test process (tests/servers.py); the kvdb is the real
Redis, db 13 (``redis_url``). Runs execute in the runner's worker processes, as users' do.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

import pytest
import redis
from conftest import REPO, run_cli, wait_until
from servers import SMTP_PASSWORD, SMTP_USER, LocalSMTPServer, wait_for_mail

import nbsched
from nbsched import ConnectionNotFound, InvalidInput
from nbsched.connections import SMTPMessage, addresses, definition, mask, public_record, secrets_of

DATA_SYNC = REPO / "services" / "data_sync.py"
HTTP_CHECK = REPO / "services" / "http_check.py"
DATA = "id,value\n1,ünïcode\n2,42\n"

STATUS_SERVICE = """
from nbsched import Service

class Status(Service):
    name = "t.status"

    def handle(self):
        response = self.out.plain_http["api"].conn.get(self.cid, path=self.request.payload or "")
        self.response.payload = {"status": response.status_code, "text": response.text}
"""

LEAKY_SERVICE = """
import base64
from nbsched import Service

class Leaky(Service):
    name = "t.leaky"

    def handle(self):
        echoed = self.out.plain_http["secured"].conn.get(self.cid, path="/echo").json()
        self.logger.info("server saw %s", echoed["Authorization"])
        user_and_password = base64.b64decode(echoed["Authorization"].split()[1]).decode()
        print("credentials:", user_and_password)
        self.response.payload = {"credentials": user_and_password}
        raise ValueError(f"refusing to go on with {user_and_password}")
"""

CONTEXT_SERVICES = """
from nbsched import Service

class Inner(Service):
    name = "t.inner"

    def handle(self):
        self.logger.info("inner got %s on channel %s", self.request.payload, self.channel)
        self.response.payload = {"doubled": self.request.payload["n"] * 2}

class Outer(Service):
    name = "t.outer"
    before = False

    def before_job(self):
        self.before = True

    def after_job(self):
        self.logger.info("after_job ran")

    def handle(self):
        result = self.invoke("t.inner", {"n": 21})
        job = self.job and {"name": self.job.name, "type": self.job.type}
        self.response.payload = {"result": result, "before": self.before, "channel": self.channel, "job": job}
"""

KVDB_SERVICE = """
from nbsched import Service

class UsesKvdb(Service):
    name = "t.kvdb"

    def handle(self):
        self.kvdb.conn.ping()
"""


def finished(client: nbsched.Client, run_id: int) -> dict:
    return client.wait(run_id, timeout=30)


def first_run_of(client: nbsched.Client, job: str) -> dict:
    def done():
        rows = client.history_rows(job=job)
        runs = sorted((dict(zip(rows["columns"], row, strict=True)) for row in rows["rows"]), key=lambda r: r["run_id"])
        return runs[0] if runs and runs[0]["status"] != "running" else None  # later fires may end first (skipped)

    return wait_until(done, timeout=20, what=f"the first run of job {job!r}")


# -- the article's service -----------------------------------------------------------------
def test_article_sync_data_runs_on_schedule_against_real_http_smtp_and_redis(
    client, http_server, smtp_server, redis_url
):
    url = http_server.route("/data", DATA, headers={"Content-Type": "text/csv; charset=utf-8"})
    client.connections.add_rest("My Data Source", url)
    client.connections.add_smtp("My SMTP", smtp_server.host, smtp_server.port, sender="sync@example.com")
    client.connections.set_kvdb(redis_url)
    assert client.deploy(str(DATA_SYNC)) == ["api.scheduler.sync"]

    client.schedule("api.scheduler.sync", name="sync", every="1s")
    run = first_run_of(client, "sync")
    client.pause("sync")

    assert (run["status"], run["error"]) == ("ok", None)
    mail = wait_for_mail(smtp_server)[0]
    assert mail.message["Subject"] == "New data"
    assert mail.message["To"] == "hello@example.com"
    assert mail.message["Cc"] == "hello.cc@example.com"
    assert mail.message["From"] == "sync@example.com"
    assert sorted(mail.rcpt_tos) == ["hello.cc@example.com", "hello@example.com"]
    assert mail.body().strip() == "Check attached data"
    assert mail.attachments() == {"my.data.txt": DATA.encode()}
    assert redis.Redis.from_url(redis_url).get("newest.data") == DATA.encode()
    assert http_server.requests[0].headers["X-Request-ID"] == run["cid"]


# -- REST -----------------------------------------------------------------------------------
def test_rest_get_does_not_raise_on_http_500_but_raise_for_status_fails_the_run(client, http_server):
    http_server.route("/boom", "database on fire", status=500)
    client.connections.add_rest("api", http_server.url)
    client.connections.add_rest("My Data Source", http_server.url)
    client.deploy([STATUS_SERVICE, str(HTTP_CHECK)])

    plain = finished(client, client.invoke("t.status", "/boom"))
    checked = finished(client, client.invoke("api.http.check", {"path": "/boom"}))

    assert plain["status"] == "ok"
    assert json.loads(plain["output"]) == {"status": 500, "text": "database on fire"}
    assert checked["status"] == "error"
    assert checked["error"] == f"HTTPError: 500 Server Error: Internal Server Error for url: {http_server.url}/boom"


def test_rest_timeout_fails_the_run_with_a_one_line_error_naming_the_connection(client, http_server):
    http_server.route("/slow", "late", delay=10)
    client.connections.add_rest("My Data Source", http_server.url, timeout=0.3)
    client.deploy(str(HTTP_CHECK))

    run = finished(client, client.invoke("api.http.check", {"path": "/slow"}))

    assert run["status"] == "error"
    assert run["error"] == (
        f"ReadTimeout: REST connection 'My Data Source': GET {http_server.url}/slow: "
        "no reply within 0.3s (the timeout); raise it with timeout= or check the server."
    )
    assert run["duration_ms"] < 5000


def test_rest_call_sends_cid_token_default_headers_path_and_params(client, http_server):
    http_server.route("/items/a%2Fb", "[]")
    client.connections.add_rest(
        "api", http_server.url + "/items/{item}", headers={"Accept": "application/json"}, token="tok-123456"
    )
    client.deploy(
        STATUS_SERVICE.replace(
            'get(self.cid, path=self.request.payload or "")', 'get(self.cid, params={"item": "a/b", "page": 2})'
        )
    )

    run = finished(client, client.invoke("t.status"))

    assert json.loads(run["output"])["status"] == 200
    (request,) = http_server.requests
    assert (request.method, request.path, request.query) == ("GET", "/items/a%2Fb", {"page": ["2"]})
    assert request.headers["X-Request-ID"] == run["cid"]
    assert request.headers["Authorization"] == "Bearer tok-123456"
    assert request.headers["Accept"] == "application/json"


def test_an_edited_connection_takes_effect_on_the_next_run_without_a_restart(client, http_server):
    http_server.route("/old", "old")
    http_server.route("/new", "new")
    client.deploy(STATUS_SERVICE)
    pid = client.ping()["pid"]

    client.connections.add_rest("api", http_server.url + "/old")
    before = finished(client, client.invoke("t.status"))
    client.connections.add_rest("api", http_server.url + "/new")
    after = finished(client, client.invoke("t.status"))

    assert [json.loads(r["output"])["text"] for r in (before, after)] == ["old", "new"]
    assert client.ping()["pid"] == pid


# -- SMTP -----------------------------------------------------------------------------------
def test_smtp_server_refusing_the_login_fails_the_run_with_a_one_line_error(
    client, http_server, smtp_server_auth, redis_url
):
    client.connections.add_rest("My Data Source", http_server.route("/data", DATA))
    client.connections.add_smtp(
        "My SMTP", "127.0.0.1", smtp_server_auth.port, username=SMTP_USER, password="wrong-pw", sender="s@example.com"
    )
    client.connections.set_kvdb(redis_url)
    client.deploy(str(DATA_SYNC))

    run = finished(client, client.invoke("api.scheduler.sync"))

    assert run["status"] == "error"
    assert run["error"] == (
        f"SMTPFailed: SMTP connection 'My SMTP' ({smtp_server_auth.address}): the server refused the login of "
        f"'{SMTP_USER}' (535 5.7.8 Authentication credentials invalid); check the connection's username and password."
    )
    assert smtp_server_auth.messages == []
    assert "SMTPAuthenticationError" in run["traceback"]


MAILER_SERVICE = """
from nbsched import Service, SMTPMessage

class Mailer(Service):
    name = "t.mailer"

    def handle(self):
        message = SMTPMessage(to="ops@example.com", subject="Report", body="All well.")
        self.email.smtp[self.request.payload].conn.send(message)
"""


@pytest.fixture
def smtp_server_bot() -> Iterator[LocalSMTPServer]:
    """A real SMTP server that accepts the logins 'bot@example.com' and 'bot', both with password 'pw'."""
    server = LocalSMTPServer(users={"bot@example.com": "pw", "bot": "pw"}).start()
    yield server
    server.stop()


def test_a_message_without_from_is_sent_from_the_username_when_it_is_an_address(client, smtp_server_bot):
    client.connections.add_smtp(
        "bot mail", "127.0.0.1", smtp_server_bot.port, username="bot@example.com", password="pw"
    )
    client.deploy(MAILER_SERVICE)

    run = finished(client, client.invoke("t.mailer", "bot mail"))

    assert (run["status"], run["error"]) == ("ok", None)
    mail = wait_for_mail(smtp_server_bot)[0]
    assert (mail.message["From"], mail.mail_from, mail.rcpt_tos) == (
        "bot@example.com",
        "bot@example.com",
        ["ops@example.com"],
    )


def test_a_message_without_from_fails_when_the_username_is_not_an_address_and_no_sender_is_set(client, smtp_server_bot):
    client.connections.add_smtp("bot mail", "127.0.0.1", smtp_server_bot.port, username="bot", password="pw")
    client.deploy(MAILER_SERVICE)

    run = finished(client, client.invoke("t.mailer", "bot mail"))

    assert run["status"] == "error"
    assert run["error"] == (
        "InvalidInput: The e-mail has no sender: set message.from_, or give the SMTP connection a default sender "
        "(add_smtp(..., sender='me@example.com') or --sender); a username is the sender only when it is an e-mail "
        "address."
    )
    assert smtp_server_bot.messages == []


@pytest.fixture
def env_client(monkeypatch, home):
    """A runner started with NBS_TEST_SMTP_PASSWORD in its environment (env: secrets are read there)."""
    monkeypatch.setenv("NBS_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.delenv("NBS_TEST_UNSET", raising=False)
    c = nbsched.connect()
    yield c
    c.close()


def test_env_secrets_are_read_from_the_runners_environment_at_run_time(
    env_client, http_server, smtp_server_auth, redis_url
):
    client = env_client
    smtp = {"host": "127.0.0.1", "port": smtp_server_auth.port, "username": SMTP_USER, "sender": "me@example.com"}
    client.connections.add_rest("My Data Source", http_server.route("/data", DATA))
    client.connections.add_smtp("My SMTP", password="env:NBS_TEST_SMTP_PASSWORD", **smtp)
    client.connections.set_kvdb(redis_url)
    client.deploy(str(DATA_SYNC))

    ok = finished(client, client.invoke("api.scheduler.sync"))
    listed = client.connections.list().set_index("name")
    client.connections.add_smtp("My SMTP", password="env:NBS_TEST_UNSET", **smtp)
    unset = finished(client, client.invoke("api.scheduler.sync"))

    assert ok["status"] == "ok", ok["error"]
    assert len(wait_for_mail(smtp_server_auth)) == 1
    assert listed.loc["My SMTP", "definition"]["password"] == "env:NBS_TEST_SMTP_PASSWORD"
    assert unset["status"] == "error"
    assert unset["error"] == (
        "InvalidInput: SMTP connection 'My SMTP' "
        f"({smtp_server_auth.address}) password is 'env:NBS_TEST_UNSET' but NBS_TEST_UNSET is not set in the "
        "runner's environment; export NBS_TEST_UNSET and restart the runner (nbsched runner restart)."
    )


# -- names, kvdb, secrets ---------------------------------------------------------------------
def test_a_missing_connection_name_lists_the_names_that_exist(client, http_server):
    client.connections.add_rest("Other Source", http_server.url)
    client.connections.add_rest("My Data Sources", http_server.url)
    client.deploy(str(DATA_SYNC))
    client.deploy(KVDB_SERVICE)

    missing = finished(client, client.invoke("api.scheduler.sync"))
    no_kvdb = finished(client, client.invoke("t.kvdb"))

    assert missing["status"] == "error"
    assert missing["error"] == (
        "ConnectionNotFound: No REST connection named 'My Data Source'. Did you mean 'My Data Sources'? "
        "REST connections: My Data Sources, Other Source. Add one with client.connections or nbsched connection."
    )
    assert no_kvdb["error"].startswith("ConnectionNotFound: No kvdb is configured")
    assert "client.connections.set_kvdb(" in no_kvdb["error"]


def test_a_connection_password_appears_nowhere_a_user_or_the_socket_can_see(client, http_server, home):
    password = "pa55-Word-Never-Shown"
    http_server.route("/echo", echo_headers=True)
    saved = client.connections.add_rest("secured", http_server.url, username="alice", password=password)
    client.deploy(LEAKY_SERVICE)
    client.schedule("t.leaky", name="leaky", every="1h")
    scheduled = first_run_of(client, "leaky")
    invoked = finished(client, client.invoke("t.leaky"))

    encoded = base64.b64encode(f"alice:{password}".encode()).decode()
    assert http_server.requests[0].headers["Authorization"] == f"Basic {encoded}"  # the server did get it
    cli_list = run_cli("connection", "list", "--format", "json", home=home, check=True).stdout
    seen = {
        "connection_save reply": json.dumps(saved),
        "connections.list()": client.connections.list().to_csv(),
        "nbsched connection list": cli_list,
        "jobs": client.jobs().to_csv() + json.dumps(client.job("leaky"), default=str),
        "history": client.history().to_csv(),
        "run records": json.dumps([client.run(r["run_id"]) for r in (scheduled, invoked)], default=str),
        "runner.log": (home / "runner.log").read_text(),
    }
    for where, text in seen.items():
        assert password not in text, where
        assert encoded not in text, where
    for run in (scheduled, invoked):
        assert run["status"] == "error"
        assert run["error"] == "ValueError: refusing to go on with alice:***"
        assert "server saw Basic ***" in run["logs"]
        assert "credentials: alice:***" in run["logs"]
    assert json.loads(cli_list)[0]["definition"]["password"] == "***"


# -- client.connections and the command line ----------------------------------------------------
def test_connections_can_be_listed_tested_and_deleted(client, http_server, smtp_server, redis_url):
    http_server.route("/", "hi")
    client.connections.add_rest("api", http_server.url + "/", token="t0ken-value")
    client.connections.add_smtp("mail", "127.0.0.1", smtp_server.port, tls="none", sender="a@example.com")
    client.connections.set_kvdb(redis_url)
    client.connections.add_rest("down", "http://127.0.0.1:9/", timeout=1)

    listing = client.connections.list()
    results = {name: client.connections.test(name) for name in ("api", "mail", "kvdb", "down")}
    client.connections.delete("down")
    with pytest.raises(ConnectionNotFound, match=r"No connection named 'down'\. .*Connections: api, kvdb, mail\."):
        client.connections.delete("down")

    assert list(listing.columns) == ["name", "kind", "address", "definition", "updated_at"]
    assert list(listing["name"]) == ["api", "down", "kvdb", "mail"]
    assert listing.set_index("name").loc["api", "definition"]["token"] == "***"
    assert listing.set_index("name").loc["mail", "address"] == smtp_server.address
    assert {name: result["ok"] for name, result in results.items()} == {
        "api": True,
        "mail": True,
        "kvdb": True,
        "down": False,
    }
    assert "HTTP 200" in results["api"]["detail"]
    assert "cannot connect (Connection refused); check the address" in results["down"]["detail"]
    assert list(client.connections.list()["name"]) == ["api", "kvdb", "mail"]


def test_bad_connection_input_is_refused_and_nothing_is_stored(client):
    with pytest.raises(InvalidInput, match=r"Invalid URL 'ftp://x' for REST connection 'a': use a http/https URL"):
        client.connections.add_rest("a", "ftp://x")
    with pytest.raises(InvalidInput, match=r"Invalid port 0 for SMTP connection 'm'"):
        client.connections.add_smtp("m", "localhost", 0)
    with pytest.raises(InvalidInput, match=r"Invalid tls 'tls' for SMTP connection 'm': use one of none, starttls"):
        client.connections.add_smtp("m", "localhost", 25, tls="tls")
    with pytest.raises(InvalidInput, match=r"Invalid URL 'http://127.0.0.1:6379' for the kvdb"):
        client.connections.set_kvdb("http://127.0.0.1:6379")
    client.connections.add_rest("a", "http://127.0.0.1:1/")
    with pytest.raises(InvalidInput, match=r"A rest connection named 'a' exists"):
        client.connections.add_smtp("a", "localhost", 25)
    assert list(client.connections.list()["name"]) == ["a"]


def test_cli_connection_commands_and_their_one_line_errors(client, home, smtp_server):
    bad_url = run_cli("connection", "rest", "api", "not-a-url", home=home)
    bad_address = run_cli("connection", "smtp", "mail", "localhost", home=home)
    bad_port = run_cli("connection", "smtp", "mail", "localhost:99999", home=home)
    added = run_cli("connection", "smtp", "mail", smtp_server.address, "--sender", "a@example.com", home=home)
    rest = run_cli(
        "connection", "rest", "api", "http://127.0.0.1:9/x", "--header", "Accept: text/csv", "--timeout", "1", home=home
    )
    tested = run_cli("connection", "test", "mail", home=home)
    failed = run_cli("connection", "test", "api", home=home)
    listed = run_cli("connection", "list", "--format", "json", home=home)
    deleted = run_cli("connection", "delete", "api", home=home)

    for result in (bad_url, bad_address, bad_port, failed):
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Invalid URL 'not-a-url' for REST connection 'api'" in bad_url.stderr
    assert "Invalid SMTP address 'localhost': use HOST:PORT, e.g. smtp.example.com:587." in bad_address.stderr
    assert "Invalid SMTP address 'localhost:99999': use HOST:PORT" in bad_port.stderr
    assert failed.stderr.startswith("nbsched: error: connection 'api' failed: ConnectionError")
    for result in (added, rest, tested, listed, deleted):
        assert result.returncode == 0, result.stderr
    assert added.stdout.strip() == f"saved smtp connection mail: {smtp_server.address}"
    assert tested.stdout.startswith("ok: mail: ")
    by_name = {row["name"]: row for row in json.loads(listed.stdout)}
    assert by_name["api"]["definition"]["headers"] == {"Accept": "text/csv"}
    assert by_name["mail"]["definition"]["sender"] == "a@example.com"
    assert list(client.connections.list()["name"]) == ["mail"]


# -- the rest of the service context ----------------------------------------------------------
def test_invoke_runs_another_service_with_its_logs_and_hooks_run_for_scheduled_runs_only(client):
    client.deploy(CONTEXT_SERVICES)
    client.schedule("t.outer", name="outer", every="1h")
    scheduled = first_run_of(client, "outer")
    invoked = finished(client, client.invoke("t.outer"))

    assert scheduled["status"] == "ok", scheduled["error"]
    assert json.loads(scheduled["output"]) == {
        "result": {"doubled": 42},
        "before": True,
        "channel": "scheduler",
        "job": {"name": "outer", "type": "interval"},
    }
    assert "inner got {'n': 21} on channel invoke" in scheduled["logs"]
    assert "after_job ran" in scheduled["logs"]
    assert invoked["status"] == "ok", invoked["error"]
    assert json.loads(invoked["output"]) == {
        "result": {"doubled": 42},
        "before": False,
        "channel": "invoke",
        "job": None,
    }
    assert "inner got {'n': 21} on channel invoke" in invoked["logs"]
    assert "after_job ran" not in invoked["logs"]


# -- units: no runner -------------------------------------------------------------------------
def test_smtp_message_takes_strings_comma_lists_and_lists_and_hides_bcc():
    message = SMTPMessage(to="a@x.org, b@x.org", cc=["c@x.org"], bcc="d@x.org", subject="S", body="<b>hi</b>")
    message.is_html = True
    message.headers["X-Tag"] = "t"
    message.attach("data.bin", b"\x00\x01")
    mail = message.as_email(default_sender="me@x.org")

    assert addresses(" a@x.org,, b@x.org ") == ["a@x.org", "b@x.org"]
    assert message.recipients() == ["a@x.org", "b@x.org", "c@x.org", "d@x.org"]
    assert (mail["From"], mail["To"], mail["Cc"], mail["Bcc"], mail["X-Tag"]) == (
        "me@x.org",
        "a@x.org, b@x.org",
        "c@x.org",
        None,
        "t",
    )
    assert mail.get_body(("html",)).get_content().strip() == "<b>hi</b>"
    [attachment] = mail.iter_attachments()
    assert (attachment.get_filename(), attachment.get_payload(decode=True)) == ("data.bin", b"\x00\x01")
    with pytest.raises(InvalidInput, match="The e-mail has no sender"):
        SMTPMessage(to="a@x.org").as_email()


def test_secrets_are_masked_in_listings_and_text(monkeypatch):
    monkeypatch.setenv("NBS_TEST_TOKEN", "from-the-env-123")
    rest = definition("rest", "r", address="https://h/", username="u", password="p4ss", headers={"X-Api-Key": "k3y"})
    env = definition("rest", "e", address="https://h/", token="env:NBS_TEST_TOKEN")
    kvdb = definition("kvdb", "kvdb", url="redis://:redispw@127.0.0.1:6379/0")
    records = {
        "r": {"kind": "rest", "definition": rest},
        "e": {"kind": "rest", "definition": env},
        "kvdb": {"kind": "kvdb", "definition": kvdb},
    }

    shown = [public_record({"name": n, **r}) for n, r in records.items()]
    # Short secrets are masked where they stand as values, never as words of other text ("test passed").
    text = (
        "password=p4ss X-Api-Key: k3y from-the-env-123 redis://:redispw@127.0.0.1 "
        + base64.b64encode(b"u:p4ss").decode()
    )

    assert shown[0]["definition"]["password"] == "***"
    assert shown[0]["definition"]["headers"] == {"X-Api-Key": "***"}
    assert shown[1]["definition"]["token"] == "env:NBS_TEST_TOKEN"
    assert shown[2]["address"] == "redis://:***@127.0.0.1:6379/0"
    assert mask(text, secrets_of(records)) == "password=*** X-Api-Key: *** *** redis://:***@127.0.0.1 ***"
    assert os.environ["NBS_TEST_TOKEN"] not in json.dumps(shown)
