"""Twilio's channel rules through the real app: WhatsApp's 24-hour window and its templates,
STOP/START opt-out, error 21610 and 63016, and the segment count of long SMS."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from bridge.console.render import TEMPLATE_ACTION
from bridge.standins.twilio import (
    CREATE,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    TwilioStandin,
)
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.test_loop import settle
from tests.test_twilio import CUSTOMER, SMS_FROM, WA_FROM, sender, thread_of

WA = f"whatsapp:{CUSTOMER}"
HOUR = 3600.0
FOLLOW_UP = "HX" + "a" * 32
CANCEL = "HX" + "b" * 32


class Clock:
    """The bridge's clock, moved by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandin]:
    async with TwilioStandin() as standin:
        yield standin


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def h(make_harness: HarnessFactory, twilio: TwilioStandin, clock: Clock) -> Harness:
    return await make_harness({"connectors.twilio": {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN,
        "sms_from": SMS_FROM, "whatsapp_from": WA_FROM, "api_base_url": twilio.base_url,
        "templates": [{"name": "follow_up", "content_sid": FOLLOW_UP,
                       "variables": {"1": "there"}},
                      {"name": "cancel", "content_sid": CANCEL}],
    }}, clock=clock)


async def customer(h: Harness, body: str, address: str = WA) -> str:
    s = sender(h)
    form = s.whatsapp(from_=address, body=body) if address.startswith("whatsapp:") \
        else s.sms(from_=address, body=body)
    assert (await s.post(form))[0] == 200
    return await thread_of(h, address)


def out_states(h: Harness) -> list[Any]:
    return [r[0] for r in h.rows("SELECT state FROM messages WHERE direction = 'out'"
                                 " ORDER BY id")]


async def last_notice(h: Harness, thread: str, count: int) -> dict[str, Any]:
    await h.slack.wait_for("chat.postMessage", count)
    await settle(0.1)
    return h.slack.thread(CHANNEL, thread)[-1]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks") or [] if b["type"] == "actions"
            for e in b["elements"]]


@pytest.mark.parametrize("hours, sent", [(23.98, True), (24.02, False)])
async def test_whatsapp_window_on_both_sides_of_24_hours(
    h: Harness, twilio: TwilioStandin, clock: Clock, hours: float, sent: bool,
) -> None:
    thread = await customer(h, "Is my order shipped?")
    clock.offset = hours * HOUR
    assert await h.agent_says(thread, "Yes, yesterday") == 200
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND state <> "
                      "'queued'", [(1,)])
    await settle()
    assert len(twilio.sent) == (1 if sent else 0)  # outside: nothing attempted at all
    assert out_states(h) == ["sent" if sent else "blocked"]
    if not sent:
        notice = await last_notice(h, thread, 2)
        assert "24-hour window" in notice["text"] and "template" in notice["text"]
        assert [b["value"] for b in buttons(notice)] == ["follow_up", "cancel"]


async def test_sms_has_no_window(h: Harness, twilio: TwilioStandin, clock: Clock) -> None:
    thread = await customer(h, "hello", address=CUSTOMER)
    clock.offset = 30 * 24 * HOUR
    assert await h.agent_says(thread, "Still here") == 200
    await twilio.wait_for(CREATE, 1)
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])


async def test_templates_go_out_by_command_and_by_button(
    h: Harness, twilio: TwilioStandin, clock: Clock,
) -> None:
    thread = await customer(h, "Anything new?")
    clock.offset = 30 * HOUR
    assert await h.agent_says(thread, "Your parcel arrived") == 200
    notice = await last_notice(h, thread, 2)

    assert await h.agent_says(thread, '!template follow_up 2="order 123"') == 200
    [call] = await twilio.wait_for(CREATE, 1)
    assert call.params["To"] == WA and call.params["From"] == WA_FROM
    assert call.params["ContentSid"] == FOLLOW_UP and "Body" not in call.params
    assert json.loads(call.params["ContentVariables"]) == {"1": "there", "2": "order 123"}

    [cancel] = [b for b in buttons(notice) if b["value"] == "cancel"]
    assert cancel["action_id"] == f"{TEMPLATE_ACTION}:cancel"
    payload = h.agent.block_action(channel=CHANNEL, user=AGENT, message=notice,
                                   action_id=cancel["action_id"], value="cancel")
    for _ in range(2):  # a second click on the same notice sends nothing more
        assert (await h.agent.post_interaction(payload))[0] == 200
    calls = await twilio.wait_for(CREATE, 2)
    await settle()
    assert len(twilio.sent) == 2 and calls[1].params["ContentSid"] == CANCEL
    assert out_states(h) == ["blocked", "sent", "sent"]


async def test_unknown_template_and_bad_usage_send_nothing(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "hi")
    assert await h.agent_says(thread, "!template") == 200  # usage, ephemeral
    assert await h.agent_says(thread, "!template nope") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("failed",)])
    await settle()
    assert twilio.sent == []
    assert "no template named 'nope'" in h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert await h.slack.wait_for("chat.postEphemeral", 1)


