"""Two bridge instances on one PostgreSQL database (issue 19): transfers made on both at once,
while the customer and agents keep writing through either, lose nothing and send nothing
twice; each conversation moves once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_ownership import OTHER, add_other
from tests.helpers_pg import PG_URL, fresh_schema
from tests.test_teams import BILLING, TEAMS, says

pytestmark = pytest.mark.backends("postgres")
CHATS = (6101, 6102, 6103, 6104)
WRITER = "U0AGENT3"  # replies while the others transfer


@pytest.fixture
async def pair(make_harness: HarnessFactory) -> AsyncIterator[tuple[Harness, Harness]]:
    async with fresh_schema() as schema:
        config = {**TEAMS, "storage": {"url": PG_URL, "schema": schema}}
        first = await make_harness(config)
        second = await make_harness(config)
        add_other(first)
        first.slack.add_user(WRITER, display_name="Kim", real_name="Kim Park")
        yield first, second
        await first.bridge.stop()
        await second.bridge.stop()


async def reply(h: Harness, channel: str, thread: str, text: str, user: str = AGENT) -> int:
    event = h.agent.message_event(channel=channel, user=user, text=text, thread_ts=thread)
    return (await h.agent.post(event))[0]


async def test_transfers_on_two_instances_lose_nothing_and_send_nothing_twice(
        pair: tuple[Harness, Harness]) -> None:
    first, second = pair
    olds = {}
    for chat in CHATS:
        assert await says(first, chat, f"hello {chat}") == 200
        olds[chat] = await first.thread_of(chat)
    for chat in CHATS:
        old = olds[chat]
        # Two agents transfer at once, through different instances, while the customer writes
        # to one and an agent replies through the other.
        done = await asyncio.gather(
            reply(first, CHANNEL, old, "!transfer billing"),
            reply(second, CHANNEL, old, "!transfer billing", user=OTHER),
            says(second, chat, f"during {chat}"),
            reply(second, CHANNEL, old, f"agent before {chat}", user=WRITER))
        assert list(done) == [200, 200, 200, 200]
    for chat in CHATS:
        new = await first.thread_of(chat)
        assert new != olds[chat]
        assert await reply(second, BILLING, new, f"agent after {chat}") == 200
        assert await says(first, chat, f"after {chat}") == 200
    await first.drained(timeout=20)
    await second.drained(timeout=20)

    assert first.rows("SELECT COUNT(*) FROM moved_threads") == [(len(CHATS),)]
    # What came after the move is in the new thread, whichever instance posted it.
    for chat in CHATS:
        new = await first.thread_of(chat)
        assert any(f"after {chat}" in str(m["text"]) for m in first.slack.thread(BILLING, new))
        assert not any(f"after {chat}" in str(m["text"])
                       for m in first.slack.thread(CHANNEL, olds[chat]))
    assert first.rows("SELECT DISTINCT slack_channel FROM conversations") == [(BILLING,)]
    # Every customer message is in Slack once, in one of its conversation's threads.
    posted = Counter(str(m["text"]) for m in first.slack.messages)
    for chat in CHATS:
        for said in (f"hello {chat}", f"during {chat}", f"after {chat}"):
            assert sum(n for text, n in posted.items() if said in text
                       and "Transferred" not in text and not text.startswith("[")) >= 1, said
        assert len(first.slack.parents(BILLING)) == len(CHATS)
    # Each agent reply the bridge took reached the customer once; one written in the old
    # thread after the move was not sent (its author was told).
    sent = Counter(str(c.params.get("text")) for c in first.telegram.calls_to("sendMessage"))
    assert all(n == 1 for n in sent.values()), sent
    unsent = [chat for chat in CHATS if not any(f"agent before {chat}" in t for t in sent)]
    told = [e for e in first.slack.ephemerals
            if e["user"] == WRITER and "was transferred" in str(e["text"])]
    assert len(told) == len(unsent), (told, unsent)
    for chat in CHATS:
        assert any(f"agent after {chat}" in text for text in sent)
    rows = first.rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'")
    assert rows == [(3 * len(CHATS),)]
