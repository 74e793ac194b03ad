"""SIGKILL in the middle of PostgreSQL group commits: a burst of webhooks arrives at once (the
writer stores them in batches of many), the bridge is killed while batches are being written,
then started again.  Every acknowledged message was committed and reaches Slack after the
restart; a batch cut off before its commit acknowledged nothing; nothing is posted twice but
sends in flight at the kill."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import aiohttp

from bridge.standins import SlackStandin, TelegramStandin
from tests.conftest import WEBHOOK_SECRET, bridge_env, write_config
from tests.helpers_pg import PG_URL, fresh_schema, pg_rows
from tests.helpers_proc import BridgeProcess, free_port
from tests.test_crash import markers
from tests.waiting import until

BURST = 600
CHATS = 40
CONCURRENCY = 8  # outbox deliveries in flight at once: the bound on re-sends after the kill


async def test_sigkill_during_group_commits_acknowledges_only_what_was_committed(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
) -> None:
    async with fresh_schema() as schema:
        port = free_port()
        config = write_config(
            tmp_path / "bridge.toml", port=port, db=tmp_path / "unused.db",
            slack=slack, telegram=telegram,
            overrides={"storage": {"url": PG_URL, "schema": schema},
                       "outbox": {"concurrency": CONCURRENCY, "lease_seconds": 2.0}})
        proc = BridgeProcess(config, bridge_env(slack), tmp_path, port)
        try:
            proc.start()
            await proc.wait_healthy(timeout=30)
            acked: list[str] = []
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

                async def one(i: int) -> None:
                    marker = f"cm-{1000 + i % CHATS}-{i // CHATS:03d}"
                    update = telegram.text_update(chat_id=1000 + i % CHATS,
                                                  text=f"burst {marker}")
                    try:
                        status, _ = await telegram.deliver(
                            update, session, url=f"{proc.url}/webhooks/telegram",
                            secret=WEBHOOK_SECRET)
                    except (aiohttp.ClientError, TimeoutError):
                        return  # cut off by the kill: not acknowledged
                    if status == 200:
                        acked.append(marker)

                sends = [asyncio.create_task(one(i)) for i in range(BURST)]
                await until(lambda: len(acked) >= BURST // 8,
                            lambda: f"only {len(acked)} acknowledged", timeout=30)
                assert await proc.signal(signal.SIGKILL) == -signal.SIGKILL
                await asyncio.gather(*sends)
            assert BURST // 8 <= len(acked) < BURST, "the kill came after the burst"
            stored = markers([str(r[0]) for r in await pg_rows(
                schema, "SELECT text FROM messages WHERE direction = 'in'")])
            assert not set(acked) - set(stored), "acknowledged but never committed"
            proc.start()  # the same instance again: its pending rows are worked
            await proc.wait_healthy(timeout=30)

            def posted() -> list[str]:
                return markers([m["text"] for m in slack.messages])

            await until(lambda: not set(stored) - set(posted()),
                        lambda: f"missing in Slack: {sorted(set(stored) - set(posted()))[:10]}",
                        timeout=30)
            repeats = {m: n for m, n in Counter(posted()).items() if n > 1}
            assert len(repeats) <= CONCURRENCY and all(n == 2 for n in repeats.values()), \
                repeats
            assert await proc.signal(signal.SIGTERM) == 0
        finally:
            proc.cleanup()
