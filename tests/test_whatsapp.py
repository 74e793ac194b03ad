"""WhatsApp Cloud through the real app: Meta's signed webhooks in (messages, media, choices,
statuses), rows, threads and read marks out."""

from __future__ import annotations

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.messenger import meta_signature
from bridge.standins.whatsapp import DOWNLOAD, MEDIA_URL, READ, SEND, WhatsAppStandin
from tests.conftest import CHANNEL, Harness, HarnessFactory
from tests.helpers_whatsapp import (
    KERRY,
    NUMBER_A,
    NUMBER_B,
    OLU,
    VERIFY_TOKEN,
    customer_writes,
    last_notice,
    out_states,
    sender,
    whatsapp_harness,
)

pytestmark = pytest.mark.backends("sqlite")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
IN = "SELECT platform_message_id, text, author_name FROM messages WHERE direction = 'in' " \
     "ORDER BY id"


@pytest.fixture
async def h(make_harness: HarnessFactory, wa: WhatsAppStandin, clock: OffsetClock) -> Harness:
    return await whatsapp_harness(make_harness, wa, clock)


async def test_handshake_answers_the_challenge_only_for_our_token(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    s = sender(h, wa, clock)
    assert await s.handshake(VERIFY_TOKEN, "8675309") == (200, "8675309", "text/plain")
    assert (await s.handshake("wrong"))[0] == 403
    assert (await s.handshake(VERIFY_TOKEN, mode="unsubscribe"))[0] == 403


@pytest.mark.backends("sqlite", "postgres")  # the SQL of the pipeline and the wamid dedupe
async def test_signed_text_in_once_with_the_profile_name_and_a_read_mark(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    s = sender(h, wa, clock)
    item = s.message(KERRY, text="Où est ma commande ? 📦")
    body = s.body(s.change(NUMBER_A, [item]))
    assert (await s.post(body))[0] == 200
    assert (await s.post(body))[0] == 200  # Meta's redelivery: stored once
    assert h.rows(IN) == [(item["id"], "Où est ma commande ? 📦", "Kerry Fisher")]
    await h.thread_at(f"{NUMBER_A}:{KERRY}")
    assert "*Kerry Fisher* · WhatsApp" in h.slack.parents(CHANNEL)[0]["text"]
    [mark] = await wa.wait_for(READ, 1)
    assert mark.params["message_id"] == item["id"] and wa.reads == [item["id"]]


@pytest.mark.backends("sqlite", "postgres")
async def test_a_batch_for_two_numbers_is_committed_whole_before_the_200(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    s = sender(h, wa, clock)
    body = s.body(s.change(NUMBER_A, [s.message(KERRY, text="one"), s.message(KERRY, text="two")]),
                  s.change(NUMBER_B, [s.message(OLU, text="three")]))
    assert (await s.post(body))[0] == 200
    assert h.rows("SELECT c.address, m.text FROM messages m JOIN conversations c ON "
                  "c.id = m.conversation_id ORDER BY m.id") == [
        (f"{NUMBER_A}:{KERRY}", "one"), (f"{NUMBER_A}:{KERRY}", "two"),
        (f"{NUMBER_B}:{OLU}", "three")]


async def test_bad_signatures_and_bodies_store_nothing(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    s = sender(h, wa, clock)
    body = s.body(s.change(NUMBER_A, [s.message(KERRY, text="hi")]))
    assert (await s.post(body, sign=False))[0] == 401
    assert (await s.post(body, app_secret="someone-elses"))[0] == 401
    assert (await s.post(body, signature="sha1=abc"))[0] == 401
    raw = b'{"object":"whatsapp_business_account","entry":7}'
    assert (await s.post(raw))[0] == 400
    assert (await s.post(b'{"object":"page","entry":[]}'))[0] == 200  # not ours: ignored
    raw = b"x" * (h.bridge.settings.server.max_body_bytes + 1)
    assert (await s.post(raw, signature=meta_signature("x", raw)))[0] == 413
    assert h.count("messages") == 0


async def test_media_is_fetched_by_id_with_the_token_into_the_thread(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    s = sender(h, wa, clock)
    media_id = wa.add_media(PNG, "image/png")
    image = {"id": media_id, "mime_type": "image/png", "sha256": "x", "caption": "broken"}
    assert await s.send(NUMBER_A, s.message(KERRY, "image", image)) == 200
    await h.slack.wait_for("files.completeUploadExternal", 1)
    [uploaded] = [f for f in h.slack.files.values() if f.get("completed")]
    assert uploaded["content"] == PNG
    [download] = wa.calls_to(DOWNLOAD)
    assert download.headers["Authorization"].startswith("Bearer ")
    assert h.rows("SELECT text FROM messages") == [("broken",)]


async def test_media_urls_off_metas_hosts_are_not_fetched(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    wa.media_base = "https://files.example.net"
    s = sender(h, wa, clock)
    media_id = wa.add_media(PNG, "image/png")
    assert await s.send(NUMBER_A, s.message(KERRY, "image", {"id": media_id})) == 200
    await h.wait_rows("SELECT status FROM outbox WHERE kind = 'slack_file'", [("failed",)])
    assert len(wa.calls_to(MEDIA_URL)) == 1 and wa.calls_to(DOWNLOAD, ok_only=False) == []


async def test_choices_contacts_reactions_and_quotes_are_shown(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    s = sender(h, wa, clock)
    pick = {"type": "list_reply", "list_reply": {"id": "csat:5", "title": "5 Excellent"}}
    card = [{"name": {"formatted_name": "Jan Nowak"}, "phones": [{"phone": "+48600100200"}]}]
    assert await s.send(NUMBER_A, s.message(KERRY, "interactive", pick, context="wamid.ours"),
                        s.message(KERRY, "contacts", card),
                        s.message(KERRY, "reaction", {"message_id": "wamid.ours",
                                                      "emoji": "❤️"}),
                        s.message(KERRY, text="this one", context="wamid.earlier")) == 200
    assert [r[1] for r in h.rows(IN)] == [
        "> (replying to an earlier message)\n5 Excellent",
        "👤 Contact card: Jan Nowak (+48600100200)", "reacted ❤️ to a message",
        "> (replying to an earlier message)\nthis one"]
    assert h.rows("SELECT COUNT(*) FROM identities") == [(1,)]  # the card named nobody


@pytest.mark.backends("sqlite", "postgres")  # receipts update rows by the sent wamid
async def test_statuses_move_the_agents_message_and_a_closed_window_offers_templates(
    h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
) -> None:
    s = sender(h, wa, clock)
    thread = await customer_writes(h, s)
    assert await h.agent_says(thread, "It ships today") == 200
    [call] = await wa.wait_for(SEND, 1)
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    wamid = wa.sent[0]["wamid"]
    change = s.change(NUMBER_A, statuses=[s.status(wamid, KERRY, "delivered"),
                                          s.status(wamid, KERRY, "read")])
    assert (await s.post(s.body(change)))[0] == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("read",)])

    assert await h.agent_says(thread, "One more thing") == 200
    await wa.wait_for(SEND, 2)
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE state = 'sent'", [(1,)])
    failed = s.status(wa.sent[1]["wamid"], KERRY, "failed", (131047, "Re-engagement message"))
    assert (await s.post(s.body(s.change(NUMBER_A, statuses=[failed]))))[0] == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out' ORDER BY id",
                      [("read",), ("failed",)])
    notice = await last_notice(h, thread, 2)
    assert "Re-engagement message (131047)" in notice["text"]
    values = [e["value"] for b in notice.get("blocks") or [] if b["type"] == "actions"
              for e in b["elements"]]
    assert values == ["order_update", "welcome_back"]  # approved only
    assert call.params["to"] == KERRY and out_states(h) == ["read", "failed"]