async def test_error_63016_when_twilio_disagrees_with_the_clock(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "hi")
    twilio.fail_with_code(63016)
    assert await h.agent_says(thread, "An answer") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("blocked",)])
    notice = await last_notice(h, thread, 2)
    assert "63016" in notice["text"] and len(buttons(notice)) == 2

    # ...and when it only says so in the status callback
    assert await h.agent_says(thread, "Another") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out' ORDER BY id",
                      [("blocked",), ("sent",)])
    s = sender(h)
    form = s.status(message_sid=str(twilio.sent[-1]["sid"]), status="failed", to=WA,
                    error_code=63016)
    assert (await s.post(form, path="/status"))[0] == 200
    notice = await last_notice(h, thread, 3)
    assert "24-hour window" in notice["text"] and len(buttons(notice)) == 2


async def test_stop_and_start_are_recorded_and_respected(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "hello", address=CUSTOMER)
    await customer(h, "Stop", address=CUSTOMER)
    await h.wait_rows("SELECT opted_out_at IS NOT NULL FROM identities", [(True,)])
    assert await h.agent_says(thread, "Sorry to see you go") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("blocked",)])
    await settle()
    assert twilio.sent == []
    texts = [m["text"] for m in h.slack.thread(CHANNEL, thread)]
    assert any("(STOP)" in t and "START" in t for t in texts)  # told when it arrived...
    assert "opted out" in texts[-1]  # ...and when a reply was held back

    await customer(h, "START", address=CUSTOMER)
    await h.wait_rows("SELECT opted_out_at IS NULL FROM identities", [(True,)])
    assert await h.agent_says(thread, "Welcome back") == 200
    [call] = await twilio.wait_for(CREATE, 1)
    assert call.params["Body"] == "Dana: Welcome back"


async def test_error_21610_marks_the_identity_and_stops_later_sends(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "hello", address=CUSTOMER)
    twilio.fail_with_code(21610)
    assert await h.agent_says(thread, "first") == 200
    await h.wait_rows("SELECT opted_out_at IS NOT NULL FROM identities", [(True,)])
    assert await h.agent_says(thread, "second") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out' ORDER BY id",
                      [("blocked",), ("blocked",)])
    await settle()
    assert len(twilio.calls_to(CREATE, ok_only=False)) == 1  # the second was not even attempted


async def test_long_sms_is_split_and_the_thread_shows_the_segments(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "details please", address=CUSTOMER)
    long = " ".join(["The replacement part ships from our warehouse tomorrow."] * 40)
    assert await h.agent_says(thread, long) == 200
    calls = await twilio.wait_for(CREATE, 2)
    assert all(len(c.params["Body"]) <= 1600 for c in calls)
    assert " ".join(c.params["Body"] for c in calls) == f"Dana: {long}"
    notice = await last_notice(h, thread, 2)
    segments = sum(int(m["num_segments"]) for m in twilio.sent)
    assert f"2 messages, {segments} segments" in notice["text"]


async def test_a_file_whatsapp_cannot_carry_goes_as_a_link_with_a_note(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "Send me the invoice")
    archive = h.slack.add_file(b"PK\x03\x04" + b"x" * 500, name="invoices.zip",
                               mimetype="application/zip")
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="", thread_ts=thread,
                                  files=[archive])
    assert (await h.agent.post(event))[0] == 200
    [call] = await twilio.wait_for(CREATE, 1)
    assert "MediaUrl" not in call.params
    link = call.params["Body"].split("invoices.zip: ", 1)[1]
    async with h.session.get(link) as resp:
        assert resp.status == 200 and (await resp.read()).startswith(b"PK")
    notice = await last_notice(h, thread, 2)
    assert "application/zip" in notice["text"] and "link" in notice["text"]


async def test_a_messaging_service_sends_both_channels(
    make_harness: HarnessFactory, twilio: TwilioStandin,
) -> None:
    service = "MG" + "c" * 32
    h = await make_harness({"connectors.twilio": {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN,
        "messaging_service_sid": service, "api_base_url": twilio.base_url}})
    for n, address in enumerate((CUSTOMER, WA), start=1):
        thread = await customer(h, "hello", address=address)
        assert await h.agent_says(thread, "hi there") == 200
        call = (await twilio.wait_for(CREATE, n))[-1]
        assert call.params["To"] == address and call.params["MessagingServiceSid"] == service
        assert "From" not in call.params


@pytest.mark.parametrize("key, algorithm, status", [
    ("shared-signing-key", "HMAC_SHA256", 200),
    ("another-key", "HMAC_SHA256", 401),
    (DEFAULT_AUTH_TOKEN, "HMAC_SHA256", 401),  # the auth token does not sign SHA-256 ones
], ids=["shared-key", "wrong-key", "auth-token"])
async def test_sha256_shared_key_signatures(
    make_harness: HarnessFactory, twilio: TwilioStandin, key: str, algorithm: str, status: int,
) -> None:
    h = await make_harness({"connectors.twilio": {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN,
        "sms_from": SMS_FROM, "api_base_url": twilio.base_url,
        "webhook_signing_key": "shared-signing-key"}})
    url = f"{h.url}/webhooks/twilio"
    form = sender(h).sms(from_=CUSTOMER, body="signed with the shared key")
    signature = RequestValidator(key).compute_signature(url, form, algorithm)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": signature,
               "X-Twilio-Webhooks-Signature-Settings": f"key=webhooks_sharedkey_1,"
                                                       f"algorithm={algorithm}"}
    async with h.session.post(url, data=urlencode(form), headers=headers) as resp:
        assert resp.status == status
    assert h.count("messages") == (1 if status == 200 else 0)
