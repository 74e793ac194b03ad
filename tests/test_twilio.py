"""The Twilio connector through the real app: signed webhooks in, the SDK's sends out."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from bridge.standins.twilio import (
    CREATE,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    TwilioStandin,
)
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_twilio import CUSTOMER, SMS_FROM, WA_FROM, sender, thread_of

# SQLite only: the Twilio connector's protocol (signatures, forms, receipts): nothing store-
# specific.
pytestmark = pytest.mark.backends("sqlite")

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(2000)


@pytest.fixture
async def h(make_harness: HarnessFactory, twilio: TwilioStandin) -> Harness:
    return await make_harness({"connectors.twilio": {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
        "auth_token": "${TWILIO_AUTH_TOKEN}", "sms_from": SMS_FROM, "whatsapp_from": WA_FROM,
        "api_base_url": twilio.base_url,
    }}, env={"TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN})


async def test_sms_in_reply_out(h: Harness, twilio: TwilioStandin) -> None:
    s = sender(h)
    form = s.sms(from_=CUSTOMER, body="Where is order 123?")
    status, text = await s.post(form)
    assert status == 200 and text.endswith("<Response />")  # empty TwiML: no auto-reply
    assert h.rows("SELECT platform_message_id, text FROM messages") == [
        (form["MessageSid"], "Where is order 123?")]
    assert (await s.post(form))[0] == 200  # Twilio's retry: stored once
    thread = await thread_of(h, CUSTOMER)
    assert h.slack.parents(CHANNEL)[0]["text"].startswith("*+14155550100* · SMS\n")

    assert await h.agent_says(thread, "It ships *today*") == 200
    [call] = await twilio.wait_for(CREATE, 1)
    assert call.params["To"] == CUSTOMER and call.params["From"] == SMS_FROM
    assert call.params["Body"] == "Dana: It ships today"  # plain text, the agent's name first
    assert call.params["StatusCallback"] == f"{h.url}/webhooks/twilio/status"
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    assert h.rows("SELECT sent_platform_id FROM messages WHERE direction = 'out'") == [
        (twilio.sent[0]["sid"],)]
    assert h.count("messages") == 2


@pytest.mark.parametrize("case", ["unsigned", "wrong-token", "tampered"])
async def test_bad_signatures_are_refused_and_store_nothing(h: Harness, case: str) -> None:
    s = sender(h)
    form = s.sms(from_=CUSTOMER, body="hi")
    if case == "unsigned":
        status, _ = await s.post(form, sign=False)
    elif case == "wrong-token":
        status, _ = await s.post(form, token="not-the-token")
    else:
        signature = s.signature(form)
        status, _ = await s.post(form | {"Body": "changed"}, sign=False,
                                 extra={"X-Twilio-Signature": signature})
    assert status == 401
    assert h.count("messages") == 0


async def test_malformed_and_incomplete_forms_get_400(h: Harness) -> None:
    s = sender(h)
    assert (await s.post({}, raw_body=b"\xff\xfe=&&"))[0] == 400
    form = s.sms(from_=CUSTOMER, body="hi")
    del form["MessageSid"]
    assert (await s.post(form))[0] == 400  # signed, but without the essentials
    assert h.count("messages") == 0


async def test_whatsapp_photo_reaches_the_thread_and_replies_go_over_whatsapp(
    h: Harness, twilio: TwilioStandin,
) -> None:
    s = sender(h)
    url = twilio.add_media(JPEG, "image/jpeg")
    form = s.whatsapp(from_=f"whatsapp:{CUSTOMER}", body="Box damaged", profile_name="Ann K",
                      media=[(url, "image/jpeg")])
    assert (await s.post(form))[0] == 200
    thread = await thread_of(h, f"whatsapp:{CUSTOMER}")
    assert "*Ann K* (+14155550100) · WhatsApp" in h.slack.parents(CHANNEL)[0]["text"]
    await h.slack.wait_for("files.completeUploadExternal", 1)
    [uploaded] = [f for f in h.slack.files.values() if f.get("completed")]
    assert uploaded["content"] == JPEG
    assert [d["auth"] for d in twilio.downloads] == [True, False]  # credentials not to the CDN

    photo = h.slack.add_file(JPEG, name="label.jpg", mimetype="image/jpeg")
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="Here is the label",
                                  thread_ts=thread, files=[photo])
    assert (await h.agent.post(event))[0] == 200
    calls = await twilio.wait_for(CREATE, 2)
    assert all(c.params["From"] == WA_FROM for c in calls)
    media_url = calls[1].params["MediaUrl"]
    media_url = media_url[0] if isinstance(media_url, list) else media_url
    assert media_url.startswith(f"{h.url}/media/")
    async with h.session.get(media_url) as resp:  # what Twilio will fetch
        assert resp.status == 200 and await resp.read() == JPEG


async def test_opted_out_number_is_reported_and_429_is_retried(
    h: Harness, twilio: TwilioStandin,
) -> None:
    s = sender(h)
    assert (await s.post(s.sms(from_=CUSTOMER, body="hi")))[0] == 200
    thread = await thread_of(h, CUSTOMER)
    twilio.fail_with_code(20429, status=429)
    assert await h.agent_says(thread, "first") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    twilio.fail_with_code(21610)
    assert await h.agent_says(thread, "second") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out' ORDER BY id",
                      [("sent",), ("blocked",)])
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    notice = h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert "opted out" in notice and "21610" in notice


async def test_signature_is_checked_against_the_public_url_behind_a_proxy(
    make_harness: HarnessFactory, twilio: TwilioStandin,
) -> None:
    public = "https://support.example.com/bridge"
    h = await make_harness({"server": {"public_url": public}, "connectors.twilio": {
        "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN,
        "sms_from": SMS_FROM, "api_base_url": twilio.base_url}})
    form = sender(h, public).sms(from_=CUSTOMER, body="via the proxy")
    assert (await sender(h, public).post(form))[0] == 200
    assert (await sender(h).post(sender(h).sms(from_=CUSTOMER, body="x")))[0] == 401
    assert h.rows("SELECT text FROM messages") == [("via the proxy",)]


async def replied(h: Harness, twilio: TwilioStandin, text: str = "On its way") -> str:
    """A customer wrote, an agent answered; the answer's Twilio MessageSid."""
    s = sender(h)
    assert (await s.post(s.sms(from_=CUSTOMER, body="hi")))[0] == 200
    thread = await thread_of(h, CUSTOMER)
    assert await h.agent_says(thread, text) == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    return str(twilio.sent[-1]["sid"])


