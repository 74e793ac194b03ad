"""Teams and routing (issue 19, items 1 and 2): `[teams.<name>]` channels, each working as the
support channel does, and `[[routing.rules]]` choosing where a new conversation opens."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.console.render import CLAIM_ACTION
from bridge.standins import SlackStandin
from bridge.standins.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioStandin
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_twilio import SMS_FROM, WA_FROM
from tests.helpers_twilio import sender as twilio_sender
from tests.test_socket_mode import APP_TOKEN, SOCKET_MODE
from tests.waiting import until

BILLING = "C0BILLING1"
GERMAN = "C0GERMAN01"
TEAMS: dict[str, Any] = {
    "teams.billing": {"channel": BILLING, "members": [AGENT]},
    "teams.german": {"channel": GERMAN, "language": "de"},
    "routing": {"rules": [
        {"team": "billing", "keywords": ["invoice", "facture"]},
        {"team": "german", "languages": ["de"]},
    ]},
}


def parents(h: Harness, channel: str) -> list[str]:
    return [str(m["text"]) for m in h.slack.parents(channel)]


async def says(h: Harness, chat: int, text: str, language: str | None = "") -> int:
    """A Telegram message; `language`: the app's language_code ("" leaves the stand-in's
    "en", None sends none, as a client may)."""
    update = h.telegram.text_update(chat_id=chat, text=text, first_name="Ann")
    if language is None:
        del update["message"]["from"]["language_code"]
    elif language:
        update["message"]["from"]["language_code"] = language
    status, _ = await h.telegram.deliver(update, h.session)
    return status


async def test_rules_send_each_new_conversation_to_its_team_channel(
        make_harness: HarnessFactory) -> None:
    h = await make_harness(TEAMS)
    assert await says(h, 1, "Where is my FACTURÉ for March?") == 200  # case, accents
    assert await says(h, 2, "Hello, my parcel is late") == 200
    assert await says(h, 3, "Hello, wo ist mein Paket?", language="de-AT") == 200  # the hint
    assert await says(h, 4, "Guten Tag, meine Bestellung ist nicht angekommen",
                      language=None) == 200  # no hint: guessed
    assert await says(h, 5, "Paket?", language="en") == 200  # the hint over a guess
    await h.drained()
    rows = h.rows("SELECT i.address, c.slack_channel FROM conversations c"
                  " JOIN identities i ON i.id = c.identity_id ORDER BY i.address")
    assert rows == [("1", BILLING), ("2", CHANNEL), ("3", GERMAN), ("4", GERMAN),
                    ("5", CHANNEL)]
    assert len(parents(h, BILLING)) == 1 and "FACTUR" in parents(h, BILLING)[0]
    assert len(parents(h, CHANNEL)) == 2 and len(parents(h, GERMAN)) == 2
    # A later message joins the conversation where it is, whatever it says.
    assert await says(h, 2, "and my invoice too") == 200
    await h.drained()
    assert h.count("conversations") == 5
    assert len(h.slack.thread(CHANNEL, await h.thread_of(2))) == 2


async def test_a_team_channel_works_as_the_support_channel_does(
        make_harness: HarnessFactory) -> None:
    h = await make_harness(TEAMS)
    assert await says(h, 7, "My invoice is wrong") == 200
    thread = await h.thread_of(7)
    assert h.slack.parents(BILLING)[0]["ts"] == thread
    # A reply in the team's thread reaches the customer; a note and a command do not.
    event = h.agent.message_event(channel=BILLING, user=AGENT, text="Let me check that",
                                  thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200
    await until(lambda: len(h.telegram.calls_to("sendMessage")) == 1, "the reply sent")
    assert "Let me check that" in str(h.telegram.calls_to("sendMessage")[0])
    for text in ("note: ask finance", "!claim"):
        event = h.agent.message_event(channel=BILLING, user=AGENT, text=text, thread_ts=thread)
        assert (await h.agent.post(event))[0] == 200
    assert h.rows("SELECT assignee FROM conversations") == [(AGENT,)]
    await until(lambda: f"<@{AGENT}>" in str(h.slack.parents(BILLING)[0]["blocks"]),
                "the parent redrawn in the team channel")
    await h.drained()
    assert len(h.telegram.calls_to("sendMessage")) == 1
    # A private note goes to the channel the agent wrote in.
    event = h.agent.message_event(channel=BILLING, user=AGENT, text="!claim", thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200
    await until(lambda: any(e["channel"] == BILLING for e in h.slack.ephemerals),
                lambda: f"private notes: {h.slack.ephemerals}")
    # A thread in a channel the bridge does not know is not a conversation.
    event = h.agent.message_event(channel="C0ELSEWHERE", user=AGENT, text="hi",
                                  thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200
    await h.drained()
    assert len(h.telegram.calls_to("sendMessage")) == 1
    assert CLAIM_ACTION  # the parent's buttons are the support channel's


async def test_without_teams_everything_stays_in_the_support_channel(
        harness: Harness) -> None:
    h = harness
    assert await says(h, 9, "invoice please") == 200
    await h.drained()
    assert h.rows("SELECT slack_channel FROM conversations") == [(CHANNEL,)]


async def test_a_returning_customers_new_conversation_goes_where_the_rules_send_it(
        make_harness: HarnessFactory) -> None:
    h = await make_harness({**TEAMS, "conversations": {"reopen_within_hours": 0}})
    assert await says(h, 11, "my invoice is wrong") == 200
    old = await h.thread_of(11)
    event = h.agent.message_event(channel=BILLING, user=AGENT, text="!close", thread_ts=old)
    assert (await h.agent.post(event))[0] == 200
    assert await says(h, 11, "Hi again, a question about my parcel") == 200
    await h.drained()
    assert h.rows("SELECT slack_channel, status FROM conversations ORDER BY id") == [
        (BILLING, "closed"), (CHANNEL, "open")]
    # The new parent links to the earlier thread, in the billing channel.
    [new] = h.slack.parents(CHANNEL)
    assert f"/archives/{BILLING}/p{old.replace('.', '')}" in str(new)


async def test_a_customer_file_goes_into_the_team_thread(make_harness: HarnessFactory) -> None:
    h = await make_harness(TEAMS)
    update = h.telegram.text_update(chat_id=8, text="x", first_name="Ann")
    h.telegram.add_file("INVOICEPDF", b"%PDF-1.4 invoice", "documents/invoice.pdf")
    message = update["message"]
    del message["text"]
    message["caption"] = "Here is the invoice"
    message["document"] = {"file_id": "INVOICEPDF", "file_unique_id": "inv1",
                           "file_name": "invoice.pdf", "mime_type": "application/pdf",
                           "file_size": 16}
    status, _ = await h.telegram.deliver(update, h.session)
    assert status == 200
    await h.slack.wait_for("files.completeUploadExternal", 1)
    [call] = h.slack.calls_to("files.completeUploadExternal")
    assert call.params.get("channel_id") == BILLING
    assert h.slack.parents(BILLING) and not h.slack.parents(CHANNEL)


@pytest.mark.backends("sqlite")
async def test_a_team_channel_works_in_socket_mode(make_harness: HarnessFactory,
                                                   slack: SlackStandin) -> None:
    slack.app_token = APP_TOKEN
    h = await make_harness({**TEAMS, **SOCKET_MODE}, env={"SLACK_APP_TOKEN": APP_TOKEN})
    assert await says(h, 9, "invoice 42 is wrong") == 200
    thread = await h.thread_of(9)
    event = h.agent.message_event(channel=BILLING, user=AGENT, text="Checking",
                                  thread_ts=thread)
    await h.slack.wait_ack(await h.slack.socket_push(event))
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert str(sent[0].params["text"]).endswith("Checking")
    # Someone from another workspace (Slack Connect) is ignored in a team channel too.
    outsider = h.agent.message_event(channel=BILLING, user="U0OUTSIDE", text="hi there",
                                     thread_ts=thread)
    outsider["event"]["user_team"] = "T0OTHER"
    await h.slack.wait_ack(await h.slack.socket_push(outsider))
    await h.drained()
    assert len(h.telegram.calls_to("sendMessage")) == 1


async def test_a_team_reads_snooze_times_in_its_own_time_zone(
        make_harness: HarnessFactory) -> None:
    tokyo = {**TEAMS, "teams.billing": {"channel": BILLING, "timezone": "Asia/Tokyo"}}
    h = await make_harness(tokyo)
    assert await says(h, 10, "invoice please") == 200
    thread = await h.thread_of(10)
    event = h.agent.message_event(channel=BILLING, user=AGENT, text="!snooze tomorrow 9:00",
                                  thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200
    [(until,)] = h.rows("SELECT snooze_until FROM conversations")
    local = datetime.fromtimestamp(float(until), ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (9, 0)  # 9:00 in Tokyo, not in UTC
    await h.drained()
    assert any("09:00" in str(m["text"]) for m in h.slack.thread(BILLING, thread))


async def test_an_inbox_rule_routes_by_the_number_the_customer_wrote_to(
        make_harness: HarnessFactory, twilio: TwilioStandin) -> None:
    uk_number = "+441234567890"
    h = await make_harness({
        **TEAMS, "teams.uk": {"channel": "C0UKTEAM01", "timezone": "Europe/London"},
        "routing": {"rules": [{"team": "uk", "connectors": ["twilio"],
                               "inboxes": [uk_number]}]},
        "connectors.twilio": {"enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
                              "auth_token": DEFAULT_AUTH_TOKEN, "sms_from": SMS_FROM,
                              "whatsapp_from": WA_FROM, "api_base_url": twilio.base_url}})
    s = twilio_sender(h)
    assert (await s.post(s.whatsapp(from_="+14155550111", body="hi", to=uk_number)))[0] == 200
    assert (await s.post(s.sms(from_="+14155550112", body="hi", to=SMS_FROM)))[0] == 200
    await h.drained()
    assert h.rows("SELECT address, slack_channel FROM conversations ORDER BY address") == [
        ("+14155550112", CHANNEL), ("whatsapp:+14155550111", "C0UKTEAM01")]
