"""What a crash costs in Slack: repeated posts, split threads, and what recovery costs.

    python -m bench.recovery                       # SQLite, one instance killed and restarted
    python -m bench.recovery --store pg            # PostgreSQL, two instances, one killed
    options: --rounds N  --chats N  --moments early,mid,late  --slack-timeout S

`--chats` customers (40 by default) write at once (each every 0.2 s) into a fresh bridge
(real `bridge run` processes, the Slack and Telegram stand-ins in this process, each call
held 0.2 s so that sends are in flight); once a customer's thread is there an agent answers
in it.  The kill (SIGKILL) comes `early` (0.5 s into the burst: parents being posted), `mid`
(2 s) or `late` (5 s).  SQLite: the process is restarted on the same database.  PostgreSQL:
two instances on one schema, the first is killed and the second takes its lanes over (lease
2 s).

Reported per kill moment, summed over the rounds: Slack posts repeated, conversations split
into two threads (a second parent), customer sends repeated (their APIs take no key), the rows
looked up (their send had started: outcome unknown) and adopted (found in Slack), the Slack
lookup calls (conversations.history/replies) per row looked up, and the drain time: restart
(SQLite) or kill (PostgreSQL) until every acknowledged message is delivered and nothing is
pending.  `[slack] request_timeout` (--slack-timeout, default 10 s as shipped) bounds how long
a dead instance's send may still land, so a row looked up waits that long after its start.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bridge.standins import SlackEventSender, SlackStandin, TelegramStandin
from tests.conftest import (
    AGENT,
    CHANNEL,
    SIGNING_SECRET,
    TG_TOKEN,
    WEBHOOK_SECRET,
    bridge_env,
    write_config,
)
from tests.helpers_once import MARKER, repeated_posts, slack_markers, split_threads
from tests.helpers_pg import PG_URL, fresh_schema, pg_rows
from tests.helpers_proc import BridgeProcess, db_rows, free_port

MOMENTS = {"early": 0.5, "mid": 2.0, "late": 5.0}  # seconds into the burst
LOOKUP_METHODS = ("conversations.history", "conversations.replies")


@dataclass
class Figures:
    moment: str
    rounds: int = 0
    acked: int = 0
    slack_repeats: int = 0
    splits: int = 0
    customer_sends: int = 0
    customer_repeats: int = 0
    looked_up: int = 0
    adopted: int = 0
    lookup_calls: int = 0
    drain: list[float] = field(default_factory=list)

    def row(self) -> str:
        per_row = f"{self.lookup_calls / self.looked_up:.2f}" if self.looked_up else "-"
        drain = f"{max(self.drain):.1f}" if self.drain else "-"
        mean = f"{sum(self.drain) / len(self.drain):.1f}" if self.drain else "-"
        return (f"{self.moment:6} {self.rounds:>3} {self.acked:>6} {self.slack_repeats:>8} "
                f"{self.splits:>6} {self.customer_repeats:>4}/{self.customer_sends:<5} "
                f"{self.looked_up:>7} {self.adopted:>7} {per_row:>9} {mean:>6} {drain:>6}")


HEADER = (f"{'moment':6} {'n':>3} {'acked':>6} {'repeats':>8} {'splits':>6} {'cust rep':>10} "
          f"{'lookedup':>7} {'adopted':>7} {'calls/row':>9} {'drain':>6} {'max':>6}")


class Scenario:
    """Customers writing, agents answering, into bridge processes on one store."""

    def __init__(self, slack: SlackStandin, telegram: TelegramStandin, chats: list[int],
                 urls: list[str], thread_of: Any) -> None:
        self.slack, self.telegram, self.chats = slack, telegram, chats
        self.urls = urls  # the instances alive, the first gets the traffic
        self.thread_of = thread_of
        self.acked: dict[int, list[str]] = {c: [] for c in chats}
        self.answered: dict[int, list[str]] = {c: [] for c in chats}
        self.killed = asyncio.Event()

    async def customer(self, session: aiohttp.ClientSession, chat: int) -> None:
        for i in range(1000):
            if self.killed.is_set():
                return
            marker = f"cm-{chat}-{i:03d}"
            update = self.telegram.text_update(chat_id=chat, text=f"question {marker}")
            url = self.urls[i % len(self.urls)]
            try:
                status, _ = await self.telegram.deliver(update, session,
                                                        url=f"{url}/webhooks/telegram",
                                                        secret=WEBHOOK_SECRET)
            except (aiohttp.ClientError, TimeoutError):
                return
            if status == 200:
                self.acked[chat].append(marker)
            await asyncio.sleep(0.2)

    async def agent(self, session: aiohttp.ClientSession, chat: int) -> None:
        thread = None
        while thread is None and not self.killed.is_set():
            thread = await self.thread_of(chat)
            await asyncio.sleep(0.1)
        for i in range(1000):
            if self.killed.is_set() or thread is None:
                return
            sender = SlackEventSender(f"{self.urls[i % len(self.urls)]}/slack/events",
                                      SIGNING_SECRET, session, team_id=self.slack.team_id)
            marker = f"am-{chat}-{i:03d}"
            event = sender.message_event(channel=CHANNEL, user=AGENT, text=f"answer {marker}",
                                         thread_ts=thread)
            try:
                status, _ = await sender.post(event)
            except (aiohttp.ClientError, TimeoutError):
                return
            if status == 200:
                self.answered[chat].append(marker)
            await asyncio.sleep(0.2)

    async def burst_then_kill(self, victim: BridgeProcess, after: float) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            tasks = [asyncio.create_task(self.customer(session, c)) for c in self.chats]
            tasks += [asyncio.create_task(self.agent(session, c)) for c in self.chats]
            await asyncio.sleep(after)  # the kill moment: a time into the burst, on purpose
            await victim.signal(signal.SIGKILL)
            self.killed.set()
            await asyncio.gather(*tasks)

    def delivered(self) -> bool:
        posted = set(slack_markers(self.slack))
        sent = {m for s in self.telegram.sent for m in MARKER.findall(str(s["text"]))}
        return (all(set(m) <= posted for m in self.acked.values())
                and all(set(m) <= sent for m in self.answered.values()))

    def count(self, fig: Figures, logs: list[str], calls_from: int) -> None:
        fig.rounds += 1
        fig.acked += sum(len(m) for m in self.acked.values())
        fig.slack_repeats += sum(n - 1 for n in repeated_posts(self.slack).values())
        fig.splits += len(split_threads(self.slack, CHANNEL))
        sent = Counter(m for s in self.telegram.sent for m in MARKER.findall(str(s["text"])))
        fig.customer_sends += sum(sent.values())
        fig.customer_repeats += sum(n - 1 for n in sent.values() if n > 1)
        text = "".join(logs)
        fig.looked_up += text.count("may have gone out; looking it up")
        fig.adopted += text.count("was already delivered: adopted")
        fig.lookup_calls += sum(1 for c in self.slack.calls[calls_from:]
                                if c.method in LOOKUP_METHODS)


async def until(check: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def standins() -> tuple[SlackStandin, TelegramStandin]:
    slack, telegram = SlackStandin(), TelegramStandin(token=TG_TOKEN)
    await slack.__aenter__()
    await telegram.__aenter__()
    slack.add_user(AGENT, display_name="Dana", real_name="Dana Whitfield")
    slack.delay_next("chat.postMessage", 0.2, count=100_000)
    telegram.delay_next("sendMessage", 0.2, count=100_000)
    return slack, telegram


async def sqlite_round(fig: Figures, after: float, chats: list[int], timeout: float) -> None:
    slack, telegram = await standins()
    with tempfile.TemporaryDirectory() as tmp:
        db, port = Path(tmp) / "bridge.db", free_port()
        config = write_config(Path(tmp) / "bridge.toml", port=port, db=db, slack=slack,
                              telegram=telegram, overrides={"slack": {"request_timeout": timeout},
                                                            "outbox": {"concurrency": 8},
                                                            "logging": {"level": "INFO"}})
        proc = BridgeProcess(config, bridge_env(slack), Path(tmp), port)
        try:
            proc.start()
            await proc.wait_healthy()

            async def thread_of(chat: int) -> str | None:
                got = db_rows(db, "SELECT slack_thread_ts FROM conversations WHERE address = ?"
                                  " AND slack_thread_ts IS NOT NULL", (str(chat),))
                return str(got[0][0]) if got else None

            scenario = Scenario(slack, telegram, chats, [proc.url], thread_of)
            await scenario.burst_then_kill(proc, after)
            calls_from, started = len(slack.calls), time.monotonic()
            proc.start()
            await proc.wait_healthy()

            async def drained() -> bool:
                try:
                    left = db_rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                except sqlite3.OperationalError:
                    return False
                return int(left[0][0]) == 0 and scenario.delivered()
            await until(drained, "drained after the restart")
            fig.drain.append(time.monotonic() - started)
            await proc.signal(signal.SIGTERM)
            logs = [(Path(tmp) / f"bridge-{n}.err").read_text(errors="replace") for n in (1, 2)]
            scenario.count(fig, logs, calls_from)
        finally:
            proc.cleanup()
            await slack.__aexit__(None, None, None)
            await telegram.__aexit__(None, None, None)


async def pg_round(fig: Figures, after: float, chats: list[int], timeout: float) -> None:
    slack, telegram = await standins()
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_schema() as schema:
            procs = []
            for n in (1, 2):
                port = free_port()
                (Path(tmp) / str(n)).mkdir()
                config = write_config(
                    Path(tmp) / str(n) / "bridge.toml", port=port, db=Path(tmp) / "unused.db",
                    slack=slack, telegram=telegram,
                    overrides={"storage": {"url": PG_URL, "schema": schema},
                               "slack": {"request_timeout": timeout},
                               "logging": {"level": "INFO"},
                               "outbox": {"concurrency": 8, "lease_seconds": 2.0}})
                procs.append(BridgeProcess(config, bridge_env(slack), Path(tmp) / str(n), port))
            try:
                for proc in procs:
                    proc.start()
                for proc in procs:
                    await proc.wait_healthy(timeout=30)

                async def thread_of(chat: int) -> str | None:
                    got = await pg_rows(schema, "SELECT slack_thread_ts FROM conversations"
                                        " WHERE address = ? AND slack_thread_ts IS NOT NULL",
                                        str(chat))
                    return str(got[0][0]) if got else None

                scenario = Scenario(slack, telegram, chats, [p.url for p in procs], thread_of)
                await scenario.burst_then_kill(procs[0], after)
                calls_from, started = 0, time.monotonic()

                async def drained() -> bool:
                    left = await pg_rows(schema, "SELECT COUNT(*) FROM outbox"
                                                 " WHERE status = 'pending'")
                    return int(left[0][0]) == 0 and scenario.delivered()
                await until(drained, "drained after the kill")
                fig.drain.append(time.monotonic() - started)
                await procs[1].signal(signal.SIGTERM)
                logs = [(Path(tmp) / str(n) / "bridge-1.err").read_text(errors="replace")
                        for n in (1, 2)]
                scenario.count(fig, logs, calls_from)
            finally:
                for proc in procs:
                    proc.cleanup()
                await slack.__aexit__(None, None, None)
                await telegram.__aexit__(None, None, None)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--moments", default="early,mid,late")
    parser.add_argument("--slack-timeout", type=float, default=10.0)
    args = parser.parse_args()
    chats = [8001 + n for n in range(args.chats)]
    run = sqlite_round if args.store == "sqlite" else pg_round
    print(f"{args.store}: {args.chats} customers, {args.rounds} rounds, Slack request_timeout "
          f"{args.slack_timeout:g} s; drain in seconds (mean, max)")
    print(HEADER)
    for name in args.moments.split(","):
        fig = Figures(name)
        for _ in range(args.rounds):
            await run(fig, MOMENTS[name], chats, args.slack_timeout)
        print(fig.row(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