async def receipt(h: Harness, sid: str, status: str, error: int | None = None) -> int:
    s = sender(h)
    form = s.status(message_sid=sid, status=status, to=CUSTOMER, error_code=error)
    code, _ = await s.post(form, path="/status")
    return code


async def test_receipts_move_forward_only_and_show_on_the_agents_message(
    h: Harness, twilio: TwilioStandin,
) -> None:
    sid = await replied(h, twilio)
    for status in ("sent", "read", "delivered", "queued"):  # out of order, as Twilio may
        assert await receipt(h, sid, status) == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("read",)])
    [(ts,)] = h.rows("SELECT slack_ts FROM messages WHERE direction = 'out'")
    await h.slack.wait_for("reactions.add", 1)
    await h.drained()
    assert h.slack.reactions[(CHANNEL, ts)] == ["eyes"]  # "delivered" came too late to count


async def test_a_failed_receipt_shows_the_error_in_the_thread(
    h: Harness, twilio: TwilioStandin,
) -> None:
    sid = await replied(h, twilio)
    assert await receipt(h, sid, "undelivered", error=30003) == 200
    await h.wait_rows("SELECT state, error FROM messages WHERE direction = 'out'",
                      [("failed", "Twilio undelivered, error 30003:"
                                  " the handset is unreachable")])
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    assert "30003" in h.slack.messages[-1]["text"]
    [(ts,)] = h.rows("SELECT slack_ts FROM messages WHERE direction = 'out'")
    assert h.slack.reactions[(CHANNEL, ts)] == ["x"]


async def test_receipts_for_unknown_sids_and_bad_signatures(h: Harness) -> None:
    assert await receipt(h, "SM" + "0" * 32, "delivered") == 200  # not ours: ignored
    s = sender(h)
    form = s.status(message_sid="SM" + "1" * 32, status="delivered", to=CUSTOMER)
    assert (await s.post(form, path="/status", token="wrong"))[0] == 401
    assert (await s.post({"MessageStatus": "sent"}, path="/status"))[0] == 400
    assert h.count("messages") == 0 and h.rows("SELECT COUNT(*) FROM sent_ids") == [(0,)]


@pytest.mark.parametrize("path", ["", "/status"])
@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
async def test_an_oversized_body_is_413_before_anything_else(
    h: Harness, path: str, chunked: bool,
) -> None:
    s = sender(h)
    form = s.sms(from_=CUSTOMER, body="x" * 70_000)  # over the tests' max_body_bytes (64 KiB)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": s.signature(form, path=path)}
    body = urlencode(form).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    async with h.session.post(f"{h.url}/webhooks/twilio{path}", headers=headers,
                              data=chunks() if chunked else body) as resp:
        assert resp.status == 413
    assert h.count("messages") == 0 and h.rows("SELECT COUNT(*) FROM receipts") == [(0,)]
