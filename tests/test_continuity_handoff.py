"""Customers joining themselves: handoff codes (single-use, expiring, unforgeable), the same
phone number on SMS and WhatsApp, and a Telegram contact shared by its owner."""

from __future__ import annotations

from typing import Any

from bridge.standins.clock import OffsetClock
from bridge.standins.messenger import SEND, MessengerStandin, MessengerWebhookSender
from bridge.standins.twilio import CREATE, TwilioStandin
from tests.conftest import AGENT, CHANNEL, Harness
from tests.helpers_continuity import (
    code_in,
    command,
    customers_of,
    open_conversations,
    thread_texts,
)
from tests.helpers_messenger import ANN, PAGE_A
from tests.helpers_messenger import sender as messenger
from tests.helpers_messenger import thread_of as messenger_thread
from tests.helpers_twilio import CUSTOMER, HOUR, WA, customer
from vocab.continuity import new_code


async def test_sms_and_whatsapp_from_one_number_join_and_an_undo_sticks(
    hc: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(hc, "Hi by SMS", address=CUSTOMER)
    await customer(hc, "and now on WhatsApp", address=WA)
    await hc.wait_rows("SELECT method, evidence, actor FROM links",
                       [("phone", CUSTOMER, "bridge")])
    assert len(set(customers_of(hc).values())) == 1
    assert open_conversations(hc) == [thread]  # one thread
    await hc.drained()
    assert any("Linked automatically" in t for t in thread_texts(hc, thread))
    await command(hc, thread, "Thanks")
    [call] = await twilio.wait_for(CREATE, 1)
    assert call.params["To"] == WA  # where they wrote last
    await command(hc, thread, "!close")  # the parent is redrawn: still where it started
    await hc.slack.wait_for("chat.update", 1)
    assert "· SMS\n" in hc.slack.parents(CHANNEL)[0]["text"]
    await command(hc, thread, "!reopen")
    await hc.slack.wait_for("chat.update", 2)

    # `!who` shows the agent how they were joined...
    await command(hc, thread, "!who")
    await hc.slack.wait_for("chat.postEphemeral", 1)
    who = hc.slack.ephemerals[-1]["text"]
    assert "SMS +14155550100" in who and "WhatsApp +14155550100" in who
    assert f"link 1: same phone number ({CUSTOMER}), by bridge" in who and "!unlink 1" in who

    # ...and one who knows better separates them; the number never joins them again.
    await command(hc, thread, "!unlink")
    await hc.wait_rows("SELECT undone_by FROM links", [("<@U0AGENT1>",)])
    await command(hc, thread, "!who")
    await hc.slack.wait_for("chat.postEphemeral", 2)
    assert "undone by <@U0AGENT1>" in hc.slack.ephemerals[-1]["text"]
    await customer(hc, "WhatsApp again", address=WA)
    await customer(hc, "SMS again", address=CUSTOMER)
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(4,)])
    assert len(set(customers_of(hc).values())) == 2
    assert hc.count("links") == 1


def contact_update(h: Harness, chat_id: int, phone: str, user_id: int | None,
                   forwarded: bool = False) -> dict[str, Any]:
    update = h.telegram.text_update(chat_id=chat_id, text="", first_name="Ann")
    message = update["message"]
    del message["text"]
    message["contact"] = {"phone_number": phone, "first_name": "Ann",
                          **({"user_id": user_id} if user_id is not None else {})}
    if forwarded:
        message["forward_origin"] = {"type": "hidden_user", "sender_user_name": "Someone",
                                     "date": message["date"]}
    return update


async def test_a_telegram_contact_joins_only_when_its_owner_shares_it(hc: Harness) -> None:
    sms = await customer(hc, "Order 55?", address=CUSTOMER)
    assert await hc.customer_says(901, "hi from telegram") == 200
    tg = await hc.thread_of(901)
    # Someone else's contact card, and a forwarded card of the customer's own: no proof.
    for update in (contact_update(hc, 901, CUSTOMER.lstrip("+"), 12345),
                   contact_update(hc, 901, CUSTOMER, None, forwarded=True)):
        assert (await hc.telegram.deliver(update, hc.session))[0] == 200
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(4,)])
    assert hc.count("links") == 0 and len(set(customers_of(hc).values())) == 2

    # The share-my-number button: the contact's user_id is the sender's own id.
    own = contact_update(hc, 901, CUSTOMER.lstrip("+"), 901)
    assert (await hc.telegram.deliver(own, hc.session))[0] == 200
    await hc.wait_rows("SELECT method, evidence FROM links", [("phone", CUSTOMER)])
    assert len(set(customers_of(hc).values())) == 1
    # Both had an open conversation: one joined the other, history and all.
    assert len(open_conversations(hc)) == 1 and open_conversations(hc)[0] in (sms, tg)


async def handed_off(h: Harness, meta: MessengerStandin, fb: MessengerWebhookSender,
                     channel: str) -> tuple[str, str]:
    """A Messenger customer whose agent sent `!handoff <channel>`: their thread and code."""
    assert await fb.send(PAGE_A, fb.message(PAGE_A, ANN, "Hello from Messenger")) == 200
    thread = await messenger_thread(h, PAGE_A, ANN)
    await command(h, thread, f"!handoff {channel}")
    await meta.wait_for(SEND, 1)
    return thread, code_in(meta.texts())


