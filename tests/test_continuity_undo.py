"""Replies after links and undos: a reply sent `!via` another channel is edited and deleted
there, and an undo gives each thread back its own customer's channel."""

from __future__ import annotations

from bridge.standins.twilio import CREATE, TwilioStandin
from tests.conftest import AGENT, CHANNEL, Harness
from tests.helpers_continuity import (
    click_link,
    command,
    customers_of,
    link_button,
    open_conversations,
    thread_texts,
)
from tests.helpers_twilio import CUSTOMER, customer
from tests.test_continuity_handoff import contact_update


async def linked_telegram_and_sms(h: Harness, chat_id: int) -> str:
    """A Telegram customer and an SMS customer an agent linked; they wrote on SMS last."""
    assert await h.customer_says(chat_id, "hi on telegram", first_name="Ann") == 200
    tg = await h.thread_of(chat_id)
    await customer(h, "hi on sms", address=CUSTOMER)
    await command(h, tg, "!link +14155550100")
    await h.slack.wait_for("chat.postEphemeral", 1)
    assert await click_link(h, link_button(h)) == 200
    await h.wait_rows("SELECT COUNT(*) FROM links", [(1,)])
    return tg


async def test_a_reply_sent_via_another_channel_is_deleted_there(
    hc: Harness, twilio: TwilioStandin,
) -> None:
    tg = await linked_telegram_and_sms(hc, 611)
    event = hc.agent.message_event(channel=CHANNEL, user=AGENT, text="!via telegram Oops",
                                   thread_ts=tg)
    assert (await hc.agent.post(event))[0] == 200
    await hc.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    [(sent_id,)] = hc.rows("SELECT sent_platform_id FROM messages WHERE direction = 'out'")

    gone = hc.agent.deleted_event(channel=CHANNEL, user=AGENT, ts=event["event"]["ts"],
                                  thread_ts=tg, old_text="!via telegram Oops")
    assert (await hc.agent.post(gone))[0] == 200
    [deleted] = await hc.telegram.wait_for("deleteMessage", 1)
    assert (str(deleted.params["chat_id"]), str(deleted.params["message_id"])) == ("611", sent_id)
    await hc.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("deleted",)])
    assert twilio.sent == []


async def test_unlink_gives_each_thread_its_own_customers_channel(
    hc: Harness, twilio: TwilioStandin,
) -> None:
    # SMS first, then Telegram; the customer shares their number on Telegram: the SMS
    # conversation joins the Telegram thread (where they acted).
    sms = await customer(hc, "Order 55?", address=CUSTOMER)
    assert await hc.customer_says(921, "hi from telegram", first_name="Ann") == 200
    tg = await hc.thread_of(921)
    own = contact_update(hc, 921, CUSTOMER.lstrip("+"), 921)
    assert (await hc.telegram.deliver(own, hc.session))[0] == 200
    await hc.wait_rows("SELECT method FROM links", [("phone",)])
    assert open_conversations(hc) == [tg]
    # The SMS customer's next message joins the Telegram thread.
    assert await customer(hc, "Any news? (by SMS)", address=CUSTOMER) == tg
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(4,)])

    # The agent separates them: the Telegram thread is Telegram's again, the SMS one SMS's.
    await command(hc, tg, "!unlink")
    await hc.wait_rows("SELECT undone_by FROM links", [("<@U0AGENT1>",)])
    assert len(set(customers_of(hc).values())) == 2
    assert sorted(open_conversations(hc)) == sorted([sms, tg])
    await command(hc, tg, "For Telegram")
    await command(hc, sms, "For SMS")
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND"
                       " state = 'sent'", [(2,)])
    assert [m["text"] for m in hc.telegram.sent] == ["<b>Dana</b>\nFor Telegram"]
    assert [c.params["To"] for c in twilio.calls_to(CREATE)] == [CUSTOMER]
    assert "For SMS" in twilio.sent[0]["body"]
    await hc.drained()
    # Each thread says where its replies go now.
    [back] = [t for t in thread_texts(hc, sms) if "on its own again" in t]
    assert CUSTOMER in back and "Telegram" not in back


async def test_a_reply_in_a_joined_thread_goes_where_the_customer_writes_now(
    hc: Harness, twilio: TwilioStandin,
) -> None:
    tg = await linked_telegram_and_sms(hc, 631)  # the SMS conversation joined the Telegram one
    [(sms,)] = hc.rows("SELECT slack_thread_ts FROM conversations WHERE merged_into IS NOT NULL")
    assert await hc.customer_says(631, "back on telegram", first_name="Ann") == 200
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(3,)])
    await command(hc, str(sms), "Answered from the old SMS thread")
    await hc.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    assert [m["text"] for m in hc.telegram.sent] == [
        "<b>Dana</b>\nAnswered from the old SMS thread"]
    assert twilio.sent == []
    assert tg != sms


async def test_a_redelivered_unlink_undoes_one_link_only(hc: Harness) -> None:
    tg = await linked_telegram_and_sms(hc, 631)
    await customer(hc, "another sms customer", address="+14155550111")
    await command(hc, tg, "!link +14155550111")
    await hc.slack.wait_for("chat.postEphemeral", 2)
    assert await click_link(hc, link_button(hc)) == 200
    await hc.wait_rows("SELECT COUNT(*) FROM links", [(2,)])
    # Slack delivers the same command event twice (a slow acknowledgement, a reconnect).
    event = hc.agent.message_event(channel=CHANNEL, user=AGENT, text="!unlink", thread_ts=tg)
    assert (await hc.agent.post(event))[0] == 200
    assert (await hc.agent.post(event))[0] == 200
    await hc.drained()
    assert hc.rows("SELECT id, undone_at IS NULL FROM links ORDER BY id") == [(1, True),
                                                                             (2, False)]
    assert len(set(customers_of(hc).values())) == 2
