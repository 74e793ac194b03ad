"""Twilio and one customer across channels: the channel and proven number of each inbound
message, the channels configured, and handoff invites to SMS and WhatsApp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.standins.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioStandin
from connectors.twilio.connector import TwilioConnector
from connectors.twilio.parse import parse_form, parse_message
from connectors.twilio.settings import TwilioSettings
from tests.conftest import Harness, HarnessFactory
from tests.helpers_continuity import record_ingest
from tests.helpers_twilio import CUSTOMER, SMS_FROM, WA_FROM, sender

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
CODE = "LINK-7KQ29XWDM4PT"
SERVICE = "MG" + "0123456789abcdef" * 2
SMS_INVITE = f"To continue by SMS, text {CODE} to {SMS_FROM}."


def load(name: str) -> dict[str, str]:
    return parse_form((FIXTURES / f"{name}.form").read_bytes())


def test_an_sms_proves_its_sender_number() -> None:
    [msg] = parse_message(load("sms_text"))
    assert msg.channel == "sms" and msg.verified_phone == "+14155550100"
    assert msg.address == "+14155550100" and msg.handoff_code is None


def test_a_whatsapp_message_proves_the_number_without_its_prefix() -> None:
    [msg] = parse_message(load("whatsapp_image"))
    assert msg.channel == "whatsapp" and msg.verified_phone == "+14155550100"
    assert msg.address == "whatsapp:+14155550100"  # replies still go over WhatsApp


def test_a_code_sent_from_a_wa_me_link_stays_in_the_text() -> None:
    """The core finds codes in SMS and WhatsApp texts itself."""
    [msg] = parse_message(load("whatsapp_handoff"))
    assert msg.text == CODE and msg.handoff_code is None
    assert (msg.channel, msg.verified_phone) == ("whatsapp", "+447700900123")


def settings(**values: Any) -> TwilioSettings:
    return TwilioSettings.model_validate(
        {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": "t", **values})


@pytest.mark.parametrize(("values", "channels", "numbers"), [
    ({"sms_from": SMS_FROM}, ("sms",), {"sms": SMS_FROM}),
    ({"whatsapp_from": WA_FROM}, ("whatsapp",), {"whatsapp": "+14155238886"}),
    ({"sms_from": SMS_FROM, "whatsapp_from": WA_FROM}, ("sms", "whatsapp"),
     {"sms": SMS_FROM, "whatsapp": "+14155238886"}),
    ({"messaging_service_sid": SERVICE}, ("sms",), {}),
    ({"messaging_service_sid": SERVICE, "sms_number": SMS_FROM}, ("sms",), {"sms": SMS_FROM}),
    ({"messaging_service_sid": SERVICE, "whatsapp_number": "+14155238886"},
     ("sms", "whatsapp"), {"whatsapp": "+14155238886"}),
    ({"whatsapp_from": WA_FROM, "messaging_service_sid": SERVICE}, ("sms", "whatsapp"),
     {"whatsapp": "+14155238886"}),
])
def test_channels_are_what_is_configured(values: dict[str, str], channels: tuple[str, ...],
                                         numbers: dict[str, str]) -> None:
    configured = settings(**values)
    assert configured.channels == channels
    assert configured.handoff_numbers == numbers


@pytest.mark.parametrize("values", [
    {"sms_from": SMS_FROM, "whatsapp_number": "+14155238886"},  # no sender serves it
    {"whatsapp_from": WA_FROM, "sms_number": SMS_FROM},
    {"messaging_service_sid": SERVICE, "sms_number": "14155550199"},  # not E.164
    {"messaging_service_sid": SERVICE, "whatsapp_number": "whatsapp:+14155238886"},
])
def test_handoff_numbers_must_name_a_sender_in_e164(values: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        settings(**values)


# -- through the real bridge, with signed webhooks ------------------------------------------


def connector_of(h: Harness) -> TwilioConnector:
    connector = h.bridge.connectors["twilio"]
    assert isinstance(connector, TwilioConnector)
    return connector


async def bridge_with(make_harness: HarnessFactory, twilio: TwilioStandin,
                      **senders: str) -> Harness:
    return await make_harness({"connectors.twilio": {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN,
        "api_base_url": twilio.base_url, **senders}})


def test_invites_name_the_configured_numbers(h: Harness) -> None:
    connector = connector_of(h)
    assert connector.channels() == ("sms", "whatsapp")
    assert connector.handoff_invite("whatsapp", CODE) == (
        f"To continue on WhatsApp, open https://wa.me/14155238886?text={CODE} and send the "
        "message as it is.")
    assert connector.handoff_invite("sms", CODE) == SMS_INVITE
    assert connector.handoff_invite("twilio", CODE) is None
    assert connector.handoff_invite("telegram", CODE) is None


async def test_a_messaging_service_needs_its_numbers_declared(
    make_harness: HarnessFactory, twilio: TwilioStandin,
) -> None:
    bare = connector_of(await bridge_with(make_harness, twilio, messaging_service_sid=SERVICE))
    assert bare.channels() == ("sms",)
    assert bare.handoff_invite("sms", CODE) is None  # no number to tell the customer
    assert bare.handoff_invite("whatsapp", CODE) is None
    declared = connector_of(await bridge_with(
        make_harness, twilio, messaging_service_sid=SERVICE, sms_number=SMS_FROM,
        whatsapp_number="+14155238886"))
    assert declared.channels() == ("sms", "whatsapp")
    assert declared.handoff_invite("sms", CODE) == SMS_INVITE
    invite = declared.handoff_invite("whatsapp", CODE)
    assert invite is not None and f"https://wa.me/14155238886?text={CODE}" in invite


async def test_signed_webhooks_hand_the_core_channel_and_number(
    h: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = record_ingest(h, monkeypatch)
    s = sender(h)
    assert (await s.post(s.sms(from_=CUSTOMER, body="hi")))[0] == 200
    assert (await s.post(s.whatsapp(from_=f"whatsapp:{CUSTOMER}", body=CODE)))[0] == 200
    assert [(m.channel, m.verified_phone, m.text) for m in seen] == [
        ("sms", CUSTOMER, "hi"), ("whatsapp", CUSTOMER, CODE)]
