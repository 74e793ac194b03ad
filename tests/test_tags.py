"""`!tag <word>` / `!untag <word>` (issue 19, item 5): on the parent; `customer:<word>` sticks
to the customer and is what routing rules' `customer_tags` match."""

from __future__ import annotations

from tests.conftest import AGENT, CHANNEL, HarnessFactory
from tests.helpers_ownership import privately
from tests.test_teams import TEAMS, says
from tests.waiting import until

VIP = "C0VIPTEAM1"
WITH_VIP = {**TEAMS, "teams.vip": {"channel": VIP},
            "routing": {"rules": [{"team": "vip", "customer_tags": ["VIP"]},
                                  *TEAMS["routing"]["rules"]]},
            "conversations": {"reopen_within_hours": 0}}


async def test_tags_show_on_the_parent_and_route_the_customer(
        make_harness: HarnessFactory) -> None:
    h = await make_harness(WITH_VIP)
    assert await says(h, 31, "hello") == 200
    thread = await h.thread_of(31)

    async def agent(text: str) -> None:
        event = h.agent.message_event(channel=CHANNEL, user=AGENT, text=text, thread_ts=thread)
        assert (await h.agent.post(event))[0] == 200

    await agent("!tag Urgent")
    await agent("!tag customer:vip")
    await agent("!tag urgent")  # already there
    await agent("!untag nothing")
    await agent("!tag two words")  # not a tag
    assert h.rows("SELECT tags FROM conversations") == [("urgent",)]
    assert h.rows("SELECT tags FROM customers") == [("vip",)]
    await until(lambda: "`customer:vip`" in str(h.slack.parents(CHANNEL)[0]["blocks"]),
                "the tags on the parent")
    assert "`urgent`" in str(h.slack.parents(CHANNEL)[0]["blocks"])
    notes = privately(h, AGENT)
    assert any("already has the tag `urgent`" in n for n in notes)
    assert any("does not have the tag `nothing`" in n for n in notes)
    assert any("Usage: `!tag &lt;word&gt;`" in n for n in notes)
    await h.drained()
    assert h.telegram.calls_to("sendMessage") == []  # commands never reach the customer

    # The customer's next conversation goes to the vip team (a customer tag rule).
    await agent("!close")
    assert await says(h, 31, "my invoice again") == 200
    await h.drained()
    assert h.rows("SELECT slack_channel FROM conversations ORDER BY id") == [
        (CHANNEL,), (VIP,)]
    await agent("!untag urgent")
    assert h.rows("SELECT tags FROM conversations ORDER BY id") == [("",), ("",)]
