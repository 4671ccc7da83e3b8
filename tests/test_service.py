"""What a service sees of its request: ``payload`` parsed from the extra, ``{}`` when there is none."""

from __future__ import annotations

from nbsched.service import Request


def test_payload_is_an_empty_dict_without_an_extra():
    request = Request()
    assert (request.payload, request.raw_request) == ({}, None)
    assert request.payload.get("who", "world") == "world"


def test_payload_parses_a_given_extra_and_raw_request_keeps_it_as_given():
    assert Request('{"who": "me"}').payload == {"who": "me"}
    assert Request("who=me\nhow=loud").payload == {"who": "me", "how": "loud"}
    assert Request("just text").payload == "just text"
    assert Request("").payload == ""
    assert Request('{"who": "me"}').raw_request == '{"who": "me"}'
