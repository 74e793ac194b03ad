"""Twilio's delivery rules through the real app: STOP/START and error 21610, the segment
count of long SMS, files WhatsApp cannot carry, a Messaging Service as the sender, and
SHA-256 shared-key webhook signatures."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from bridge.standins.twilio import (
    CREATE,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    TwilioStandin,
)
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_twilio import (
    CUSTOMER,
    SMS_FROM,
    WA,
    customer,
    last_notice,
    sender,
)

# SQLite only: Twilio's opt-out rules and sending formats; identity flags are tested on both
# stores in test_identity_flags.
pytestmark = pytest.mark.backends("sqlite")


async def test_stop_and_start_are_recorded_and_respected(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "hello", address=CUSTOMER)
    await customer(h, "Stop", address=CUSTOMER)
    await h.wait_rows("SELECT opted_out_at IS NOT NULL FROM identities", [(True,)])
    assert await h.agent_says(thread, "Sorry to see you go") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("blocked",)])
    await h.drained()
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
    await h.drained()
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
