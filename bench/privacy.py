"""Customers' data at scale (issue 28): export, erase and retention over 10,000 messages, on
SQLite and PostgreSQL.

    python -m bench.privacy [--messages 10000] [--stores sqlite,postgres] [--pg-url URL]

Each store is seeded with `--customers` customers (the first one, the person asking, holding
a tenth of the messages over several conversations), every conversation closed.  Measured,
in this order: `export` of that customer (the JSON document the CLI writes), `erase` of that
customer (one transaction), `retention` emptying every other message (all closed long ago).
Figures go to stdout and `bench/results/privacy.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import pg
from bench.pg import DEFAULT_URL
from bridge.privacy import DAY, export_bytes
from storage.postgres import PostgresStore
from storage.sqlite import SQLiteStore
from storage.sqlstore import SQLStore
from vocab.models import ConversationStatus, InboundMessage

RESULTS = Path(__file__).resolve().parent / "results" / "privacy.json"
BATCH = 200


async def seed(store: SQLStore, messages: int, customers: int, mine: int,
               start: float) -> None:
    """`messages` inbound messages: customer 0 holds `mine` over five conversations (one
    closed before each next opens), the rest spread over the other customers."""
    now = start
    sent = 0
    for conv in range(5):
        batch = [InboundMessage(connector="telegram", platform_message_id=f"a-{conv}-{i}",
                                address="1000", sender_name="Ann Lee",
                                text=f"message {i} of conversation {conv}: a few words")
                 for i in range(mine // 5)]
        for at in range(0, len(batch), BATCH):
            results = await store.ingest_inbound(batch[at:at + BATCH], "C1", now)
            now += 1
        sent += len(batch)
        assert results[0].conversation_id is not None
        await store.set_status(results[0].conversation_id, ConversationStatus.CLOSED, "U1", now)
    rest = messages - sent
    if rest <= 0:
        return
    per = max(1, rest // (customers - 1))
    items = [InboundMessage(connector="telegram", platform_message_id=f"b-{i}",
                            address=str(2000 + i // per), sender_name=f"Customer {i // per}",
                            text=f"message {i}: some words about an order") for i in range(rest)]
    for at in range(0, len(items), BATCH):
        results = await store.ingest_inbound(items[at:at + BATCH], "C1", now)
        now += 1
        for conv_id in {r.conversation_id for r in results if r.conversation_id is not None}:
            await store.set_status(conv_id, ConversationStatus.CLOSED, "U1", now)


async def measure(store: SQLStore, messages: int, customers: int,
                  mine: int) -> dict[str, Any]:
    start = 1_700_000_000.0
    t0 = time.perf_counter()
    await seed(store, messages, customers, mine, start)
    seeded = time.perf_counter() - t0
    [ann] = [p for p in await store.find_people("1000")]
    t0 = time.perf_counter()
    data = await export_bytes(store, ann.customer_id, "bench", start + DAY, with_files=False)
    exported = time.perf_counter() - t0
    assert data is not None
    t0 = time.perf_counter()
    erased = await store.erase_customer(ann.customer_id, "bench", start + DAY)
    erase_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    kept = await store.retention(start + 400 * DAY, start + 300 * DAY, start + 300 * DAY,
                                 "bench", DAY)
    retention_s = time.perf_counter() - t0
    return {"messages": messages, "customer_messages": mine, "seed_s": round(seeded, 2),
            "export_s": round(exported, 3), "export_bytes": len(data),
            "export_messages": sum(len(c["messages"])
                                   for c in json.loads(data)["conversations"]),
            "erase_s": round(erase_s, 3), "erased_messages": erased.messages,
            "retention_s": round(retention_s, 3), "retention_messages": kept.messages}


async def measured(store: SQLStore, args: argparse.Namespace, mine: int) -> dict[str, Any]:
    await store.open()
    try:
        await store.migrate()
        return await measure(store, args.messages, args.customers, mine)
    finally:
        await store.close()


async def run_store(kind: str, args: argparse.Namespace, mine: int) -> dict[str, Any]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            return await measured(SQLiteStore(f"sqlite:///{tmp}/bench.db"), args, mine)
    pg.ensure(args.pg_url)
    schema = pg.new_schema()  # the store creates it; dropped afterwards like every bench's
    try:
        return await measured(PostgresStore(args.pg_url, schema=schema), args, mine)
    finally:
        await pg.drop_schema(args.pg_url, schema)


async def main_async(args: argparse.Namespace) -> int:
    results = {}
    for kind in args.stores.split(","):
        for mine in (args.messages // 10, args.messages):
            name = f"{kind}, customer with {mine}"
            results[name] = await run_store(kind, args, mine)
            r = results[name]
            print(f"{kind:<9} {r['messages']} messages, the customer's {mine}: export "
                  f"{r['export_s']} s ({r['export_messages']} messages, "
                  f"{r['export_bytes']} bytes), erase "
                  f"{r['erase_s']} s ({r['erased_messages']} messages), retention "
                  f"{r['retention_s']} s ({r['retention_messages']} messages); seeding took "
                  f"{r['seed_s']} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.privacy", description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_URL)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
