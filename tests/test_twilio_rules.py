"""Twilio's WhatsApp rules through the real app: the 24-hour window on both sides of the
boundary (a movable clock), templates by command and by button, and error 63016."""

from __future__ import annotations

import json

import pytest

from bridge.console.render import TEMPLATE_ACTION
from bridge.standins.clock import OffsetClock
from bridge.standins.twilio import CREATE, TwilioStandin
from tests.conftest import AGENT, CHANNEL, Harness
from tests.helpers_twilio import (
    CANCEL,
    CUSTOMER,
    FOLLOW_UP,
    HOUR,
    WA,
    WA_FROM,
    buttons,
    customer,
    last_notice,
    out_states,
    sender,
)

# SQLite only: WhatsApp's window and templates, decided in the connector and the console: nothing
# store-specific.
pytestmark = pytest.mark.backends("sqlite")


@pytest.mark.parametrize("hours, sent", [(23.98, True), (24.02, False)])
async def test_whatsapp_window_on_both_sides_of_24_hours(
    h: Harness, twilio: TwilioStandin, clock: OffsetClock, hours: float, sent: bool,
) -> None:
    thread = await customer(h, "Is my order shipped?")
    clock.offset = hours * HOUR
    assert await h.agent_says(thread, "Yes, yesterday") == 200
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND state <> "
                      "'queued'", [(1,)])
    await h.drained()
    assert len(twilio.sent) == (1 if sent else 0)  # outside: nothing attempted at all
    assert out_states(h) == ["sent" if sent else "blocked"]
    if not sent:
        notice = await last_notice(h, thread, 2)
        assert "24-hour window" in notice["text"] and "template" in notice["text"]
        assert [b["value"] for b in buttons(notice)] == ["follow_up", "cancel"]


async def test_sms_has_no_window(h: Harness, twilio: TwilioStandin, clock: OffsetClock) -> None:
    thread = await customer(h, "hello", address=CUSTOMER)
    clock.offset = 30 * 24 * HOUR
    assert await h.agent_says(thread, "Still here") == 200
    await twilio.wait_for(CREATE, 1)
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])


async def test_templates_go_out_by_command_and_by_button(
    h: Harness, twilio: TwilioStandin, clock: OffsetClock,
) -> None:
    thread = await customer(h, "Anything new?")
    clock.offset = 30 * HOUR
    assert await h.agent_says(thread, "Your parcel arrived") == 200
    notice = await last_notice(h, thread, 2)

    assert await h.agent_says(thread, '!template follow_up 2="order 123"') == 200
    [call] = await twilio.wait_for(CREATE, 1)
    assert call.params["To"] == WA and call.params["From"] == WA_FROM
    assert call.params["ContentSid"] == FOLLOW_UP and "Body" not in call.params
    assert json.loads(call.params["ContentVariables"]) == {"1": "there", "2": "order 123"}

    [cancel] = [b for b in buttons(notice) if b["value"] == "cancel"]
    assert cancel["action_id"] == f"{TEMPLATE_ACTION}:cancel"
    payload = h.agent.block_action(channel=CHANNEL, user=AGENT, message=notice,
                                   action_id=cancel["action_id"], value="cancel")
    for _ in range(2):  # a second click on the same notice sends nothing more
        assert (await h.agent.post_interaction(payload))[0] == 200
    calls = await twilio.wait_for(CREATE, 2)
    await h.drained()
    assert len(twilio.sent) == 2 and calls[1].params["ContentSid"] == CANCEL
    assert out_states(h) == ["blocked", "sent", "sent"]


async def test_unknown_template_and_bad_usage_send_nothing(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "hi")
    assert await h.agent_says(thread, "!template") == 200  # usage, ephemeral
    assert await h.agent_says(thread, "!template nope") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("failed",)])
    await h.drained()
    assert twilio.sent == []
    assert "no template named 'nope'" in h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert await h.slack.wait_for("chat.postEphemeral", 1)


async def test_error_63016_when_twilio_disagrees_with_the_clock(
    h: Harness, twilio: TwilioStandin,
) -> None:
    thread = await customer(h, "hi")
    twilio.fail_with_code(63016)
    assert await h.agent_says(thread, "An answer") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("blocked",)])
    notice = await last_notice(h, thread, 2)
    assert "63016" in notice["text"] and len(buttons(notice)) == 2

    # ...and when it only says so in the status callback
    assert await h.agent_says(thread, "Another") == 200
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out' ORDER BY id",
                      [("blocked",), ("sent",)])
    s = sender(h)
    form = s.status(message_sid=str(twilio.sent[-1]["sid"]), status="failed", to=WA,
                    error_code=63016)
    assert (await s.post(form, path="/status"))[0] == 200
    notice = await last_notice(h, thread, 3)
    assert "24-hour window" in notice["text"] and len(buttons(notice)) == 2
