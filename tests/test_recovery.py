"""A send whose outcome a crash left unknown: Slack posts carry their outbox id in message
metadata, the Slack stand-in returns it as Slack does (conversations.history/replies with
include_all_metadata, paginated), and the worker adopts a post it finds instead of posting
again.  The crash tests (tests/test_crash.py, tests/test_multi_instance.py) run it end to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import aiohttp
import pytest

from bridge.console import slack as console_module
from bridge.console.slack import OUTBOX_EVENT, SlackConsole
from bridge.outbox import OutboxWorker
from bridge.settings import OutboxSettings, SlackSettings
from bridge.standins import SlackStandin
from connectors.base import SendError
from storage.base import OutboxResult, Outcome, Store
from tests.conftest import CHANNEL
from tests.helpers_lanes import Clock, row
from vocab.models import OutboxId, OutboxItem


@pytest.fixture
async def console(slack: SlackStandin) -> AsyncIterator[SlackConsole]:
    async with aiohttp.ClientSession() as session:
        settings = SlackSettings(bot_token=slack.bot_token or "", support_channel=CHANNEL,
                                 api_base_url=slack.base_url)
        yield SlackConsole(settings, session)


async def test_a_post_carries_its_outbox_id_where_only_the_api_sees_it(
    console: SlackConsole, slack: SlackStandin,
) -> None:
    ts = await console.post("hello", None, outbox_id=7)
    assert slack.messages[-1]["text"] == "hello"  # nothing a person would see
    plain = await console.client.conversations_history(channel=CHANNEL)
    assert "metadata" not in plain["messages"][0]  # as Slack: only when asked for
    full = await console.client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert full["messages"][0]["ts"] == ts
    assert full["messages"][0]["metadata"] == {"event_type": OUTBOX_EVENT,
                                               "event_payload": {"outbox_id": 7}}


async def test_a_reply_is_found_in_its_thread_across_pages(
    console: SlackConsole, slack: SlackStandin, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console_module, "LOOKUP_LIMIT", 4)
    since = time.time() - 1
    parent = await console.post("parent", None, outbox_id=1)
    for n in range(10, 20):
        await console.post(f"reply {n}", parent, outbox_id=n)
    await console.post("elsewhere", None, outbox_id=99)
    assert await console.find_posted(1, None, since) == parent
    assert console.lookups == 1
    found = await console.find_posted(18, parent, since)
    assert found == next(m["ts"] for m in slack.messages if m["text"] == "reply 18")
    assert console.lookups == 1 + 3  # the parent and replies 10..17 fill two pages of four
    assert await console.find_posted(99, parent, since) is None  # not in this thread
    assert await console.find_posted(12, parent, time.time() + 60) is None  # before `since`


async def test_the_lookup_is_bounded_in_pages(
    console: SlackConsole, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console_module, "LOOKUP_LIMIT", 2)
    since = time.time() - 1
    await console.post("the one", None, outbox_id=5)
    for n in range(2 * console_module.LOOKUP_PAGES):
        await console.post(f"later {n}", None)  # newer: history lists them first
    assert await console.find_posted(5, None, since) is None
    assert console.lookups == console_module.LOOKUP_PAGES


async def test_a_refused_lookup_is_a_send_error(slack: SlackStandin) -> None:
    async with SlackStandin(scopes={"chat:write"}) as narrow, aiohttp.ClientSession() as session:
        console = SlackConsole(SlackSettings(bot_token=narrow.bot_token or "",
                                             support_channel=CHANNEL,
                                             api_base_url=narrow.base_url), session)
        with pytest.raises(SendError) as caught:
            await console.find_posted(1, None, 0.0)
        assert caught.value.code == "missing_scope"
        with pytest.raises(SendError) as caught:
            await SlackConsole(console.settings.model_copy(
                update={"api_base_url": slack.base_url}), session).find_posted(1, "1.000001", 0)
        assert caught.value.code == "thread_not_found"


# -- the worker: look up only a row in the unknown state ----------------------------------------
@dataclass
class Outbox:
    rows: list[OutboxItem]
    results: list[OutboxResult] = field(default_factory=list)
    marked: list[int] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def pending_outbox(self, limit: int, updated_since: float = 0.0) -> list[OutboxItem]:
        return self.rows[:limit]

    async def mark_attempted(self, item_id: OutboxId, now: float) -> None:
        self.marked.append(int(item_id))

    async def finish_outbox(self, results: Sequence[OutboxResult],
                            now: float) -> list[OutboxItem]:
        self.results.extend(results)
        if len(self.results) >= len(self.rows):
            self.finished.set()
        return []


@dataclass
class Slack:
    """Deliverer and recovery: `posted` holds the rows Slack already has."""

    posted: set[int]
    sent: list[int] = field(default_factory=list)
    looked_up: list[int] = field(default_factory=list)
    settle: float = 0.0

    def gate_for(self, item: OutboxItem) -> str | None:
        return None

    def checked(self, item: OutboxItem) -> bool:
        return True

    async def recover(self, item: OutboxItem) -> OutboxResult | None:
        self.looked_up.append(int(item.id))
        if int(item.id) not in self.posted:
            return None
        return OutboxResult(item_id=item.id, outcome=Outcome.DONE, attempts=0, slack_ts="1.5")

    async def deliver(self, item: OutboxItem) -> OutboxResult:
        self.sent.append(int(item.id))
        return OutboxResult(item_id=item.id, outcome=Outcome.DONE, attempts=0, slack_ts="2.5")

    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult:
        raise AssertionError("nothing fails here")


async def test_only_rows_attempted_before_are_looked_up_and_a_found_post_is_adopted() -> None:
    clock = Clock()
    rows = [row(1, "a"), row(2, "b"), row(3, "c")]
    rows[0].attempted_at = rows[1].attempted_at = clock.now - 30  # the outcome is unknown
    outbox, slack = Outbox(rows=rows), Slack(posted={1})
    worker = OutboxWorker(cast(Store, outbox), slack, OutboxSettings(), clock=clock,
                          recovery=slack)
    await worker.start()
    try:
        await asyncio.wait_for(outbox.finished.wait(), 5)
    finally:
        await worker.stop(timeout=1.0)
    assert slack.looked_up == [1, 2]  # row 3 was never tried: the hot path, no lookup
    assert slack.sent == [2, 3]  # row 1 is in Slack already: adopted, not posted again
    assert sorted(outbox.marked) == [2, 3]  # marked attempted before each send
    adopted = {int(r.item_id): r for r in outbox.results}
    assert adopted[1].slack_ts == "1.5" and adopted[1].attempts == 1
    assert (worker.lookups, worker.recovered) == (2, 1)


async def test_a_file_is_found_by_its_block_id(console: SlackConsole, slack: SlackStandin) -> None:
    since = time.time() - 1
    parent = await console.post("parent", None, outbox_id=1)
    await console.upload(parent, "photo.jpg", b"\xff\xd8", "*Ann* sent a photo", outbox_id=9)
    shared = slack.messages[-1]
    assert shared["subtype"] == "file_share" and shared["thread_ts"] == parent
    assert shared["blocks"][0]["text"]["text"] == "*Ann* sent a photo"  # what people see
    assert await console.find_posted(9, parent, since) == shared["ts"]
    assert await console.find_posted(10, parent, since) is None
