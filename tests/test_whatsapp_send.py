"""Replies to WhatsApp Cloud through the real app and the Graph stand-in: formatting, the
24-hour window and templates, Meta's errors, splitting, files, native choices, edits."""

from __future__ import annotations

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.whatsapp import SEND, TEMPLATES, UPLOAD, WhatsAppStandin
from connectors.base import SendError
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_whatsapp import (
    HOUR,
    KERRY,
    NUMBER_A,
    NUMBER_B,
    OLU,
    customer_writes,
    last_notice,
    out_states,
    sender,
    whatsapp_harness,
)
from vocab.models import Choice, Choices, ConversationId, MessageId, OutboundMessage

pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
async def h(make_harness: HarnessFactory, wa: WhatsAppStandin, clock: OffsetClock) -> Harness:
    return await whatsapp_harness(make_harness, wa, clock)


def buttons(message: dict[str, object]) -> list[str]:
    blocks = message.get("blocks") or []
    assert isinstance(blocks, list)
    return [e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def test_replies_leave_from_the_customers_number_in_whatsapp_formatting(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    s = sender(h, wa, clock)
    thread_a = await customer_writes(h, s)
    thread_b = await customer_writes(h, s, number=NUMBER_B, wa_id=OLU)
    assert await h.agent_says(thread_b, "Hi *Olu*, _really_ ~sorry~: <https://x.example|here>") \
        == 200
    assert await h.agent_says(thread_a, "```tracking 123```") == 200
    await wa.wait_for(SEND, 2)
    assert [(m["phone_number_id"], m["to"], m["text"]["body"]) for m in wa.sent] == [
        (NUMBER_B, OLU, "*Dana*: Hi *Olu*, _really_ ~sorry~: here (https://x.example)"),
        (NUMBER_A, KERRY, "*Dana*: ```tracking 123```")]
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)] * 2)
    assert sorted(r[0] for r in h.rows("SELECT sent_platform_id FROM messages WHERE direction"
                                       " = 'out'")) == sorted(m["wamid"] for m in wa.sent)


@pytest.mark.parametrize("hours, sent", [(23.98, True), (24.02, False)])
async def test_the_window_on_both_sides_of_24_hours(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock, hours: float, sent: bool,
) -> None:
    thread = await customer_writes(h, sender(h, wa, clock))
    clock.offset = hours * HOUR
    assert await h.agent_says(thread, "Yes, yesterday") == 200
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND state <> "
                      "'queued'", [(1,)])
    await h.drained()
    assert len(wa.sent) == (1 if sent else 0)  # outside: nothing attempted at all
    assert out_states(h) == ["sent" if sent else "blocked"]
    if not sent:
        notice = await last_notice(h, thread, 2)
        assert "24-hour window" in notice["text"] and "template" in notice["text"]
        assert buttons(notice) == ["order_update", "welcome_back"]


async def test_templates_from_the_business_account_with_their_parameters(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    thread = await customer_writes(h, sender(h, wa, clock))
    clock.offset = 30 * HOUR
    assert await h.agent_says(thread, "!template order_update 1=Kerry 2=\"A-123\"") == 200
    [call] = await wa.wait_for(SEND, 1)
    assert call.params["template"] == {
        "name": "order_update", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Kerry"},
                                            {"type": "text", "text": "A-123"}]}]}
    assert await h.agent_says(thread, "!template order_update 1=Kerry") == 200
    assert await h.agent_says(thread, "!template pending_one 1=x") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out' ORDER BY id",
                      [("sent",), ("failed",), ("failed",)])
    await h.drained()
    texts = [m["text"] for m in h.slack.thread(CHANNEL, thread)]
    assert any("missing 2" in t for t in texts)
    assert any("no approved template named 'pending_one'" in t for t in texts)
    assert len(wa.sent) == 1 and len(wa.calls_to(TEMPLATES)) >= 1


@pytest.mark.parametrize("code, state, words", [
    (131026, "failed", "could not deliver it (the number may not be on WhatsApp"),
    (190, "failed", "access token expired or is invalid"),
    (131047, "blocked", "24-hour window is closed (error 131047)"),
    (130429, "sent", None),
    (131056, "sent", None),
    (131000, "sent", None),
])
async def test_metas_errors_become_waits_notices_or_retries(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock, code: int, state: str,
    words: str | None,
) -> None:
    thread = await customer_writes(h, sender(h, wa, clock))
    wa.fail_with_code(code, status=401 if code == 190 else 400)
    assert await h.agent_says(thread, "hi") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [(state,)])
    assert len(wa.sent) == (1 if state == "sent" else 0)
    if state == "sent":  # a rate limit is a wait, not an attempt used up; 131000 is a retry
        assert h.rows("SELECT attempts FROM outbox WHERE kind = 'customer_send'") == [
            (2 if code == 131000 else 1,)]
    if words is not None:
        notice = await last_notice(h, thread, 2)
        assert words in notice["text"]


