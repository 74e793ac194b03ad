"""The web chat offline, continued by email (issue 26): the address a visitor leaves in the
offline prompt gets the agents' replies through the email connector's reply path (the real
SMTP receiver and Dovecot of the email tests), the widget still shows them, the customer's
answer by email lands in the same thread, and the unverified address never links anyone."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from storage.kpi import KpiQuery
from tests.conftest import CHANNEL, Harness, HarnessFactory
from tests.dovecot import Dovecot
from tests.helpers_webchat import user_hash
from tests.mailservers import EMAIL_ENV, SmtpReceiver, customer_mail, email_config
from tests.waiting import poll
from vocab.models import InboundMessage

ORIGIN = "https://shop.example"
SECRET = "s3cret-for-hmac"


@pytest.fixture
async def h(dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory) -> Harness:
    return await make_harness({
        "connectors.email": email_config(dovecot, smtp),
        "connectors.webchat": {"enabled": True, "sites": [
            {"id": "shop", "allowed_origins": [ORIGIN], "identity_secret": SECRET}]}},
        env=EMAIL_ENV)


class Page:
    """The widget's protocol, as a page speaks it (README "The widget's protocol")."""

    def __init__(self, h: Harness, query: str = "") -> None:
        self.h, self.query, self.token = h, query, ""

    async def open(self) -> aiohttp.ClientWebSocketResponse:
        token = f"&token={self.token}" if self.token else ""
        ws = await self.h.session.ws_connect(
            f"ws://127.0.0.1:{self.h.port}/webchat/ws?site=shop{token}{self.query}",
            headers={"Origin": ORIGIN})
        welcome = await ws.receive_json(timeout=5)
        assert welcome["type"] == "welcome"
        self.token = self.token or welcome["visitor_token"]
        return ws

    async def say(self, client_id: str, text: str, **page: str) -> int:
        ws = await self.open()
        await ws.send_json({"type": "message", "client_id": client_id, "text": text,
                            "page": {"url": "https://shop.example/cart", **page}})
        ack = await ws.receive_json(timeout=5)
        await ws.close()
        assert ack["type"] == "ack", ack
        return int(ack["id"])

    async def missed(self, after: int) -> list[dict[str, Any]]:
        """What a page that comes back gets on `resume` (then a ping, to know it is all)."""
        ws = await self.open()
        await ws.send_json({"type": "resume", "after": after})
        await ws.send_json({"type": "ping"})
        frames = []
        while (frame := await ws.receive_json(timeout=5))["type"] != "pong":
            frames.append(frame)
        await ws.close()
        return frames


def thread_texts(h: Harness, thread: str) -> list[str]:
    return [str(m.get("text", "")) for m in h.slack.thread(CHANNEL, thread)]


async def test_offline_chat_continues_by_email_in_the_same_thread(
        h: Harness, dovecot: Dovecot, smtp: SmtpReceiver) -> None:
    page = Page(h)
    first = await page.say("c1", "Is the blue coat back in stock?", email="Ann@Example.org")
    [(visitor, web_id, customer)] = h.rows(
        "SELECT address, id, customer_id FROM identities WHERE connector = 'webchat'")
    thread = await h.thread_at(str(visitor))

    # An email identity of the same customer, flagged unverified, where replies now go.
    assert h.rows("SELECT customer_id, channel, unverified, shown_on FROM identities"
                  " WHERE connector = 'email' AND address = 'ann@example.org'") == [
        (customer, "email", 1, web_id)]
    assert h.rows("SELECT connector, address FROM conversations") == [
        ("email", "ann@example.org")]
    await h.drained()
    assert any("Replies also go by email to ann@example.org (unverified" in t
               for t in thread_texts(h, thread))

    # The agent's reply goes by email (the email connector's reply path: Reply-To token)...
    assert await h.agent_says(thread, "Yes, from Monday. Shall I keep one?") == 200
    [sent] = await smtp.wait_for(1)
    assert sent.rcpt_tos == ["ann@example.org"]
    mail = sent.message
    body = mail.get_body(("plain",))
    assert body is not None and "Yes, from Monday. Shall I keep one?" in body.get_content()
    assert mail["Reply-To"].addresses[0].addr_spec.startswith("support+")
    reply_id = h.rows("SELECT id FROM messages WHERE direction = 'out'")[0][0]
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    await h.drained()  # the thread says which way it went, and that the address is unverified
    assert any("Sent via" in t and "ann@example.org" in t and "(unverified)" in t
               for t in thread_texts(h, thread))

    # ...and the page that comes back shows it (once, even after a second visit).
    for _ in range(2):
        frames = await page.missed(first)
        assert [(f["from"], f["id"], f["text"]) for f in frames] == [
            ("agent", reply_id, "Yes, from Monday. Shall I keep one?")]

    # Ann answers the mail: it lands in the same thread, on the same customer.
    await dovecot.append(customer_mail(
        "Ann <ann@example.org>", f"Re: {mail['Subject']}", "Yes please, size M.",
        message_id="ann-answer@example.org", In_Reply_To=mail["Message-ID"]))
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(2,)], 15)
    assert h.rows("SELECT COUNT(DISTINCT conversation_id), COUNT(DISTINCT c.customer_id)"
                  " FROM messages m JOIN conversations c ON c.id = m.conversation_id") == [
        (1, 1)]
    await h.drained()
    assert any("Yes please, size M." in t for t in thread_texts(h, thread))
    assert h.count("links") == 0 and h.count("customers") == 1

    # The next reply goes by email again, and shows in the widget too.
    assert await h.agent_says(thread, "Kept for you.") == 200
    second = (await smtp.wait_for(2))[1]
    assert second.rcpt_tos == ["ann@example.org"]
    assert second.message["In-Reply-To"] == "<ann-answer@example.org>"

    async def shown() -> list[str]:
        return [f["text"] for f in await page.missed(first)]
    await poll(shown, lambda t: t[-1:] == ["Kept for you."], "the second reply in the widget")


