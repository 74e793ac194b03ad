"""Crash safety of `bridge run` in Telegram polling mode: SIGKILL mid-stream, then restart.

The bridge confirms an update to Telegram (a later getUpdates offset passes it) only after its
row is committed, so a kill at any moment loses nothing: what was fetched but not committed,
or committed but not yet confirmed, is fetched again after the restart and the store keeps it
once (dedupe on update_id).  Slack posts repeat only where one was in flight at the kill.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.standins import SlackStandin, TelegramStandin
from tests.conftest import CHANNEL, bridge_env, write_config
from tests.helpers_proc import BridgeProcess, db_rows, free_port
from tests.waiting import until

CHATS = [7201, 7202, 7203, 7204, 7205, 7206]
ROUNDS = 50  # one update per chat per round: 300 updates
PACE = 0.03  # seconds between rounds, so the kill lands while updates still arrive
CONCURRENCY = 8
MARKER = re.compile(r"\bpm-\d+-\d{3}\b")


@pytest.fixture
async def proc(tmp_path: Path, slack: SlackStandin,
               telegram: TelegramStandin) -> AsyncIterator[BridgeProcess]:
    port = free_port()
    config = write_config(tmp_path / "bridge.toml", port=port, db=tmp_path / "bridge.db",
                          slack=slack, telegram=telegram,
                          overrides={"outbox": {"concurrency": CONCURRENCY},
                                     "connectors.telegram": {"mode": "polling",
                                                             "poll_timeout": 1}})
    bridge = BridgeProcess(config, bridge_env(slack), tmp_path, port)
    yield bridge
    bridge.cleanup()


def count(db: Path, sql: str) -> int:
    return int(db_rows(db, sql)[0][0])


def stored_markers(db: Path) -> list[str]:
    return [m for (text,) in db_rows(db, "SELECT text FROM messages WHERE direction = 'in'"
                                         " ORDER BY id") for m in MARKER.findall(text)]


async def produce(telegram: TelegramStandin, queued: dict[int, list[tuple[int, str]]]) -> None:
    """Customers write, round after round; Telegram queues it whether the bridge runs or not."""
    for i in range(ROUNDS):
        for chat in CHATS:
            marker = f"pm-{chat}-{i:03d}"
            update = telegram.text_update(chat_id=chat, text=f"question {marker}")
            telegram.queue_update(update)
            queued[chat].append((int(update["update_id"]), marker))
        await asyncio.sleep(PACE)


async def test_sigkill_while_polling_loses_no_update(
    proc: BridgeProcess, slack: SlackStandin, telegram: TelegramStandin, tmp_path: Path,
) -> None:
    db = tmp_path / "bridge.db"
    slack.delay_next("chat.postMessage", 0.2, count=80)  # a backlog in the outbox at the kill
    # Each getUpdates waits before its offset is applied: committed updates stay unconfirmed.
    telegram.delay_next("getUpdates", 0.1, count=15)
    proc.start()
    await proc.wait_healthy()
    await telegram.wait_for("getUpdates", 1)

    queued: dict[int, list[tuple[int, str]]] = {c: [] for c in CHATS}
    producer = asyncio.create_task(produce(telegram, queued))
    inbound = "SELECT COUNT(*) FROM messages WHERE direction = 'in'"
    pending = "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"

    def ripe() -> bool:
        """Mid-stream, with a backlog, and rows Telegram was not yet told about."""
        stored = count(db, inbound)
        return stored >= 60 and count(db, pending) >= 10 and stored > len(telegram.confirmed)

    # No await between the check and the kill: the stand-in (in this event loop) cannot
    # confirm anything more, so the kill finds committed-but-unconfirmed updates.
    await until(ripe, lambda: f"{count(db, inbound)} stored, {count(db, pending)} pending, "
                              f"{len(telegram.confirmed)} confirmed")
    assert not producer.done(), "every update was queued before the kill: not mid-stream"
    assert await proc.signal(signal.SIGKILL) == -signal.SIGKILL
    at_kill = {"stored": count(db, inbound), "pending": count(db, pending),
               "confirmed": len(telegram.confirmed), "queued": sum(map(len, queued.values()))}
    await producer  # the rest arrives while the bridge is down
    everything = {uid: marker for sent in queued.values() for uid, marker in sent}
    assert len(everything) == len(CHATS) * ROUNDS
    assert at_kill["stored"] < len(everything)
    # Telegram was told only about stored updates; some stored ones it was not yet told about.
    assert at_kill["confirmed"] < at_kill["stored"]

    proc.start()
    await proc.wait_healthy()

    def posted() -> list[str]:
        return [m for msg in slack.messages for m in MARKER.findall(msg["text"])]

    await until(lambda: count(db, inbound) == len(everything),
                lambda: f"{count(db, inbound)} of {len(everything)} stored")
    await until(lambda: not set(everything.values()) - set(posted()),
                lambda: f"missing in Slack: {sorted(set(everything.values()) - set(posted()))[:5]}")
    await until(lambda: count(db, pending) == 0, lambda: f"{count(db, pending)} pending")
    await until(lambda: telegram.updates == [], lambda: f"{len(telegram.updates)} unconfirmed")

    # Stored exactly once each, in order per chat.
    rows = db_rows(db, "SELECT platform_message_id, COUNT(*) FROM messages"
                       " WHERE direction = 'in' GROUP BY platform_message_id")
    assert {int(uid): n for uid, n in rows} == dict.fromkeys(everything, 1)
    in_store = stored_markers(db)
    for chat, sent in queued.items():
        assert [m for m in in_store if m.startswith(f"pm-{chat}-")] == [m for _, m in sent]
    assert set(telegram.confirmed) == set(everything)
    assert db_rows(db, "SELECT id, kind, last_error FROM outbox WHERE status != 'done'") == []

    # Slack: each one posted, in order per chat; a repeat only for the post each chat's lane
    # (one Slack post in flight per conversation) had under way at the kill.
    counts = Counter(posted())
    repeats = {m: n for m, n in counts.items() if n > 1}
    assert all(n == 2 for n in repeats.values()), repeats
    assert len({m.rsplit("-", 1)[0] for m in repeats}) == len(repeats) <= len(CHATS), repeats
    first: dict[str, int] = {}
    for pos, marker in enumerate(posted()):
        first.setdefault(marker, pos)
    for chat, sent in queued.items():
        markers = [m for _, m in sent]
        assert sorted(markers, key=first.__getitem__) == markers, f"chat {chat} out of order"
        thread = db_rows(db, "SELECT slack_thread_ts FROM conversations WHERE address = ?",
                         (str(chat),))[0][0]
        in_thread = {m for msg in slack.thread(CHANNEL, thread)
                     for m in MARKER.findall(msg["text"])}
        assert set(markers) <= in_thread, chat

    refetched = sum(1 for uid in everything if telegram.served.get(uid, 0) > 1)
    print(f"\npolling crash: {len(everything)} queued; at kill {at_kill}; "
          f"{count(db, inbound)} rows stored; {refetched} updates served more than once; "
          f"{len(repeats)} Slack posts repeated")
    assert await proc.signal(signal.SIGTERM) == 0
