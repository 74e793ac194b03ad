"""Replies after links and undos: a reply sent `!via` another channel is edited and deleted
there, and an undo gives each thread back its own customer's channel."""

from __future__ import annotations

from bridge.standins.twilio import TwilioStandin
from tests.conftest import AGENT, CHANNEL, Harness
from tests.helpers_continuity import (
    click_link,
    command,
    link_button,
)
from tests.helpers_twilio import CUSTOMER, customer


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
