"""One person across channels (issue 26): a web chat user verified by the site's `user_hash`
with an email address joins the customer who wrote from that address (an email identity, or
another site's verified user); an unverified email never links anyone."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import Harness, HarnessFactory
from tests.helpers_webchat import user_hash
from tests.waiting import poll
from vocab.models import InboundMessage

ORIGIN = "https://shop.example"
SECRET = "s3cret-for-hmac"


async def bridge(make_harness: HarnessFactory) -> Harness:
    site: dict[str, Any] = {"allowed_origins": [ORIGIN], "identity_secret": SECRET}
    return await make_harness({"connectors.webchat": {"enabled": True, "sites": [
        {"id": "shop", **site}, {"id": "help", **site}]}})


async def chat(h: Harness, site: str, query: str, text: str) -> None:
    ws: aiohttp.ClientWebSocketResponse = await h.session.ws_connect(
        f"ws://127.0.0.1:{h.port}/webchat/ws?site={site}{query}", headers={"Origin": ORIGIN})
    assert (await ws.receive_json(timeout=5))["type"] == "welcome"
    await ws.send_json({"type": "message", "client_id": f"c{abs(hash(text))}", "text": text})
    assert (await ws.receive_json(timeout=5))["type"] == "ack"
    await ws.close()


def customers(h: Harness) -> dict[str, int]:
    return {str(a): int(c) for a, c in h.rows("SELECT address, customer_id FROM identities")}


async def test_a_verified_email_joins_the_same_person(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    mail = InboundMessage(connector="email", platform_message_id="<m1@example.com>",
                          address="ann@example.com", sender_name="Ann", text="Invoice?",
                          channel="email")
    await h.bridge.router.ingest([mail])  # Ann wrote by email earlier
    email_hash = user_hash("ann@example.com", SECRET)  # the site vouches for the address
    await chat(h, "shop", f"&user_id=ann-1&user_hash={user_hash('ann-1', SECRET)}"
                          f"&email=Ann@Example.com&email_hash={email_hash}&name=Ann",
               "Hi, Ann again")
    await chat(h, "help", f"&user_id=a1&user_hash={user_hash('a1', SECRET)}"
                          f"&email=ann@example.com&email_hash={email_hash}",
               "And on the help site")

    async def joined() -> dict[str, int]:
        return customers(h)
    got = await poll(joined, lambda c: len(set(c.values())) == 1 and len(c) == 3,
                     "the email and both verified chats as one customer")
    assert set(got) == {"ann@example.com", "shop:u-ann-1", "help:u-a1"}
    methods = [r[0] for r in h.rows("SELECT method FROM links ORDER BY id")]
    assert methods == ["email", "email"]


async def test_an_unverified_email_links_nobody(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    mail = InboundMessage(connector="email", platform_message_id="<m2@example.com>",
                          address="bob@example.com", sender_name="Bob", text="Hello",
                          channel="email")
    await h.bridge.router.ingest([mail])
    await chat(h, "shop", "&email=bob@example.com&name=Bob", "I am Bob, trust me")
    await chat(h, "shop", f"&user_id=bob&user_hash={'0' * 64}&email=bob@example.com",
               "Forged Bob")
    await h.drained()
    assert len(set(customers(h).values())) == 3
    assert h.count("links") == 0


async def test_a_verified_user_cannot_claim_another_persons_email(
        make_harness: HarnessFactory) -> None:
    """The `user_hash` vouches for the user id only: a signed-in user who sets someone else's
    email in `identify` (no `email_hash`, a forged one, or the hash of another address) is
    still one customer, and the thread shows the address as unverified."""
    h = await bridge(make_harness)
    mail = InboundMessage(connector="email", platform_message_id="<m3@example.com>",
                          address="carol@example.com", sender_name="Carol", text="My order",
                          channel="email")
    await h.bridge.router.ingest([mail])
    me = f"&user_id=mallory&user_hash={user_hash('mallory', SECRET)}"
    await chat(h, "shop", f"{me}&email=carol@example.com", "I am Carol")
    await chat(h, "help", f"{me}&email=carol@example.com&email_hash={'0' * 64}", "Really")
    await chat(h, "shop", f"{me}&email=Carol@example.com&email_hash="
                          f"{user_hash('mallory@example.com', SECRET)}", "Honest")
    await h.drained()
    assert len(set(customers(h).values())) == 3  # Carol's email, shop:u-mallory, help:u-mallory
    assert h.count("links") == 0
    assert h.count("identity_claims") == 0
    markup = [str(r[0]) for r in h.rows("SELECT markup FROM messages WHERE markup IS NOT NULL")]
    assert markup and all("carol@example.com (unverified)" in m.lower() for m in markup), markup
