"""CPU per customer message in the store, without HTTP, Slack or the load generator:
`python -m bench.hotpath [messages]` (SQLite, synchronous = full, a fresh file).

1. ingest + post bookkeeping: each message ingested (32 at once, group-committed as webhooks
   are) and its Slack post recorded (`finish_outbox`), as `bridge run` does per message;
2. the reads automatic answers make per customer message when a team has any (issue 21).

Process CPU (the writer thread included) per message, so the figure holds on a busy machine
where throughput benchmarks do not.  Run it with PYTHONPATH pointing at another worktree to
compare commits: before 441b715 automatic answers read the conversation, the identity and the
facts in three reads, which (2) then reproduces.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from typing import Any

from bridge.registry import create_store
from bridge.settings import StorageSettings
from storage.base import OutboxResult, Outcome
from vocab.models import DeliveryState, InboundMessage, IngestResult

CHATS = 100
BATCH = 32


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store: Any = create_store(StorageSettings.model_validate({"url": f"sqlite:///{tmp}/b.db"}))
        await store.open()
        await store.migrate()
        now = time.time()
        threads: dict[int, str] = {}
        results: list[IngestResult] = []

        async def one(i: int) -> None:
            item = InboundMessage(connector="telegram", platform_message_id=str(i),
                                  address=str(i % CHATS), sender_name="Ann Example",
                                  text=f"hello there mk{i}, how are you")
            [res] = await store.ingest_inbound([item], "C0SUPPORT1", now + i * 1e-3)
            results.append(res)
            assert res.conversation_id is not None
            thread = threads.setdefault(int(res.conversation_id), f"{1000 + i}.000100")
            await store.finish_outbox([OutboxResult(
                item_id=ob.id, outcome=Outcome.DONE, attempts=1, message_id=res.message_id,
                message_state=DeliveryState.POSTED, slack_channel="C0SUPPORT1",
                slack_ts=f"{2000 + i}.000200", thread_ts=thread,
                conversation_id=res.conversation_id) for ob in res.outbox], now + i * 1e-3)

        await asyncio.gather(*(one(i) for i in range(200)))  # warm-up: every chat exists
        c0 = cpu()
        for start in range(200, n + 200, BATCH):
            await asyncio.gather(*(one(i) for i in range(start, start + BATCH)))
        ingest_us = (cpu() - c0) / n * 1e6
        one_read = hasattr(store, "recent_waits")
        checked = results[-min(n, 2000):] if hasattr(store, "auto_facts") else []
        c0 = cpu()
        for res in checked:
            assert res.conversation_id is not None and res.message_id is not None
            if not one_read:  # the code before 441b715: three reads
                conv = await store.get_conversation(res.conversation_id)
                await store.get_identity(conv.identity_id)
            await store.auto_facts(res.conversation_id, res.message_id)
        auto_us = (cpu() - c0) / max(1, len(checked)) * 1e6
        await store.close()
    print(f"ingest + post bookkeeping: {ingest_us:.0f} us CPU per message ({n} messages)")
    if checked:  # (none before issue 21)
        print(f"automatic answers' reads:  {auto_us:.0f} us CPU per message "
              f"({'one read' if one_read else 'three reads'}, {len(checked)} messages)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