async def test_expired_reused_and_forged_codes_link_nothing(
    hc: Harness, meta: MessengerStandin, clock: OffsetClock, twilio: TwilioStandin,
) -> None:
    fb = messenger(hc, clock)
    thread, expiring = await handed_off(hc, meta, fb, "whatsapp")
    assert "wa.me/" in meta.texts()[-1]
    assert hc.rows("SELECT COUNT(*) FROM handoff_codes WHERE code_hash = ?",
                   (expiring,)) == [(0,)]  # only its hash is kept

    clock.offset += 25 * HOUR  # past the default 24 hours
    await customer(hc, expiring, address=WA)
    forged = new_code()  # well-formed, never issued
    await customer(hc, f"my code is {forged}", address="+14155550111")
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(3,)])
    assert hc.count("links") == 0
    assert len(set(customers_of(hc).values())) == 3
    await hc.drained()
    texts = [t for m in hc.slack.messages for t in [str(m["text"])]]
    assert any("has expired" in t for t in texts)
    assert any("never issued" in t for t in texts)

    # A fresh code works once; the second person to use it joins nobody.  (The customer
    # writes first: a day later Messenger's window had closed for the code itself.)
    assert await fb.send(PAGE_A, fb.message(PAGE_A, ANN, "Still here")) == 200
    await command(hc, thread, "!handoff sms")
    await meta.wait_for(SEND, 2)
    fresh = code_in(meta.texts())
    # The customer pasting it back where it came from proves nothing and uses nothing up.
    assert await fb.send(PAGE_A, fb.message(PAGE_A, ANN, f"this one? {fresh}")) == 200
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(5,)])
    await customer(hc, fresh, address="whatsapp:+14155550122")  # an SMS code, on WhatsApp
    await hc.wait_rows("SELECT method, evidence FROM links",
                       [("handoff", "sms code, used on WhatsApp")])
    await customer(hc, fresh, address="+14155550133")
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(7,)])
    await hc.drained()
    assert hc.count("links") == 1
    people = customers_of(hc)
    assert people["whatsapp:+14155550122"] == people[f"{PAGE_A}:{ANN}"]
    assert people["+14155550133"] != people[f"{PAGE_A}:{ANN}"]
    assert any("already used" in str(m["text"]) for m in hc.slack.messages)


async def test_a_telegram_edit_carrying_a_code_links_nothing(
    hc: Harness, meta: MessengerStandin, clock: OffsetClock,
) -> None:
    _, code = await handed_off(hc, meta, messenger(hc, clock), "telegram")
    assert await hc.customer_says(777, "hello", message_id=50) == 200
    await hc.thread_of(777)
    # "An edit never counts": neither a /start typed into an edit nor the bare code.
    for text in (f"/start {code}", code):
        edit = hc.telegram.edited_update(chat_id=777, message_id=50, text=text)
        assert (await hc.telegram.deliver(edit, hc.session))[0] == 200
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(4,)])
    assert hc.count("links") == 0
    assert hc.rows("SELECT used_at FROM handoff_codes") == [(None,)]
    assert len(set(customers_of(hc).values())) == 2
    # The code is still good for the deep link itself.
    assert await hc.customer_says(777, f"/start {code}") == 200
    await hc.wait_rows("SELECT method, evidence FROM links", [("handoff", "telegram")])


async def test_a_handoff_slack_could_not_check_is_not_acknowledged(hc: Harness) -> None:
    """Who asked is looked up (users.info) before the command runs: when Slack fails that
    lookup, the event is refused so Slack delivers it again, never acknowledged and dropped."""
    assert await hc.customer_says(901, "hi") == 200
    thread = await hc.thread_of(901)
    hc.slack.fail_next("users.info", status=500)
    event = hc.agent.message_event(channel=CHANNEL, user=AGENT, text="!handoff sms",
                                   thread_ts=thread)
    status, _ = await hc.agent.post(event)
    assert status != 200
    assert hc.count("handoff_codes") == 0
    assert (await hc.agent.post(event))[0] == 200  # Slack's retry of the same event
    await hc.wait_rows("SELECT channel FROM handoff_codes", [("sms",)])
    await hc.telegram.wait_for("sendMessage", 1)
    await hc.drained()
    assert len(hc.telegram.sent) == 1 and "LINK-" in str(hc.telegram.sent[0]["text"])


async def test_a_customer_name_in_a_notice_cannot_ping_the_channel(
    hc: Harness, meta: MessengerStandin, clock: OffsetClock,
) -> None:
    thread, code = await handed_off(hc, meta, messenger(hc, clock), "telegram")
    assert await hc.customer_says(778, f"/start {code}", first_name="<!channel>") == 200
    await hc.wait_rows("SELECT method FROM links", [("handoff",)])
    await hc.drained()
    texts = thread_texts(hc, thread)
    assert any("&lt;!channel&gt; continued on Telegram" in t for t in texts)
    assert not any("<!channel>" in t for t in texts)
