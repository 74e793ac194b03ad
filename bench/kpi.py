"""How long the KPIs take over a month of 100,000 conversations, on SQLite and PostgreSQL.

    python -m bench.kpi [--conversations 100000] [--days 30] [--stores sqlite,postgres]

A synthetic history is written straight into a fresh database (a file under a temporary
directory; a schema `bench_<random>` on the tests' PostgreSQL server, dropped afterwards): per
conversation a customer message, an agent response, often a second exchange, an automatic
answer now and then, a close, its targets and sometimes a CSAT or NPS answer, about 6.5 rows.
Then `Store.kpis` runs for the 30 days (totals, and by channel, team, agent and day) with a
business-hours calendar (Mon-Fri 09:00-17:00 UTC); each is run three times and the best and the
median are printed.  The target of issue 24: under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import pg
from storage.kpi import By, KpiQuery
from storage.postgres import PostgresStore
from storage.sqlite import SQLiteStore
from storage.sqlstore import SQLStore

DAY = 86400.0
START = 1_780_000_000.0  # a Monday-ish instant in 2026; only differences matter
CHANNELS = {"C0SUPPORT1": "support", "C0BILLING1": "billing", "C0SALES001": "sales"}
CONNECTORS = ("telegram", "twilio", "email", "messenger", "whatsapp")
AGENTS = tuple(f"U0AGENT{i:03d}" for i in range(40))


class OfficeHours:
    """Mon-Fri 09:00-17:00 UTC for every team."""

    def intervals(self, team: str, start: float, end: float) -> Sequence[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        day = start - start % DAY
        while day < end:
            if int(day // DAY + 3) % 7 < 5:  # 1970-01-01 was a Thursday
                out.append((day + 9 * 3600, day + 17 * 3600))
            day += DAY
        return out


def history(conversations: int, days: int, seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of each table, ids from 1."""
    rnd = random.Random(seed)
    tables: dict[str, list[tuple[Any, ...]]] = {
        "customers": [], "identities": [], "conversations": [], "messages": [],
        "conversation_changes": [], "response_targets": [], "surveys": []}
    span = days * DAY
    mid = 0
    channels = list(CHANNELS)
    for cid in range(1, conversations + 1):
        t0 = START + rnd.random() * span
        connector = rnd.choice(CONNECTORS)
        channel = rnd.choice(channels)
        agent = rnd.choice(AGENTS)
        closed = rnd.random() < 0.85
        tables["customers"].append((cid, f"c{cid}", t0))
        tables["identities"].append((cid, cid, connector, f"a{cid}", t0))
        msgs: list[tuple[str, str, float, str | None, str]] = [("in", "person", t0, None, "posted")]
        t = t0
        if rnd.random() < 0.2:
            t += 1
            msgs.append(("out", "auto", t, None, "sent"))
        exchanges = 1 + (rnd.random() < 0.5)
        for n in range(exchanges):
            if n:
                t += rnd.expovariate(1 / 600)
                msgs.append(("in", "person", t, None, "posted"))
            t += rnd.expovariate(1 / 300)
            state = "failed" if rnd.random() < 0.01 else "delivered"
            msgs.append(("out", "person", t, agent, state))
        end = t + rnd.expovariate(1 / 3600)
        for direction, origin, at, who, state in msgs:
            mid += 1
            tables["messages"].append((mid, cid, direction, connector, origin, at, who, state))
        status = "closed" if closed else rnd.choice(("open", "open", "pending", "snoozed"))
        tables["conversations"].append((cid, cid, cid, connector, f"a{cid}", status, channel,
                                        f"{cid}.0", t0, end if closed else t,
                                        None if status == "open" and rnd.random() < 0.3
                                        else agent))
        if closed:
            tables["conversation_changes"].append((cid, "status", "open", "closed", agent, end))
        first = next(at for d, o, at, _, _ in msgs if d == "out" and o == "person")
        met = first - t0 < 600
        tables["response_targets"].append((
            cid, CHANNELS[channel], "first_response", "met" if met else "missed", agent, t0,
            first if met else None, None if met else t0 + 600))
        if closed and rnd.random() < 0.3:
            kind = "csat" if rnd.random() < 0.7 else "nps"
            score = rnd.randint(1, 5) if kind == "csat" else rnd.randint(0, 10)
            tables["surveys"].append((cid, cid, kind, CHANNELS[channel], agent, connector,
                                      f"t{cid}", "answered", "1-5" if kind == "csat" else "0-10",
                                      score, end, end + 60))
    return tables