async def test_the_typed_address_is_never_evidence(
        h: Harness, smtp: SmtpReceiver) -> None:
    # Bob writes by email; a visitor types Bob's address: nothing links, replies stay here.
    await h.bridge.router.ingest([InboundMessage(
        connector="email", platform_message_id="<b1@example.org>", address="bob@example.org",
        sender_name="Bob", text="Hello", channel="email")])
    page = Page(h)
    await page.say("x1", "I am Bob, send it to me", email="bob@example.org")
    [(visitor,)] = h.rows("SELECT address FROM identities WHERE connector = 'webchat'")
    thread = await h.thread_at(str(visitor))
    await h.drained()
    assert any("an address another customer writes from: nothing was linked" in t
               for t in thread_texts(h, thread))
    assert h.rows("SELECT connector FROM conversations WHERE address = ?", (visitor,)) == [
        ("webchat",)]
    assert await h.agent_says(thread, "Only in the chat") == 200
    await h.drained()
    assert smtp.received == []
    assert [f["text"] for f in await page.missed(0) if f["from"] == "agent"] == [
        "Only in the chat"]

    # Carol's address, typed by an anonymous visitor, becomes that visitor's unverified
    # identity; a verified user with that email later is not joined to them because of it.
    carol = Page(h)
    await carol.say("y1", "Call me back", email="carol@example.org")
    verified = Page(h, f"&user_id=carol&user_hash={user_hash('carol', SECRET)}"
                       "&email=carol@example.org")
    await verified.say("z1", "Hello, verified Carol")
    await h.drained()
    assert h.count("links") == 0
    owners = h.rows("SELECT address, customer_id FROM identities ORDER BY id")
    by_address = {str(a): int(c) for a, c in owners}
    assert by_address["carol@example.org"] != by_address["shop:u-carol"]
    assert len(set(by_address.values())) == 4  # Bob, the visitor, anonymous and verified Carol


async def test_an_invitation_is_kept_on_the_conversation_it_opened(h: Harness) -> None:
    await Page(h).say("i1", "Yes, which size?", invitation="Questions about sizes?")
    again = Page(h)
    await again.say("i2", "Just browsing")
    await again.say("i3", "Well, one thing", invitation="Need a hand?")  # joins the open one
    assert h.rows("SELECT invitation FROM conversations ORDER BY id") == [
        ("Questions about sizes?",), (None,)]
    assert h.bridge.store is not None
    now = h.bridge.clock()
    report = await h.bridge.store.kpis(KpiQuery(start=now - 3600, end=now + 60, now=now))
    assert report.totals.invitations_converted == 1
    assert report.totals.conversations_opened == 2


async def test_without_the_email_connector_replies_stay_in_the_chat(
        make_harness: HarnessFactory) -> None:
    h = await make_harness({"connectors.webchat": {"enabled": True, "sites": [
        {"id": "shop", "allowed_origins": [ORIGIN], "identity_secret": SECRET}]}})
    page = Page(h)
    await page.say("o1", "Anyone there?", email="dan@example.org")
    [(visitor,)] = h.rows("SELECT address FROM identities")  # no email identity made
    assert h.rows("SELECT connector FROM conversations") == [("webchat",)]
    thread = await h.thread_at(str(visitor))
    assert await h.agent_says(thread, "Here now") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    assert [f["text"] for f in await page.missed(0) if f["from"] == "agent"] == ["Here now"]


async def test_a_verified_user_offline_gets_replies_on_their_own_email_identity(
        h: Harness, smtp: SmtpReceiver) -> None:
    # Ann wrote by email; her verified chat joined her (issue 26's continuity rule); offline,
    # she leaves that same address: replies use her email identity, nothing new is made.
    await h.bridge.router.ingest([InboundMessage(
        connector="email", platform_message_id="<a0@example.org>", address="ann@example.org",
        sender_name="Ann", text="Order 12?", channel="email")])
    ann = Page(h, f"&user_id=ann&user_hash={user_hash('ann', SECRET)}&email=ann@example.org"
                  f"&email_hash={user_hash('ann@example.org', SECRET)}")  # the site vouches
    await ann.say("v1", "Me again, on the site")
    await ann.say("v2", "Answer me by mail please", email="ann@example.org")
    [(email_id, unverified, shown_on)] = h.rows(
        "SELECT id, unverified, shown_on FROM identities WHERE connector = 'email'")
    [(web_id,)] = h.rows("SELECT id FROM identities WHERE connector = 'webchat'")
    assert (unverified, shown_on) == (0, web_id)
    assert len({c for (c,) in h.rows("SELECT customer_id FROM identities")}) == 1
    assert h.rows("SELECT method FROM links") == [("email",)]  # by the verified email only
    assert h.rows("SELECT identity_id FROM conversations WHERE merged_into IS NULL") == [
        (email_id,)]
    thread = await h.thread_at("shop:u-ann")
    assert await h.agent_says(thread, "Sent today") == 200
    [sent] = await smtp.wait_for(1)
    assert sent.rcpt_tos == ["ann@example.org"]
    assert [f["text"] for f in await ann.missed(0) if f["from"] == "agent"] == ["Sent today"]
