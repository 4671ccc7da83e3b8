"""``client.invoke_many``: one request, one write to the store, one run per extra, or none when one is refused."""

from __future__ import annotations

import json

import pytest
from conftest import HELLO_SERVICE, wait_until

import nbsched
from nbsched import config
from nbsched.errors import InvalidInput, ServiceNotFound

pytestmark = pytest.mark.slow


def finished(client, run_ids) -> dict:
    """The runs of ``run_ids`` by id, once every one of them has ended."""

    def ended():
        rows = client.history_rows(service="api.hello", limit=len(run_ids) + 10)
        records = {row[0]: dict(zip(rows["columns"], row, strict=True)) for row in rows["rows"]}
        done = {run_id: records[run_id] for run_id in run_ids if records.get(run_id, {}).get("status") != "running"}
        return done if len(done) == len(run_ids) else None

    return wait_until(ended, timeout=60, what="every run to end")


def test_each_extra_gets_a_run_of_its_own_recorded_and_run_in_the_order_given(client):
    extras = [{"who": f"user{i}"} for i in range(300)] + ["plain text", None]
    run_ids = client.invoke_many("api.hello", extras)
    assert len(run_ids) == len(extras) and run_ids == sorted(set(run_ids))
    records = finished(client, run_ids)
    assert [record["status"] for record in records.values()] == ["ok"] * len(extras)
    assert {record["trigger"] for record in records.values()} == {"invoke"}
    assert [record["job"] for record in records.values()] == [None] * len(extras)
    assert len({record["cid"] for record in records.values()}) == len(extras)
    greeted = [json.loads(client.run(run_id)["output"])["greeted"] for run_id in run_ids[:2] + run_ids[-2:]]
    assert greeted == ["user0", "user1", "plain text", "world"]


def test_the_runs_are_recorded_before_the_reply(client):
    run_ids = client.invoke_many("api.hello", [None] * 50)
    recorded = [client.run(run_id)["run_id"] for run_id in run_ids]  # RunNotFound if any were not
    assert recorded == run_ids


def test_an_empty_list_starts_nothing_and_an_unknown_service_is_still_refused(client):
    assert client.invoke_many("api.hello", []) == []
    assert client.invoke_many("api.hello", iter(())) == []
    with pytest.raises(ServiceNotFound, match=r"No service named 'api.helo' is deployed.*Services: api.hello"):
        client.invoke_many("api.helo", [])
    with pytest.raises(ServiceNotFound, match=r"Services: api\.hello"):
        client.invoke_many("api.helo", [None, None])
    assert client.history().empty


def test_one_bad_extra_refuses_them_all_and_says_which(client):
    with pytest.raises(InvalidInput, match=r"^Extra 2 of the 3 \(counting from 0\):.*NaN or infinity") as caught:
        client.invoke_many("api.hello", [{"x": 1}, None, {"x": float("nan")}])
    assert caught.value.field == "extra"
    big = "x" * (config.MAX_EXTRA_BYTES + 1)
    with pytest.raises(InvalidInput, match=r"^Extra 1 of the 2 .*the limit is 65536 bytes"):
        client.invoke_many("api.hello", [None, big])
    assert client.history().empty


@pytest.mark.parametrize("extras", ["abc", b"abc", {"who": "x"}, 5, None])
def test_extras_that_are_not_a_list_are_refused_by_the_client(client, extras):
    with pytest.raises(InvalidInput, match=r"invoke_many needs a list with one extra per run.*got") as caught:
        client.invoke_many("api.hello", extras)
    assert caught.value.field == "extras"


def test_extras_more_than_one_request_holds_are_refused_by_the_client_with_what_to_do(client):
    with pytest.raises(InvalidInput, match=r"^The 20 extras take 1,200,\d+ bytes, .*invoke them in smaller lists"):
        client.invoke_many("api.hello", ["x" * 60_000] * 20)
    assert client.history().empty
    assert len(client.invoke_many("api.hello", ["x" * 60_000] * 10)) == 10
    with pytest.raises(InvalidInput, match=r"Cannot send 'invoke_many'.*Use JSON data"):
        client.invoke_many("api.hello", [None, object()])


def test_the_runner_refuses_extras_that_are_not_a_list_and_more_than_it_starts_at_once(client):
    with pytest.raises(InvalidInput, match=r"needs 'extras': a list with one extra per run.*got dict"):
        client.call("invoke_many", service="api.hello", extras={"who": "x"})
    most, too_many = config.MAX_INVOKE_RUNS, config.MAX_INVOKE_RUNS + 1
    with pytest.raises(InvalidInput, match=rf"at most {most:,} runs per request; got {too_many:,} extras\. Split"):
        client.invoke_many("api.hello", [None] * too_many)
    with pytest.raises(InvalidInput, match="use one of manual, cli, invoke"):
        client.invoke_many("api.hello", [None], channel="scheduler")
    assert client.history().empty
    assert len(client.invoke_many("api.hello", [None] * config.MAX_INVOKE_RUNS)) == config.MAX_INVOKE_RUNS


@pytest.mark.parametrize("store", ["memory", "postgresql"])
def test_every_run_gets_its_record_on_the_other_stores_too(home, monkeypatch, request, store):
    url = "memory://" if store == "memory" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("NBSCHED_STORE", url)
    client = nbsched.connect()
    try:
        client.deploy(str(HELLO_SERVICE))
        run_ids = client.invoke_many("api.hello", [{"who": i} for i in range(200)])
        assert run_ids == sorted(set(run_ids)) and len(run_ids) == 200
        records = finished(client, run_ids)
        assert [record["status"] for record in records.values()] == ["ok"] * 200
        assert json.loads(client.run(run_ids[-1])["output"])["greeted"] == 199
        with pytest.raises(InvalidInput, match=r"^Extra 1 of the 2"):
            client.invoke_many("api.hello", [None, float("inf")])
        assert len(client.history()) == 200
    finally:
        client.close()
