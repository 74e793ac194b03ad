"""Replies to Messenger: routing per page, the 24-hour window and HUMAN_AGENT, Meta's errors,
splitting, personas, files and the delivery/read watermarks."""

from __future__ import annotations

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.messenger import PERSONA, SEND, MessengerStandin
from connectors.base import OutsideWindow
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_messenger import (
    ANN,
    BOB,
    HOUR,
    PAGE_A,
    PAGE_B,
    TOKEN_A,
    messenger_harness,
    sender,
    thread_of,
)
from vocab.models import ConversationId, MessageId, OutboundMessage

# SQLite only: the Messenger send protocol (window, tags, errors, personas, watermarks): nothing
# store-specific.
pytestmark = pytest.mark.backends("sqlite")

OUT = "SELECT state FROM messages WHERE direction = 'out' ORDER BY id"


async def customer_writes(h: Harness, page: str, psid: str, clock: OffsetClock | None = None,
                          text: str = "hello") -> str:
    s = sender(h, clock)
    assert await s.send(page, s.message(page, psid, text)) == 200
    return await thread_of(h, page, psid)


async def test_replies_go_out_from_the_page_the_customer_wrote_to(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    h = await messenger_harness(make_harness, meta)
    thread_a = await customer_writes(h, PAGE_A, ANN)
    thread_b = await customer_writes(h, PAGE_B, BOB)
    assert await h.agent_says(thread_b, "Hello *Bob*") == 200
    assert await h.agent_says(thread_a, "Hello Ann") == 200
    await meta.wait_for(SEND, 2)
    assert [(s["page_id"], s["recipient"]["id"], s["messaging_type"], s["message"]["text"])
            for s in meta.sent] == [(PAGE_B, BOB, "RESPONSE", "Dana: Hello Bob"),
                                    (PAGE_A, ANN, "RESPONSE", "Dana: Hello Ann")]
    assert all(s["message"]["metadata"] == "support-bridge" for s in meta.sent)
    await h.wait_rows(OUT, [("sent",), ("sent",)])
    assert sorted(r[0] for r in h.rows("SELECT sent_platform_id FROM messages WHERE"
                                       " direction = 'out'")) == sorted(s["mid"] for s in meta.sent)


async def test_the_24_hour_window_without_the_human_agent_tag(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    clock = OffsetClock()
    h = await messenger_harness(make_harness, meta, clock)
    thread = await customer_writes(h, PAGE_A, ANN, clock)
    clock.offset = 23 * HOUR + 59 * 60
    assert await h.agent_says(thread, "just in time") == 200
    await h.wait_rows(OUT, [("sent",)])
    clock.offset = 24 * HOUR + 60
    assert await h.agent_says(thread, "too late") == 200
    await h.wait_rows(OUT, [("sent",), ("blocked",)])
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    assert [s["messaging_type"] for s in meta.sent] == ["RESPONSE"]  # no call for the 2nd
    notice = h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert "24-hour window" in notice and "HUMAN_AGENT tag is not enabled" in notice
    assert "resend it once they write again" in notice


async def test_human_agent_tag_between_24_hours_and_7_days_for_people_only(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    clock = OffsetClock()
    h = await messenger_harness(make_harness, meta, clock, human_agent_tag=True)
    thread = await customer_writes(h, PAGE_A, ANN, clock)
    clock.offset = 24 * HOUR + 60
    assert await h.agent_says(thread, "tagged") == 200
    await meta.wait_for(SEND, 1)
    assert (meta.sent[0]["messaging_type"], meta.sent[0]["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    # An automatic message is never tagged: refused before any call.
    [(conv_id, last)] = h.rows("SELECT c.id, i.last_inbound_at FROM conversations c"
                               " JOIN identities i ON i.id = c.identity_id")
    auto = OutboundMessage(message_id=MessageId(0), conversation_id=ConversationId(conv_id),
                           address=f"{PAGE_A}:{ANN}", text="auto", author_name="",
                           last_inbound_at=last, automatic=True)
    with pytest.raises(OutsideWindow, match="automatic message may not use"):
        await h.bridge.connectors["messenger"].send(auto)
    clock.offset = 7 * 24 * HOUR + 60
    assert await h.agent_says(thread, "a week later") == 200
    await h.wait_rows(OUT, [("sent",), ("blocked",)])
    assert len(meta.sent) == 1


async def test_a_page_can_enable_the_tag_on_its_own(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    clock = OffsetClock()
    h = await messenger_harness(make_harness, meta, clock, pages=[
        {"id": PAGE_A, "access_token": "${MESSENGER_PAGE_TOKEN}"},
        {"id": PAGE_B, "access_token": "page-b-token", "human_agent_tag": True}])
    thread_a = await customer_writes(h, PAGE_A, ANN, clock)
    thread_b = await customer_writes(h, PAGE_B, BOB, clock)
    clock.offset = 30 * HOUR
    assert await h.agent_says(thread_a, "to Ann") == 200
    assert await h.agent_says(thread_b, "to Bob") == 200
    await h.wait_rows(OUT, [("blocked",), ("sent",)])
    assert [(s["page_id"], s.get("tag")) for s in meta.sent] == [(PAGE_B, "HUMAN_AGENT")]


@pytest.mark.parametrize(("code", "sub", "status", "state", "words"), [
    (4, None, 400, "sent", None),
    (613, None, 400, "sent", None),
    (2, None, 500, "sent", None),
    (551, 1545041, 400, "failed", "not available on Messenger"),
    (190, None, 400, "failed", "page access token of page 1111111111 expired or is invalid"),
    (10, 2018278, 400, "blocked", "outside the allowed window"),
    (10, 2018278, 400, "blocked", "resend it once they write again"),
])
async def test_meta_errors_become_retries_or_clear_notices(
    make_harness: HarnessFactory, meta: MessengerStandin, code: int, sub: int | None,
    status: int, state: str, words: str | None,
) -> None:
    h = await messenger_harness(make_harness, meta)
    thread = await customer_writes(h, PAGE_A, ANN)
    meta.fail_with_code(code, sub, status=status)
    assert await h.agent_says(thread, "hi") == 200
    await h.wait_rows(OUT, [(state,)])
    assert len(meta.sent) == (1 if state == "sent" else 0)
    if words is not None:
        await h.slack.wait_for("chat.postMessage", 2)
        await h.drained()
        assert words in h.slack.thread(CHANNEL, thread)[-1]["text"]


async def test_long_replies_are_split_under_2000_characters(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    h = await messenger_harness(make_harness, meta)
    thread = await customer_writes(h, PAGE_A, ANN)
    text = "\n\n".join(f"Paragraph {n}: " + "word " * 150 for n in range(6))
    assert await h.agent_says(thread, text) == 200
    await h.wait_rows(OUT, [("sent",)])
    parts = meta.texts()
    assert len(parts) == 3 and all(len(p) <= 2000 for p in parts)
    assert parts[0].startswith("Dana: Paragraph 0")
    [(ids,)] = h.rows("SELECT sent_platform_id FROM messages WHERE direction = 'out'")
    assert ids == ",".join(s["mid"] for s in meta.sent)


async def test_personas_are_created_once_per_agent_and_page(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    h = await messenger_harness(make_harness, meta, personas=True,
                                persona_picture_url="https://example.com/agent.png")
    thread = await customer_writes(h, PAGE_A, ANN)
    assert await h.agent_says(thread, "first") == 200
    assert await h.agent_says(thread, "second") == 200
    await h.wait_rows(OUT, [("sent",), ("sent",)])
    [persona] = meta.calls_to(PERSONA)
    assert persona.params == {"name": "Dana", "profile_picture_url":
                              "https://example.com/agent.png"}
    assert [(s["message"]["text"], s["persona_id"]) for s in meta.sent] == [
        ("first", next(iter(meta.personas))), ("second", next(iter(meta.personas)))]


async def test_without_a_persona_the_name_leads_and_the_thread_is_told(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    h = await messenger_harness(make_harness, meta, personas=True)
    thread = await customer_writes(h, PAGE_A, ANN)
    meta.fail_with_code(100, method=PERSONA, message="(#100) Persona not allowed")
    assert await h.agent_says(thread, "hello") == 200
    await h.wait_rows(OUT, [("sent",)])
    assert meta.texts() == ["Dana: hello"] and "persona_id" not in meta.sent[0]
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    assert "sent without a persona" in h.slack.thread(CHANNEL, thread)[-1]["text"]
    # Not asked again (nor the thread told again) for every reply while Meta refuses.
    assert await h.agent_says(thread, "still me") == 200
    await h.wait_rows(OUT, [("sent",), ("sent",)])
    await h.drained()
    assert meta.texts() == ["Dana: hello", "Dana: still me"]
    assert len(meta.calls_to(PERSONA, ok_only=False)) == 1
    assert sum("sent without a persona" in m["text"]
               for m in h.slack.thread(CHANNEL, thread)) == 1


async def test_a_persona_name_stays_within_metas_50_characters(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    h = await messenger_harness(make_harness, meta, personas=True)
    thread = await customer_writes(h, PAGE_A, ANN)
    h.slack.add_user(AGENT, display_name="Dana " + "Q" * 60)
    assert await h.agent_says(thread, "hi") == 200
    await h.wait_rows(OUT, [("sent",)])
    [persona] = meta.calls_to(PERSONA)
    assert persona.params["name"] == ("Dana " + "Q" * 60)[:50]


async def test_files_go_out_by_url(make_harness: HarnessFactory, meta: MessengerStandin) -> None:
    h = await messenger_harness(make_harness, meta)
    thread = await customer_writes(h, PAGE_A, ANN)
    pdf = h.slack.add_file(b"%PDF-1.4 label", name="label.pdf", mimetype="application/pdf")
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="", thread_ts=thread,
                                  files=[pdf])
    assert (await h.agent.post(event))[0] == 200
    [call] = await meta.wait_for(SEND, 1)
    attachment = call.params["message"]["attachment"]
    assert attachment["type"] == "file" and attachment["payload"]["url"].startswith(
        f"{h.url}/media/")
    async with h.session.get(attachment["payload"]["url"]) as resp:  # what Meta fetches
        assert await resp.read() == b"%PDF-1.4 label"


async def test_delivery_and_read_watermarks_move_our_messages_forward(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    clock = OffsetClock()
    h = await messenger_harness(make_harness, meta, clock)
    thread = await customer_writes(h, PAGE_A, ANN, clock)
    assert await h.agent_says(thread, "one") == 200
    await h.wait_rows(OUT, [("sent",)])
    sent_at = clock()
    clock.offset = 60
    assert await h.agent_says(thread, "two") == 200
    await h.wait_rows(OUT, [("sent",), ("sent",)])
    s = sender(h, clock)
    # Delivered up to between the two sends; then everything read.
    assert await s.send(PAGE_A, s.delivery(PAGE_A, ANN, watermark=sent_at + 30)) == 200
    await h.wait_rows(OUT, [("delivered",), ("sent",)])
    assert await s.send(PAGE_A, s.read(PAGE_A, ANN)) == 200
    await h.wait_rows(OUT, [("read",), ("read",)])
    await h.slack.wait_for("reactions.add", 3)
    await h.drained()
    ts = [r[0] for r in h.rows("SELECT slack_ts FROM messages WHERE direction = 'out'"
                               " ORDER BY id")]
    assert [h.slack.reactions[(CHANNEL, t)] for t in ts] == [["white_check_mark", "eyes"],
                                                             ["eyes"]]


async def test_a_token_quoted_in_metas_error_never_reaches_the_thread(
    make_harness: HarnessFactory, meta: MessengerStandin, caplog: pytest.LogCaptureFixture,
) -> None:
    h = await messenger_harness(make_harness, meta)
    thread = await customer_writes(h, PAGE_A, ANN)
    meta.fail_with_code(100, message=f"(#100) Malformed access token {TOKEN_A}")
    assert await h.agent_says(thread, "hi") == 200
    await h.wait_rows(OUT, [("failed",)])
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    notice = h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert "Malformed access token [page access token]" in notice
    assert TOKEN_A not in notice and TOKEN_A not in caplog.text
    assert TOKEN_A not in str(h.rows("SELECT error FROM messages")) + str(
        h.rows("SELECT last_error FROM outbox"))


async def test_one_persona_per_agent_even_when_two_replies_go_out_at_once(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    h = await messenger_harness(make_harness, meta, personas=True)
    thread_a = await customer_writes(h, PAGE_A, ANN)
    thread_c = await customer_writes(h, PAGE_A, "6000000000000077")
    meta.delay_next(PERSONA, 0.5)  # the first creation is still on its way when...
    assert await h.agent_says(thread_a, "to Ann") == 200
    assert await h.agent_says(thread_c, "to Cy") == 200  # ...the second reply needs one
    await h.wait_rows(OUT, [("sent",), ("sent",)])
    assert len(meta.calls_to(PERSONA)) == 1
    assert len({s["persona_id"] for s in meta.sent}) == 1
