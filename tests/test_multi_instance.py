"""Two `bridge run` processes on one PostgreSQL database; one is SIGKILLed mid-stream.

Customer webhooks and agent replies go to either instance (as a load balancer would spread
them; after the kill, only the survivor gets traffic).  Every acknowledged message must be
delivered, in order per conversation: into Slack exactly once and in one thread per
conversation, whenever the kill comes; to customers, only sends in flight at the kill may
repeat, once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.standins import SlackEventSender, SlackStandin, TelegramStandin
from tests.conftest import AGENT, CHANNEL, SIGNING_SECRET, WEBHOOK_SECRET, bridge_env, write_config
from tests.helpers_once import MOMENTS, Moment, repeated_posts, split_threads
from tests.helpers_pg import PG_URL, fresh_schema, pg_rows
from tests.helpers_proc import BridgeProcess, free_port
from tests.test_crash import CHATS, PACE, Stream, assert_order, markers
from tests.waiting import poll, until

pytestmark = pytest.mark.services  # a real PostgreSQL

CONCURRENCY = 8  # per instance: the bound on re-sends after the kill
LEASE = 2.0  # seconds until the dead instance's lanes move


@pytest.fixture
async def cluster(tmp_path: Path, slack: SlackStandin,
                  telegram: TelegramStandin) -> AsyncIterator[tuple[str, list[BridgeProcess]]]:
    async with fresh_schema() as schema:
        procs = []
        for n in (1, 2):
            port = free_port()
            (tmp_path / str(n)).mkdir()
            config = write_config(
                tmp_path / str(n) / "bridge.toml", port=port, db=tmp_path / "unused.db",
                slack=slack, telegram=telegram,
                overrides={"storage": {"url": PG_URL, "schema": schema},
                           "outbox": {"concurrency": CONCURRENCY, "lease_seconds": LEASE}})
            procs.append(BridgeProcess(config, bridge_env(slack), tmp_path / str(n), port))
        try:
            yield schema, procs
        finally:
            for proc in procs:
                proc.cleanup()


Send = Callable[[dict[str, Any], int], Awaitable[int]]


async def send_spread(build: Callable[[str], dict[str, Any]], send: Send, prefix: str,
                      acked: list[str], stream: Stream, alive: list[bool]) -> None:
    """Numbered markers, alternating instances; a refused one is retried, the same request
    body, on the other (as a load balancer would); stop once both refuse."""
    for i in range(1000):
        marker = f"{prefix}-{i:03d}"
        body = build(marker)
        ok = False
        for target in ((i % 2, 1 - i % 2) if alive[0] else (1,)):
            try:
                if await send(body, target) == 200:
                    ok = True
                    break
            except (aiohttp.ClientError, TimeoutError):
                continue
        if not ok or (stream.killed.is_set() and i > 40):
            return
        acked.append(marker)
        await asyncio.sleep(PACE)


@pytest.mark.parametrize("moment", MOMENTS, ids=[m.name for m in MOMENTS])
async def test_two_instances_one_killed_lose_nothing_and_keep_order(
    cluster: tuple[str, list[BridgeProcess]], slack: SlackStandin, telegram: TelegramStandin,
    moment: Moment,
) -> None:
    schema, procs = cluster
    slack.delay_next("chat.postMessage", 0.2, count=400)
    telegram.delay_next("sendMessage", 0.2, count=160)
    for proc in procs:
        proc.start()
    for proc in procs:
        await proc.wait_healthy(timeout=30)

    async def pending() -> int:
        return int((await pg_rows(schema, "SELECT COUNT(*) FROM outbox WHERE status ="
                                          " 'pending'"))[0][0])

    async def thread_of(chat: int) -> str | None:
        got = await pg_rows(schema, "SELECT slack_thread_ts FROM conversations WHERE address"
                                    " = ? AND slack_thread_ts IS NOT NULL", str(chat))
        return str(got[0][0]) if got else None

    stream = Stream()
    alive = [True]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        agents = [SlackEventSender(f"{p.url}/slack/events", SIGNING_SECRET, session,
                                   team_id=slack.team_id) for p in procs]

        async def customer(chat: int) -> None:
            def build(marker: str) -> dict[str, Any]:
                return telegram.text_update(chat_id=chat, text=f"question {marker}")

            async def send(update: dict[str, Any], target: int) -> int:
                status, _ = await telegram.deliver(
                    update, session, url=f"{procs[target].url}/webhooks/telegram",
                    secret=WEBHOOK_SECRET)
                return status
            await send_spread(build, send, f"cm-{chat}", stream.customer[chat], stream, alive)

        async def agent(chat: int) -> None:
            thread = await poll(lambda: thread_of(chat), lambda ts: ts is not None,
                                f"a thread for chat {chat}", timeout=30)

            def build(marker: str) -> dict[str, Any]:
                return agents[0].message_event(channel=CHANNEL, user=AGENT,
                                               text=f"answer {marker}", thread_ts=thread)

            async def send(event: dict[str, Any], target: int) -> int:
                status, _ = await agents[target].post(event)
                return status
            await send_spread(build, send, f"am-{chat}", stream.agent[chat], stream, alive)

        senders = [asyncio.create_task(customer(c)) for c in CHATS]
        senders += [asyncio.create_task(agent(c)) for c in CHATS]
        backlog = 0

        async def busy() -> bool:
            nonlocal backlog
            backlog = await pending()
            return moment.ready(stream.total(stream.customer), stream.total(stream.agent),
                                len(slack.parents(CHANNEL)), backlog)

        await poll(busy, bool, moment.describe, timeout=30)
        before = Counter(markers([m["text"] for m in slack.messages])
                         + markers([str(s["text"]) for s in telegram.sent]))
        killed_at = time.monotonic()
        assert await procs[0].signal(signal.SIGKILL) == -signal.SIGKILL
        alive[0] = False
        stream.killed.set()
        await asyncio.gather(*senders)

    acked_in = [m for ms in stream.customer.values() for m in ms]
    acked_out = [m for ms in stream.agent.values() for m in ms]

    def posted() -> list[str]:
        return markers([m["text"] for m in slack.messages])

    def sent() -> list[str]:
        return markers([str(s["text"]) for s in telegram.sent])

    await until(lambda: not set(acked_in) - set(posted()),
                lambda: f"missing in Slack: {sorted(set(acked_in) - set(posted()))[:10]}",
                timeout=30)
    await until(lambda: not set(acked_out) - set(sent()),
                lambda: f"missing in Telegram: {sorted(set(acked_out) - set(sent()))[:10]}",
                timeout=30)
    await poll(pending, lambda n: n == 0, "the outbox drained", timeout=15)
    assert await pg_rows(schema, "SELECT id, kind FROM outbox WHERE status <> 'done'") == []

    # While both ran, nothing was delivered twice.
    assert {m: n for m, n in before.items() if n > 1} == {}
    # Into Slack exactly once, in one thread per conversation.
    assert repeated_posts(slack) == {}
    assert split_threads(slack, CHANNEL) == {}
    assert len(slack.parents(CHANNEL)) == len(CHATS)
    counts = Counter(sent())
    repeats = {m: n for m, n in counts.items() if n > 1}
    assert all(n == 2 for n in repeats.values()), repeats
    # Only the dead instance's sends in flight at the kill (the stand-ins hold each call
    # 0.2 s, so those land within moments of it), and each once more, by the survivor.
    times = [
        (c.at, markers([str(c.params.get("text"))]))
        for c in telegram.calls if c.method == "sendMessage"]
    first = {m: min(at for at, ms in times if m in ms) for m in repeats}
    late = {m: round(at - killed_at, 3) for m, at in first.items() if at > killed_at + 0.5}
    assert late == {}, f"repeated, but not in flight at the kill: {late}"
    assert len(repeats) <= CONCURRENCY, repeats
    assert_order(posted(), stream.customer)
    assert_order(sent(), stream.agent)
    # One conversation and one thread per chat, whichever instance took each message.
    assert await pg_rows(schema, "SELECT COUNT(*) FROM conversations") == [(len(CHATS),)]
    assert backlog > 0
    assert await procs[1].signal(signal.SIGTERM) == 0
