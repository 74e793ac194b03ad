"""The Messenger connector through the real app: Meta's signed webhooks in, rows and threads out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import pytest

from bridge.standins.messenger import (
    CDN,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    PAGE_INBOX_APP_ID,
    PROFILE,
    SEND,
    MessengerStandin,
    meta_json,
    meta_signature,
)
from tests.conftest import CHANNEL, Harness, HarnessFactory
from tests.helpers_messenger import (
    ANN,
    BOB,
    PAGE_A,
    PAGE_B,
    VERIFY_TOKEN,
    messenger_harness,
    sender,
    thread_of,
)

# SQLite only: the Messenger connector's protocol (signatures, parsing, echoes, attachments):
# nothing store-specific.
pytestmark = pytest.mark.backends("sqlite")

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
async def h(make_harness: HarnessFactory, meta: MessengerStandin) -> Harness:
    return await messenger_harness(make_harness, meta)


async def test_handshake_answers_the_challenge_only_for_our_token(h: Harness) -> None:
    s = sender(h)
    assert await s.handshake(VERIFY_TOKEN, "8675309") == (200, "8675309", "text/plain")
    assert (await s.handshake("wrong-token"))[0] == 403
    assert (await s.handshake(VERIFY_TOKEN, mode="unsubscribe"))[0] == 403
    async with h.session.get(f"{h.url}/webhooks/messenger") as resp:
        assert resp.status == 403


async def test_text_in_with_the_customers_name_and_escaped_unicode(
    h: Harness, meta: MessengerStandin,
) -> None:
    s = sender(h)
    event = s.message(PAGE_A, ANN, "Ma commande est arrivée abîmée 😞")
    raw = meta_json(s.body(s.entry(PAGE_A, event)))
    assert b"\\u00e9" in raw and "é".encode() not in raw  # escaped, as Meta sends it
    assert (await s.post(raw))[0] == 200
    assert h.rows("SELECT platform_message_id, text, author_name FROM messages") == [
        (event["message"]["mid"], "Ma commande est arrivée abîmée 😞", "Ann Kowalski")]
    assert (await s.post(raw))[0] == 200  # Meta's redelivery: stored once
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, "again")) == 200
    assert h.count("messages") == 2
    assert len(meta.calls_to(PROFILE)) == 1  # looked up once, then cached
    await thread_of(h, PAGE_A, ANN)
    assert "*Ann Kowalski* · Messenger" in h.slack.parents(CHANNEL)[0]["text"]


@pytest.mark.backends("sqlite", "postgres")  # SQL of the pipeline
async def test_one_body_with_several_pages_is_stored_whole_before_the_200(h: Harness) -> None:
    s = sender(h)
    body = s.body(s.entry(PAGE_A, s.message(PAGE_A, ANN, "one")),
                  s.entry(PAGE_B, s.message(PAGE_B, BOB, "two"), s.message(PAGE_B, BOB, "three")))
    assert (await s.post(body))[0] == 200
    assert h.rows("SELECT c.address, m.text, m.author_name FROM messages m JOIN conversations c"
                  " ON c.id = m.conversation_id ORDER BY m.id") == [
        (f"{PAGE_A}:{ANN}", "one", "Ann Kowalski"), (f"{PAGE_B}:{BOB}", "two", "Bob Héloïse"),
        (f"{PAGE_B}:{BOB}", "three", "Bob Héloïse")]


@pytest.mark.parametrize("case", ["unsigned", "wrong-secret", "tampered", "sha1", "sha1-header",
                                  "no-prefix", "sha1-prefix", "empty-digest"])
async def test_bad_signatures_get_401_and_store_nothing(h: Harness, case: str) -> None:
    s = sender(h)
    raw = meta_json(s.body(s.entry(PAGE_A, s.message(PAGE_A, ANN, "hi"))))
    if case == "unsigned":
        status, _ = await s.post(raw, sign=False)
    elif case == "wrong-secret":
        status, _ = await s.post(raw, app_secret="not-the-secret")
    elif case == "tampered":
        status, _ = await s.post(raw.replace(b"hi", b"ho"),
                                 signature=meta_signature(DEFAULT_APP_SECRET, raw))
    elif case == "sha1":
        status, _ = await s.post(raw, signature="sha1=" + "0" * 40)
    elif case == "sha1-header":  # Meta's older header alone is not enough
        digest = hmac.new(DEFAULT_APP_SECRET.encode(), raw, hashlib.sha1).hexdigest()
        async with h.session.post(f"{h.url}/webhooks/messenger", data=raw,
                                  headers={"X-Hub-Signature": f"sha1={digest}"}) as resp:
            status = resp.status
    else:
        good = meta_signature(DEFAULT_APP_SECRET, raw)
        status, _ = await s.post(raw, signature={
            "no-prefix": good[7:], "sha1-prefix": "sha1=" + good[7:],
            "empty-digest": "sha256="}[case])
    assert status == 401
    assert h.count("messages") == 0


async def test_the_signature_digest_may_come_in_upper_case(h: Harness) -> None:
    s = sender(h)
    raw = meta_json(s.body(s.entry(PAGE_A, s.message(PAGE_A, ANN, "hi"))))
    upper = "sha256=" + meta_signature(DEFAULT_APP_SECRET, raw)[7:].upper()
    assert (await s.post(raw, signature=upper))[0] == 200
    assert h.count("messages") == 1


async def test_malformed_is_400_and_other_objects_are_acknowledged(h: Harness) -> None:
    s = sender(h)
    assert (await s.post(b"{not json"))[0] == 400
    assert (await s.post({"object": "page", "entry": "nope"}))[0] == 400
    assert (await s.post(s.body(s.entry(PAGE_A, s.message(PAGE_A, ANN, "insta")),
                                object_="instagram")))[0] == 200
    too_big = b'{"object":"page","pad":"' + b"x" * 70_000 + b'"}'
    assert (await s.post(too_big))[0] == 413
    assert h.count("messages") == 0


async def test_our_echoes_are_ignored_and_page_inbox_replies_mirrored(h: Harness) -> None:
    s, later = sender(h), sender(h, clock=lambda: time.time() + 3600)
    first = s.message(PAGE_A, ANN, "hello")
    assert await s.send(PAGE_A, first) == 200
    thread = await thread_of(h, PAGE_A, ANN)
    ours = later.echo(PAGE_A, ANN, "Dana: hi", app_id=DEFAULT_APP_ID)
    inbox = later.echo(PAGE_A, ANN, "Sam here, refund done", app_id=PAGE_INBOX_APP_ID)
    assert await s.send(PAGE_A, ours, inbox) == 200
    assert h.rows("SELECT direction, text, author_name FROM messages ORDER BY id") == [
        ("in", "hello", "Ann Kowalski"),
        ("out", "Sam here, refund done", "Page Inbox (sent by staff outside the bridge)")]
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    _, reply = h.slack.thread(CHANNEL, thread)
    assert reply["text"] == "*Page Inbox (sent by staff outside the bridge)*: Sam here, refund done"
    # The echo is not the customer writing: their reply window did not move.
    assert h.rows("SELECT last_inbound_at FROM identities") == [(first["timestamp"] / 1000,)]


async def test_attachments_are_copied_into_the_thread(h: Harness, meta: MessengerStandin) -> None:
    s = sender(h)
    url = meta.add_attachment(PNG, "image/png", "label.png")
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, attachments=[("image", url)])) == 200
    await h.slack.wait_for("files.completeUploadExternal", 1)
    [uploaded] = [f for f in h.slack.files.values() if f.get("completed")]
    assert uploaded["content"] == PNG and len(meta.calls_to(CDN)) == 1


async def test_postbacks_referrals_and_standby_events_reach_the_thread(
    h: Harness, meta: MessengerStandin,
) -> None:
    s = sender(h)
    events = [s.referral(PAGE_A, ANN, "handoff-42"),
              s.postback(PAGE_A, ANN, "Talk to a human", "HUMAN")]
    assert await s.send(PAGE_A, *events) == 200
    standby = s.body(s.entry(PAGE_A, s.message(PAGE_A, ANN, "anyone?"), standby=True))
    assert (await s.post(standby))[0] == 200
    assert h.rows("SELECT text, platform_ref FROM messages ORDER BY id") == [
        ("[opened the conversation from shortlink, ref: handoff-42]", "ref:handoff-42"),
        ("[button] Talk to a human (payload: HUMAN)", None),
        ("anyone?", standby["entry"][0]["standby"][0]["message"]["mid"])]
    assert not meta.calls_to(SEND)


async def test_a_slow_or_failing_name_lookup_never_holds_the_message(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    h = await messenger_harness(make_harness, meta, profile_timeout=0.3)
    s = sender(h)
    meta.delay_next(PROFILE, 3.0)
    started = time.monotonic()
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, "slow graph")) == 200
    assert time.monotonic() - started < 2.0
    assert await s.send(PAGE_B, s.message(PAGE_B, "7000000000004242", "unknown")) == 200
    assert h.rows("SELECT author_name FROM messages ORDER BY id") == [
        ("Messenger user …0123",), ("Messenger user …4242",)]


async def test_a_page_inbox_reply_to_a_closed_conversation_does_not_reopen_it(
    h: Harness,
) -> None:
    s = sender(h)
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, "thanks, solved")) == 200
    thread = await thread_of(h, PAGE_A, ANN)
    assert await h.agent_says(thread, "!close") == 200
    await h.wait_rows("SELECT status FROM conversations", [("closed",)])
    inbox = s.echo(PAGE_A, ANN, "You're welcome!", app_id=PAGE_INBOX_APP_ID)
    assert await s.send(PAGE_A, inbox) == 200
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    assert h.rows("SELECT text FROM messages WHERE direction = 'out'") == [("You're welcome!",)]


async def test_without_app_id_our_echoes_are_known_by_their_mid_and_teach_our_app_id(
    make_harness: HarnessFactory, meta: MessengerStandin,
) -> None:
    h = await messenger_harness(make_harness, meta, app_id="")  # the config has none
    s = sender(h)
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, "hello")) == 200
    thread = await thread_of(h, PAGE_A, ANN)
    assert await h.agent_says(thread, "Hi Ann") == 200
    [call] = await meta.wait_for(SEND, 1)
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    mid = meta.sent[0]["mid"]
    # Echoes as a stand-in may send them: our app's id, no metadata.
    ours = s.echo(PAGE_A, ANN, call.params["message"]["text"], app_id=DEFAULT_APP_ID, mid=mid)
    assert await s.send(PAGE_A, ours) == 200
    # Once seen, the app id alone is enough (an echo that beats the Send API's answer).
    early = s.echo(PAGE_A, ANN, "Dana: racing", app_id=DEFAULT_APP_ID)
    inbox = s.echo(PAGE_A, ANN, "Sam here", app_id=PAGE_INBOX_APP_ID)
    assert await s.send(PAGE_A, early, inbox) == 200
    assert h.rows("SELECT direction, text, author_name FROM messages WHERE platform_message_id"
                  " IS NOT NULL ORDER BY id") == [
        ("in", "hello", "Ann Kowalski"),
        ("out", "Sam here", "Page Inbox (sent by staff outside the bridge)")]


async def test_an_expired_attachment_link_is_explained_in_the_thread(
    h: Harness, meta: MessengerStandin,
) -> None:
    s = sender(h)
    gone = f"{meta.base_url}/cdn/{'0' * 32}/photo.jpg?oe=expired"  # Meta's CDN: 404 or 403
    assert await s.send(PAGE_A, s.message(PAGE_A, ANN, "see photo",
                                          attachments=[("image", gone)])) == 200
    thread = await thread_of(h, PAGE_A, ANN)
    await h.wait_rows("SELECT status FROM outbox WHERE kind = 'slack_file'", [("failed",)])
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    notice = h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert "could not be copied here" in notice and "ask the customer to send it again" in notice
    assert len(meta.calls_to(CDN, ok_only=False)) == 1  # not retried: the link is gone


async def test_a_new_customers_name_is_looked_up_once_when_two_webhooks_come_at_once(
    h: Harness, meta: MessengerStandin,
) -> None:
    s = sender(h)
    meta.delay_next(PROFILE, 0.3)
    first, second = await asyncio.gather(s.send(PAGE_A, s.message(PAGE_A, ANN, "one")),
                                         s.send(PAGE_A, s.message(PAGE_A, ANN, "two")))
    assert (first, second) == (200, 200)
    assert len(meta.calls_to(PROFILE)) == 1
    assert h.rows("SELECT DISTINCT author_name FROM messages") == [("Ann Kowalski",)]
