"""Messenger webhooks at their edges: odd but signed bodies get a 400 or are stored cleaned,
never a 500 (Meta resends a failed delivery, so a 500 would block its whole batch for good)."""

from __future__ import annotations

import pytest

from bridge.standins.messenger import MessengerStandin
from tests.conftest import Harness, HarnessFactory
from tests.helpers_messenger import ANN, BOB, PAGE_A, PAGE_B, messenger_harness, sender


@pytest.fixture
async def h(make_harness: HarnessFactory, meta: MessengerStandin) -> Harness:
    return await messenger_harness(make_harness, meta)


async def test_nul_and_lone_surrogates_are_stored_cleaned_with_the_rest_of_the_batch(
    h: Harness,
) -> None:
    s = sender(h)
    raw = (b'{"object":"page","entry":[{"id":"' + PAGE_A.encode() + b'","messaging":['
           b'{"sender":{"id":"' + ANN.encode() + b'"},"recipient":{"id":"' + PAGE_A.encode()
           + b'"},"timestamp":1764590000001,"message":{"mid":"m_nul",'
           b'"text":"order\\u0000 42 \\ud83d"}}]},'
           b'{"id":"' + PAGE_B.encode() + b'","messaging":[{"sender":{"id":"' + BOB.encode()
           + b'"},"recipient":{"id":"' + PAGE_B.encode() + b'"},"timestamp":1764590000002,'
           b'"message":{"mid":"m_fine","text":"hello"}}]}]}')
    assert (await s.post(raw))[0] == 200
    assert h.rows("SELECT platform_message_id, text FROM messages ORDER BY id") == [
        ("m_nul", "order 42 ?"), ("m_fine", "hello")]


@pytest.mark.backends("sqlite")  # answers of the parser: nothing stored
async def test_broken_numbers_and_urls_are_400_or_stored_never_500(h: Harness) -> None:
    s = sender(h)
    huge = s.message(PAGE_A, ANN, "x")
    huge["timestamp"] = 10**400
    assert (await s.post(s.body(s.entry(PAGE_A, huge))))[0] == 400
    deep = b'{"object":"page","entry":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert (await s.post(deep))[0] == 400
    assert h.count("messages") == 0
    odd = s.message(PAGE_A, ANN, attachments=[("image", "https://[cdn.example/x.jpg")])
    assert (await s.post(s.body(s.entry(PAGE_A, odd))))[0] == 200
    assert h.count("messages") == 1


@pytest.mark.backends("sqlite")  # answers of the parser: nothing stored
async def test_a_message_without_a_sender_id_is_400_and_nothing_of_the_body_is_stored(
    h: Harness,
) -> None:
    s = sender(h)
    good, bad = s.message(PAGE_A, ANN, "fine"), s.message(PAGE_A, ANN, "who?")
    del bad["sender"]
    assert (await s.post(s.body(s.entry(PAGE_A, good, bad))))[0] == 400
    not_object = s.message(PAGE_A, ANN, "x")
    not_object["message"] = "plain text"
    assert (await s.post(s.body(s.entry(PAGE_A, not_object))))[0] == 400
    assert (await s.post({"object": "page", "entry": [{"id": PAGE_A, "messaging": {}}]}))[0] == 400
    assert h.count("messages") == 0


async def test_the_same_mid_twice_in_one_body_is_stored_once(h: Harness) -> None:
    s = sender(h)
    first = s.message(PAGE_A, ANN, "once", mid="m_twice")
    again = s.message(PAGE_A, ANN, "once, resent", mid="m_twice")
    assert (await s.post(s.body(s.entry(PAGE_A, first), s.entry(PAGE_A, again))))[0] == 200
    assert (await s.post(s.body(s.entry(PAGE_A, again, first))))[0] == 200
    assert h.rows("SELECT platform_message_id, text FROM messages") == [("m_twice", "once")]
    assert h.count("outbox") == 1  # one Slack post


async def test_a_profile_name_no_store_takes_is_cleaned(
    h: Harness, meta: MessengerStandin,
) -> None:
    meta.add_profile(ANN, "An\x00n", "Kowal\ud800ski")
    s = sender(h)
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, "hi")) == 200
    assert h.rows("SELECT author_name FROM messages") == [("Ann Kowal?ski",)]