INSERTS = {
    "customers": "INSERT INTO customers (id, display_name, created_at) VALUES (?, ?, ?)",
    "identities": "INSERT INTO identities (id, customer_id, connector, address, created_at)"
                  " VALUES (?, ?, ?, ?, ?)",
    "conversations": "INSERT INTO conversations (id, customer_id, identity_id, connector,"
                     " address, status, slack_channel, slack_thread_ts, created_at, updated_at,"
                     " assignee) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "messages": "INSERT INTO messages (id, conversation_id, direction, connector, origin,"
                " created_at, author_slack_user, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "conversation_changes": "INSERT INTO conversation_changes (conversation_id, kind, old_value,"
                            " new_value, actor, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    "response_targets": "INSERT INTO response_targets (conversation_id, team, kind, state,"
                        " assignee, started_at, met_at, missed_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
    "surveys": "INSERT INTO surveys (conversation_id, customer_id, kind, team, assignee,"
               " connector, token, state, scale, score, sent_at, answered_at, created_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
}


def load_sqlite(path: str, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    import sqlite3
    c = sqlite3.connect(path)
    with c:
        for name, sql in INSERTS.items():
            c.executemany(sql, tables[name])
    c.execute("ANALYZE")
    c.close()


async def load_postgres(url: str, schema: str, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    import asyncpg

    from storage.dialect import POSTGRES
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        async with conn.transaction():
            for name, sql in INSERTS.items():
                await conn.executemany(POSTGRES.prepare(sql), tables[name])
                reset = POSTGRES.reset_sequence
                assert reset is not None
                await conn.execute(reset.format(table=name))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def measure(store: SQLStore, days: int, runs: int) -> list[tuple[str, float, float]]:
    hours = OfficeHours()
    out = []
    channels = dict(CHANNELS)
    midnights = [START - START % DAY + i * DAY for i in range(days + 2)]
    for by in (None, "channel", "team", "agent", "day"):
        query = KpiQuery(start=START, end=START + days * DAY, now=START + days * DAY,
                         by=by if by is None else _by(by), channels=channels, days=midnights)
        seconds = []
        cpu = []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            report = await store.kpis(query, hours)
            seconds.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        assert report.totals.conversations_opened > 0
        out.append((by or "totals", min(seconds), statistics.median(seconds)))
        # Printed at once (the machine may be shared: CPU seconds of this process beside).
        print(f"  {type(store).__name__} {by or 'totals'}: best {min(seconds):.3f} s, median"
              f" {statistics.median(seconds):.3f} s, this process's CPU median"
              f" {statistics.median(cpu):.3f} s", flush=True)
    return out


async def latency(store: SQLStore, days: int, messages: int) -> tuple[list[float], list[float],
                                                                  int]:
    """The message path's commit (`ingest_inbound`, what a webhook waits for before its 200),
    one message every 10 ms: first alone, then while a dashboard recomputes the 30-day
    totals back to back (worse than any number of open pages: they share one computation per
    10 s).  Returns the latencies in seconds of each run and how many KPI reports ran."""
    from vocab.models import InboundMessage

    end = START + days * DAY
    query = KpiQuery(start=end - 30 * DAY, end=end, now=end, channels=dict(CHANNELS))
    reports = 0
    stop = asyncio.Event()

    async def dashboard() -> None:
        nonlocal reports
        while not stop.is_set():
            await store.kpis(query, OfficeHours())
            reports += 1

    async def run(tag: str) -> list[float]:
        out = []
        for i in range(messages):
            msg = InboundMessage(connector="telegram", platform_message_id=f"{tag}{i}",
                                 address=f"lat{tag}{i % 50}", sender_name="Bench",
                                 text="hello")
            t = time.perf_counter()
            await store.ingest_inbound([msg], "C0SUPPORT1", end + i)
            out.append(time.perf_counter() - t)
            await asyncio.sleep(0.01)
        return out

    alone = await run("a")
    task = asyncio.create_task(dashboard())
    busy = await run("b")
    stop.set()
    await task
    return alone, busy, reports


def _latency_line(name: str, found: tuple[list[float], list[float], int]) -> None:
    alone, busy, reports = found
    print(f"{name}: message commit p50/p99 alone {pct(alone, .5) * 1000:.1f}/"
          f"{pct(alone, .99) * 1000:.1f} ms; with the dashboard recomputing"
          f" ({reports} reports) {pct(busy, .5) * 1000:.1f}/{pct(busy, .99) * 1000:.1f} ms",
          flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _by(name: str) -> By:
    assert name in ("channel", "agent", "team", "day")
    return name  # type: ignore[return-value]


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.kpi", description=__doc__.split("\n")[0])
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--pg-url", default=pg.DEFAULT_URL)
    ap.add_argument("--messages", type=int, default=300,
                    help="webhook-path commits timed without and with the dashboard")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    tables = history(args.conversations, args.days)
    print(f"history: {args.conversations} conversations, {len(tables['messages'])} messages,"
          f" {args.days} days (built in {time.perf_counter() - t:.1f} s)")
    results: dict[str, list[tuple[str, float, float]]] = {}
    paths: dict[str, tuple[list[float], list[float], int]] = {}
    if "sqlite" in args.stores:
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "kpi.db")
            store: SQLStore = SQLiteStore(f"sqlite:///{path}")
            await store.open()
            await store.migrate()
            load_sqlite(path, tables)
            results["sqlite"] = await measure(store, args.days, args.runs)
            if args.messages:
                paths["sqlite"] = await latency(store, args.days, args.messages)
                _latency_line("sqlite", paths["sqlite"])
            await store.close()
    if "postgres" in args.stores:
        pg.ensure(args.pg_url)
        schema = pg.new_schema()
        store = PostgresStore(args.pg_url, schema=schema)
        try:
            await store.open()
            await store.migrate()
            await load_postgres(args.pg_url, schema, tables)
            results["postgres"] = await measure(store, args.days, args.runs)
            if args.messages:
                paths["postgres"] = await latency(store, args.days, args.messages)
                _latency_line("postgres", paths["postgres"])
        finally:
            await store.close()
            await pg.drop_schema(args.pg_url, schema)
    print(f"{'store':<10} {'by':<8} {'best s':>8} {'median s':>9}")
    worst = 0.0
    for name, figures in results.items():
        for by, best, median in figures:
            worst = max(worst, median)
            print(f"{name:<10} {by:<8} {best:8.3f} {median:9.3f}")
    print(f"slowest median: {worst:.3f} s (target: < 1 s)")
    for name, found in paths.items():
        _latency_line(name, found)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
