"""Messenger and one customer across channels: m.me refs as handoff codes, m.me invites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.standins.messenger import MessengerStandin
from connectors.messenger.connector import MessengerConnector
from connectors.messenger.parse import load, parse_body
from connectors.messenger.settings import Page
from tests.conftest import Harness, HarnessFactory
from tests.helpers_continuity import record_ingest
from tests.helpers_messenger import ANN, PAGE_A, PAGE_B, TOKEN_B, messenger_harness, sender
from vocab.models import InboundMessage

FIXTURES = Path(__file__).parent / "fixtures" / "messenger"
APP_ID = "900000000000001"
CODE = "LINK-7KQ29XWDM4PT"


def parsed(name: str) -> list[InboundMessage]:
    return parse_body(load((FIXTURES / f"{name}.json").read_bytes()), APP_ID).messages


def test_a_referral_to_an_open_thread_carries_its_ref() -> None:
    [msg] = parsed("referral")
    assert msg.handoff_code == "handoff-xyz789"  # passed on as it is: the core judges it
    assert msg.text == "[opened the conversation from shortlink, ref: handoff-xyz789]"


def test_a_get_started_postback_of_a_new_thread_carries_its_ref() -> None:
    [msg] = parsed("postback")
    assert msg.handoff_code == "handoff-abc123"
    assert msg.text == "[button] Get Started (payload: GET_STARTED)"


def test_a_message_with_a_referral_carries_its_ref() -> None:
    [msg] = parsed("message_referral")
    assert msg.handoff_code == "spring-sale" and msg.text == "Is this still available?"


def test_a_referral_beside_a_message_counts_too() -> None:
    body = json.loads((FIXTURES / "text.json").read_bytes())
    event = body["entry"][0]["messaging"][0]
    event["referral"] = {"ref": CODE, "source": "SHORTLINK", "type": "OPEN_THREAD"}
    [msg] = parse_body(body, APP_ID).messages
    assert msg.handoff_code == CODE


@pytest.mark.parametrize("name", ["text", "image", "quick_reply", "standby", "batched"])
def test_messages_without_a_referral_carry_no_code(name: str) -> None:
    assert all(m.handoff_code is None for m in parsed(name))


@pytest.mark.parametrize("referral", [{"source": "ADS"}, {"ref": ""}, {"ref": "  "},
                                      {"ref": None}, {"ref": True}, {"ref": ["x"]}, "x"])
def test_referrals_without_a_usable_ref_carry_no_code(referral: object) -> None:
    body = json.loads((FIXTURES / "postback.json").read_bytes())
    body["entry"][0]["messaging"][0]["postback"]["referral"] = referral
    [msg] = parse_body(body, APP_ID).messages
    assert msg.handoff_code is None


def test_a_page_inbox_echo_hands_nobody_off() -> None:
    body = json.loads((FIXTURES / "echo_page_inbox.json").read_bytes())
    body["entry"][0]["messaging"][0]["message"]["referral"] = {"ref": CODE}
    [msg] = parse_body(body, APP_ID).messages
    assert msg.echo_author is not None and msg.handoff_code is None


@pytest.mark.parametrize(("username", "link"), [
    ("", f"https://m.me/{PAGE_A}"), ("acme.support", "https://m.me/acme.support"),
    ("@acme.support", "https://m.me/acme.support")])
def test_a_page_links_by_username_or_id(username: str, link: str) -> None:
    assert Page(id=PAGE_A, access_token="t", username=username).m_me == link


@pytest.mark.parametrize("username", ["acme", "acme support", "acme/x", "a" * 51])
def test_a_bad_username_is_refused(username: str) -> None:
    with pytest.raises(ValidationError):
        Page(id=PAGE_A, access_token="t", username=username)


# -- through the real bridge and the Graph API stand-in -------------------------------------


def connector_of(h: Harness) -> MessengerConnector:
    connector = h.bridge.connectors["messenger"]
    assert isinstance(connector, MessengerConnector)
    return connector


async def test_invite_links_to_the_first_page(make_harness: HarnessFactory,
                                              meta: MessengerStandin) -> None:
    connector = connector_of(await messenger_harness(make_harness, meta))
    assert connector.channels() == ("messenger",)
    assert connector.handoff_invite("messenger", CODE) == (
        f"To continue on Messenger, open https://m.me/{PAGE_A}?ref={CODE}")
    assert connector.handoff_invite("sms", CODE) is None


async def test_invite_uses_the_page_username(make_harness: HarnessFactory,
                                             meta: MessengerStandin) -> None:
    h = await messenger_harness(make_harness, meta, pages=[
        {"id": PAGE_B, "access_token": TOKEN_B, "username": "acme.support"}])
    assert connector_of(h).handoff_invite("messenger", CODE) == (
        f"To continue on Messenger, open https://m.me/acme.support?ref={CODE}")


async def test_signed_referrals_hand_the_core_their_ref(
    make_harness: HarnessFactory, meta: MessengerStandin, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = await messenger_harness(make_harness, meta)
    seen = record_ingest(h, monkeypatch)
    s = sender(h)
    assert await s.send(PAGE_A, s.referral(PAGE_A, ANN, CODE)) == 200
    assert await s.send(PAGE_A, s.postback(PAGE_A, ANN, "Get Started", "GET_STARTED",
                                           ref=CODE)) == 200
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, "hello")) == 200
    assert [(m.handoff_code, m.sender_name) for m in seen] == [
        (CODE, "Ann Kowalski"), (CODE, "Ann Kowalski"), (None, "Ann Kowalski")]
