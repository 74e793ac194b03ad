"""Twilio's inbound form, parsed purely, from recorded payloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Malformed
from connectors.twilio.parse import parse_form, parse_message

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"


def load(name: str) -> dict[str, str]:
    return parse_form((FIXTURES / f"{name}.form").read_bytes())


def test_sms_text() -> None:
    [msg] = parse_message(load("sms_text"))
    assert msg.connector == "twilio" and msg.address == "+14155550100"
    assert msg.platform_message_id == "SM5f0c2c7e9d1a4b3c8e6f7a8b9c0d1e2f"
    assert msg.text == "Where is order 123?" and msg.attachments == ()
    assert msg.sender_name == "+14155550100"  # SMS carries no name


def test_whatsapp_image_keeps_profile_name_and_media() -> None:
    [msg] = parse_message(load("whatsapp_image"))
    assert msg.address == "whatsapp:+14155550100"  # replies go back over WhatsApp
    assert msg.sender_name == "Ann K" and msg.text == "Box damaged"
    [media] = msg.attachments
    assert media.kind == "photo" and media.mime_type == "image/jpeg"
    assert media.url is not None and media.url.endswith("/Media/ME3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f")


@pytest.mark.parametrize("field", ["From", "To", "MessageSid"])
def test_a_form_without_the_essentials_is_malformed(field: str) -> None:
    form = load("sms_text")
    del form[field]
    with pytest.raises(Malformed, match=field):
        parse_message(form)


@pytest.mark.parametrize("body", [b"\xff\xfe", b"a=1&&=&b", b"%zz=%zz&x"])
def test_bodies_that_are_not_forms_are_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse_form(body)


def test_unknown_fields_are_tolerated() -> None:
    form = load("sms_text") | {"SomethingNew": "x"}  # Twilio adds fields without notice
    [msg] = parse_message(form)
    assert msg.text == "Where is order 123?"


@pytest.mark.parametrize("body, expected", [
    ("STOP", True), (" stop ", True), ("Unsubscribe.", True), ("quit", True),
    ("START", False), ("unstop", False), ("yes", False),
    ("please stop sending", None), ("stopped by the shop", None), ("", None),
])
def test_opt_out_keywords_are_the_whole_message(body: str, expected: bool | None) -> None:
    [msg] = parse_message(load("sms_text") | {"Body": body})
    assert msg.opt_out is expected


def test_advanced_opt_out_field_wins_over_the_body() -> None:
    [msg] = parse_message(load("sms_text") | {"Body": "arrêt", "OptOutType": "STOP"})
    assert msg.opt_out is True
