"""Telegram and one customer across channels: /start payloads, shared contacts, deep links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.telegram.connector import TelegramConnector
from connectors.telegram.parse import parse_update, parse_update_data
from tests.conftest import Harness
from tests.helpers_continuity import record_ingest

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def test_start_payload_is_the_handoff_code_and_the_text_stays() -> None:
    [msg] = parse_update(load("start_payload"))
    assert msg.handoff_code == "LINK-7KQ29XWDM4PT"
    assert msg.text == "/start LINK-7KQ29XWDM4PT"
    assert msg.verified_phone is None and msg.channel is None


@pytest.mark.parametrize("text,code", [
    ("/start abc_DEF-123", "abc_DEF-123"),  # any payload goes on; the core judges it
    ("/start@bridge_bot LINK-7KQ29XWDM4PT", "LINK-7KQ29XWDM4PT"),
    ("/start", None), ("/start ", None), ("/started LINK-7KQ29XWDM4PT", None),
    ("please /start LINK-7KQ29XWDM4PT", None), ("/start two words", None),
    ("LINK-7KQ29XWDM4PT", None),  # a code in the text: the core finds it there
])
def test_only_a_start_command_carries_a_payload(text: str, code: str | None) -> None:
    update = json.loads(load("start_payload"))
    update["message"]["text"] = text
    [msg] = parse_update_data(update)
    assert msg.handoff_code == code and msg.text == text


def test_a_plain_start_has_no_code() -> None:
    [msg] = parse_update(load("start_plain"))
    assert msg.handoff_code is None and msg.text == "/start"


def test_an_edit_into_a_start_command_is_no_handoff() -> None:
    update = json.loads(load("edited_text"))
    update["edited_message"]["text"] = "/start LINK-7KQ29XWDM4PT"
    update["edited_message"].pop("entities", None)
    [msg] = parse_update_data(update)
    assert msg.edit_of == "17" and msg.handoff_code is None


def test_own_contact_proves_the_phone_number() -> None:
    [msg] = parse_update(load("contact_own"))
    assert msg.verified_phone == "14155552671"  # as Telegram sends it; the core makes E.164
    assert msg.text == "[contact]" and msg.handoff_code is None


@pytest.mark.parametrize("name", ["contact_other", "contact_card", "contact_forwarded"])
def test_other_contacts_prove_nothing(name: str) -> None:
    [msg] = parse_update(load(name))
    assert msg.verified_phone is None
    assert msg.text == "[contact]"  # still relayed to the agent as before


@pytest.mark.parametrize("change", [
    {"forward_from": {"id": 424242, "is_bot": False, "first_name": "Ann"},
     "forward_date": 1716990000},  # the Bot API's older forward fields
    {"forward_sender_name": "Ann", "forward_date": 1716990000},
    {"contact": {"phone_number": "14155552671", "first_name": "Ann", "user_id": "424242"}},
    {"contact": {"phone_number": "", "first_name": "Ann", "user_id": 424242}},
    {"contact": {"first_name": "Ann", "user_id": 424242}},
    {"contact": "14155552671"},
])
def test_odd_contacts_prove_nothing(change: dict[str, object]) -> None:
    update = json.loads(load("contact_own"))
    update["message"].update(change)
    [msg] = parse_update_data(update)
    assert msg.verified_phone is None


def test_a_phone_number_typed_in_text_proves_nothing() -> None:
    update = json.loads(load("text"))
    update["message"]["text"] = "my number is +14155552671"
    [msg] = parse_update_data(update)
    assert msg.verified_phone is None


# -- through the real bridge and the Telegram stand-in -------------------------------------


def connector_of(h: Harness) -> TelegramConnector:
    connector = h.bridge.connectors["telegram"]
    assert isinstance(connector, TelegramConnector)
    return connector


async def test_invite_is_a_deep_link_to_the_bot_getme_named(harness: Harness) -> None:
    connector = connector_of(harness)
    assert harness.telegram.calls_to("getMe")  # learnt at start
    assert connector.channels() == ("telegram",)
    invite = connector.handoff_invite("telegram", "LINK-7KQ29XWDM4PT")
    assert invite == ("To continue on Telegram, open "
                      "https://t.me/bridge_standin_bot?start=LINK-7KQ29XWDM4PT")
    assert connector.handoff_invite("sms", "LINK-7KQ29XWDM4PT") is None
    assert connector.handoff_invite("telegram", "LINK 7KQ29XWDM4PT") is None  # not a payload
    assert connector.handoff_invite("telegram", "L" * 65) is None


async def test_deep_link_and_contact_reach_the_core(
    harness: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The updates Telegram POSTs after a deep link and a phone share, through the real
    webhook: what the connector hands the core."""
    seen = record_ingest(harness, monkeypatch)
    for name in ("start_payload", "contact_own", "contact_forwarded"):
        status, _ = await harness.telegram.deliver(load(name), harness.session)
        assert status == 200
    assert [(m.handoff_code, m.verified_phone) for m in seen] == [
        ("LINK-7KQ29XWDM4PT", None), (None, "14155552671"), (None, None)]
