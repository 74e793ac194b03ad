"""Crash safety of `bridge run` as a real process: SIGKILL mid-stream, then restart.

Every message the bridge acknowledged (HTTP 200 to a Telegram webhook or a Slack event) must
be delivered after a restart on the same database, in order per conversation: into Slack
exactly once and in one thread per conversation, whenever the kill comes; to customers with at
most the sends that were in flight at the kill repeated once.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bridge.standins import SlackEventSender, SlackStandin, TelegramStandin
from tests.conftest import AGENT, CHANNEL, SIGNING_SECRET, WEBHOOK_SECRET, bridge_env, write_config
from tests.helpers_once import MARKER, MOMENTS, Moment, repeated_posts, split_threads
from tests.helpers_proc import BridgeProcess, db_rows, free_port
from tests.waiting import poll, until

CHATS = [7001, 7002, 7003, 7004, 7005, 7006]
CONCURRENCY = 8  # outbox deliveries in flight at once: the bound on re-sends after a kill
PACE = 0.01  # seconds between two messages of one chat


@dataclass
class Stream:
    """What the bridge acknowledged, per chat, in send order."""

    customer: dict[int, list[str]] = field(default_factory=lambda: {c: [] for c in CHATS})
    agent: dict[int, list[str]] = field(default_factory=lambda: {c: [] for c in CHATS})
    killed: asyncio.Event = field(default_factory=asyncio.Event)

    def total(self, side: dict[int, list[str]]) -> int:
        return sum(len(v) for v in side.values())


@pytest.fixture
async def proc(tmp_path: Path, slack: SlackStandin,
               telegram: TelegramStandin) -> AsyncIterator[BridgeProcess]:
    port = free_port()
    config = write_config(tmp_path / "bridge.toml", port=port, db=tmp_path / "bridge.db",
                          slack=slack, telegram=telegram,
                          overrides={"outbox": {"concurrency": CONCURRENCY}})
    bridge = BridgeProcess(config, bridge_env(slack), tmp_path, port)
    yield bridge
    bridge.cleanup()


def pending(db: Path) -> int:
    return int(db_rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'")[0][0])


def thread_of(db: Path, chat: int) -> str | None:
    rows = db_rows(db, "SELECT slack_thread_ts FROM conversations WHERE address = ?"
                       " AND slack_thread_ts IS NOT NULL", (str(chat),))
    return str(rows[0][0]) if rows else None


async def send_until_refused(send: Callable[[str], Awaitable[int]], prefix: str,
                             acked: list[str], stream: Stream) -> None:
    """Send numbered markers one after another; stop at the first one not acknowledged."""
    for i in range(1000):
        if stream.killed.is_set():
            return
        marker = f"{prefix}-{i:03d}"
        try:
            status = await send(marker)
        except (aiohttp.ClientError, TimeoutError):
            return
        if status != 200:
            return
        acked.append(marker)
        await asyncio.sleep(PACE)


async def customer_stream(telegram: TelegramStandin, session: aiohttp.ClientSession,
                          url: str, chat: int, stream: Stream) -> None:
    """One chat writing sequentially."""
    async def send(marker: str) -> int:
        update = telegram.text_update(chat_id=chat, text=f"question {marker}")
        status, _ = await telegram.deliver(update, session, url=url, secret=WEBHOOK_SECRET)
        return status

    await send_until_refused(send, f"cm-{chat}", stream.customer[chat], stream)


async def agent_stream(agent: SlackEventSender, db: Path, chat: int, stream: Stream) -> None:
    """Once the chat has a Slack thread, an agent answers in it, sequentially."""
    async def read() -> str | None:
        return thread_of(db, chat)
    thread = await poll(read, lambda ts: ts is not None or stream.killed.is_set(),
                        f"a thread for chat {chat}", timeout=30)
    if thread is None:
        return  # killed before the thread was there: nothing to answer in

    async def send(marker: str) -> int:
        event = agent.message_event(channel=CHANNEL, user=AGENT, text=f"answer {marker}",
                                    thread_ts=thread)
        status, _ = await agent.post(event)
        return status

    await send_until_refused(send, f"am-{chat}", stream.agent[chat], stream)


def markers(texts: list[str]) -> list[str]:
    return [m for t in texts for m in MARKER.findall(t)]


def assert_order(delivered: list[str], acked: dict[int, list[str]]) -> None:
    """Within each conversation, first deliveries follow the acknowledged send order."""
    first: dict[str, int] = {}
    for pos, marker in enumerate(delivered):
        first.setdefault(marker, pos)
    for chat, sent in acked.items():
        assert sorted(sent, key=first.__getitem__) == sent, f"chat {chat} out of order"


@pytest.mark.parametrize("moment", MOMENTS, ids=[m.name for m in MOMENTS])
async def test_sigkill_mid_stream_loses_no_acknowledged_message(
    proc: BridgeProcess, slack: SlackStandin, telegram: TelegramStandin, tmp_path: Path,
    moment: Moment,
) -> None:
    db = tmp_path / "bridge.db"
    # Slow platforms, so the outbox holds a real backlog when the process dies.
    slack.delay_next("chat.postMessage", 0.3, count=400)
    telegram.delay_next("sendMessage", 0.2, count=120)
    proc.start()
    await proc.wait_healthy()

    stream = Stream()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        agent = SlackEventSender(f"{proc.url}/slack/events", SIGNING_SECRET, session,
                                 team_id=slack.team_id)
        webhook = f"{proc.url}/webhooks/telegram"
        senders = [asyncio.create_task(customer_stream(telegram, session, webhook, c, stream))
                   for c in CHATS]
        senders += [asyncio.create_task(agent_stream(agent, db, c, stream)) for c in CHATS]

        def ready() -> bool:
            return moment.ready(stream.total(stream.customer), stream.total(stream.agent),
                                len(slack.parents(CHANNEL)), pending(db))

        await until(ready, lambda: f"{moment.describe}: acked {stream.total(stream.customer)}"
                                   f" customer, {stream.total(stream.agent)} agent; "
                                   f"pending {pending(db)}")
        assert not any(s.done() for s in senders), "the stream ended before the kill"
        assert await proc.signal(signal.SIGKILL) == -signal.SIGKILL
        stream.killed.set()
        await asyncio.gather(*senders)

    backlog = pending(db)
    assert backlog > 0, "nothing was pending at the kill: the test proved nothing"
    acked_in = [m for ms in stream.customer.values() for m in ms]
    acked_out = [m for ms in stream.agent.values() for m in ms]

    proc.start()
    await proc.wait_healthy()

    def posted() -> list[str]:
        return markers([m["text"] for m in slack.messages])

    def sent() -> list[str]:
        return markers([str(s["text"]) for s in telegram.sent])

    await until(lambda: not set(acked_in) - set(posted()),
                lambda: f"missing in Slack: {sorted(set(acked_in) - set(posted()))[:10]}")
    await until(lambda: not set(acked_out) - set(sent()),
                lambda: f"missing in Telegram: {sorted(set(acked_out) - set(sent()))[:10]}")
    await until(lambda: pending(db) == 0, lambda: f"{pending(db)} outbox rows still pending")
    assert db_rows(db, "SELECT id, kind, last_error FROM outbox WHERE status != 'done'") == []

    # Into Slack exactly once, in one thread per conversation.
    assert repeated_posts(slack) == {}
    assert split_threads(slack, CHANNEL) == {}
    assert len(slack.parents(CHANNEL)) == len({c for c in CHATS if stream.customer[c]})
    # To customers, only what was in flight at the kill may repeat, once.
    repeats = {m: n for m, n in Counter(sent()).items() if n > 1}
    assert all(n == 2 for n in repeats.values()), repeats
    assert len(repeats) <= CONCURRENCY, repeats

    assert_order(posted(), stream.customer)
    assert_order(sent(), stream.agent)
    # Each customer message sits in its conversation's thread (the parent or a reply).
    for chat in CHATS:
        thread = thread_of(db, chat)
        in_thread = markers([m["text"] for m in slack.thread(CHANNEL, thread or "")])
        assert set(stream.customer[chat]) <= set(in_thread), chat
        to_chat = markers([str(s["text"]) for s in telegram.sent if s["chat_id"] == chat])
        assert set(stream.agent[chat]) <= set(to_chat), chat

    assert await proc.signal(signal.SIGTERM) == 0


async def test_sigterm_exits_cleanly_and_keeps_the_acknowledged_message(
    proc: BridgeProcess, slack: SlackStandin, telegram: TelegramStandin, tmp_path: Path,
) -> None:
    db = tmp_path / "bridge.db"
    proc.start()
    await proc.wait_healthy()
    slack.delay_next("chat.postMessage", 0.5)  # the post is still in flight at SIGTERM
    async with aiohttp.ClientSession() as session:
        update = telegram.text_update(chat_id=7100, text="before shutdown tm-7100-000")
        status, _ = await telegram.deliver(update, session, url=f"{proc.url}/webhooks/telegram",
                                           secret=WEBHOOK_SECRET)
    assert status == 200
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await proc.signal(signal.SIGTERM, timeout=10) == 0
    assert loop.time() - started < 10
    assert db_rows(db, "SELECT COUNT(*) FROM messages WHERE text LIKE '%tm-7100-000'") == [(1,)]

    proc.start()
    await proc.wait_healthy()
    await until(lambda: pending(db) == 0, lambda: f"{pending(db)} outbox rows still pending")
    texts = [m["text"] for m in slack.messages]
    assert sum("tm-7100-000" in t for t in texts) == 1, texts
    assert db_rows(db, "SELECT status FROM outbox") == [("done",)]
    assert await proc.signal(signal.SIGTERM) == 0