async def test_long_replies_are_split_at_4096_characters(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    thread = await customer_writes(h, sender(h, wa, clock))
    assert await h.agent_says(thread, "word " * 1500) == 200
    await wa.wait_for(SEND, 2)
    assert all(len(t) <= 4096 for t in wa.texts()) and len(wa.sent) == 2


async def test_files_are_uploaded_then_sent_by_media_id(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    thread = await customer_writes(h, sender(h, wa, clock))
    pdf = h.slack.add_file(b"%PDF-1.4 label", name="label.pdf", mimetype="application/pdf")
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="", thread_ts=thread,
                                  files=[pdf])
    assert (await h.agent.post(event))[0] == 200
    [upload] = await wa.wait_for(UPLOAD, 1)
    [call] = await wa.wait_for(SEND, 1)
    media_id = call.params["document"]["id"]
    assert wa.media[media_id] == (b"%PDF-1.4 label", "application/pdf")
    assert call.params["document"]["filename"] == "label.pdf" and upload.params["size"] == 14


async def test_choices_go_out_as_reply_buttons_or_a_list(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    await customer_writes(h, sender(h, wa, clock))
    connector = h.bridge.connectors["whatsapp"]

    def question(n: int) -> OutboundMessage:
        items = tuple(Choice(id=f"csat:{i}", title=f"{i} - a rather long label here")
                      for i in range(1, n + 1))
        return OutboundMessage(message_id=MessageId(1), conversation_id=ConversationId(1),
                               address=f"{NUMBER_A}:{KERRY}", text="How did we do?",
                               author_name="", last_inbound_at=clock(), automatic=True,
                               choices=Choices(items=items, button="Rate us"))

    await connector.send(question(1))
    await connector.send(question(3))
    await connector.send(question(5))
    sent = [m["interactive"] for m in wa.sent]
    assert [m["type"] for m in sent] == ["button", "button", "list"]
    assert [len(m["action"].get("buttons", [])) for m in sent[:2]] == [1, 3]
    assert sent[1]["action"]["buttons"][0]["reply"] == {"id": "csat:1",
                                                        "title": "1 - a rather long l…"}
    rows = sent[2]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [f"csat:{i}" for i in range(1, 6)]
    assert sent[2]["action"]["button"] == "Rate us"
    assert all(m["body"]["text"] == "How did we do?" for m in sent)
    with pytest.raises(SendError, match="up to 10"):
        await connector.send(question(11))


async def test_an_agents_edit_or_deletion_is_refused_with_a_note(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    thread = await customer_writes(h, sender(h, wa, clock))
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="Teh answer",
                                  thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200
    await wa.wait_for(SEND, 1)
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    ts = event["event"]["ts"]
    changed = h.agent.changed_event(channel=CHANNEL, user=AGENT, ts=ts, thread_ts=thread,
                                    old_text="Teh answer", new_text="The answer")
    assert (await h.agent.post(changed))[0] == 200
    notice = await last_notice(h, thread, 2)
    assert "WhatsApp cannot edit" in notice["text"]
    assert len(wa.sent) == 1


async def test_the_template_list_is_refetched_once_stale_on_the_bridges_clock(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    """A closed-window failure offers the approved templates: the list fetched at start is
    kept `template_cache_seconds` (600) on the bridge's clock, then fetched again once."""
    s = sender(h, wa, clock)
    closed = s.body(s.change(NUMBER_A, statuses=[
        s.status("wamid.gone", KERRY, "failed", (131047, "Re-engagement message"))]))
    assert len(wa.calls_to(TEMPLATES)) == 1  # at start
    assert (await s.post(closed))[0] == 200
    await h.drained()
    assert len(wa.calls_to(TEMPLATES)) == 1  # still fresh
    clock.offset = 601
    wa.add_template("new_one", "A new template")
    assert (await s.post(closed))[0] == 200
    await wa.wait_for(TEMPLATES, 2)
    assert (await s.post(closed))[0] == 200  # fresh again: no third listing
    await h.drained()
    assert len(wa.calls_to(TEMPLATES)) == 2


async def test_oversized_choice_ids_are_cut_to_what_meta_takes(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    """Meta refuses a button id past 256 characters and a list row id past 200 (the stand-in
    too): the connector cuts them, and the stand-in accepts both messages."""
    await customer_writes(h, sender(h, wa, clock))
    connector = h.bridge.connectors["whatsapp"]

    def question(n: int) -> OutboundMessage:
        items = tuple(Choice(id=f"{i}:" + "é" * 300, title=f"choice {i}")
                      for i in range(1, n + 1))
        return OutboundMessage(message_id=MessageId(1), conversation_id=ConversationId(1),
                               address=f"{NUMBER_A}:{KERRY}", text="Pick one",
                               author_name="", last_inbound_at=clock(), automatic=True,
                               choices=Choices(items=items))

    await connector.send(question(2))
    await connector.send(question(4))
    buttons_, rows = (m["interactive"]["action"] for m in wa.sent)
    assert [len(b["reply"]["id"]) for b in buttons_["buttons"]] == [256, 256]
    assert [len(r["id"]) for r in rows["sections"][0]["rows"]] == [200] * 4
