"""How long the target keeper's reads take with N open conversations (SQLite):
`python -m bench.targets 10000`."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

from bridge.registry import create_store
from bridge.settings import StorageSettings
from vocab.models import InboundMessage


async def main(n: int) -> None:
    """Print the time of a full scan, a changed-since scan and the active targets' read."""
    with tempfile.TemporaryDirectory() as tmp:
        store = create_store(StorageSettings.model_validate({"url": f"sqlite:///{tmp}/b.db"}))
        await store.open()
        await store.migrate()
        now = time.time()
        batch = [InboundMessage(connector="telegram", platform_message_id=str(i), address=str(i),
                                sender_name="A", text="hello") for i in range(n)]
        for i in range(0, n, 500):
            await store.ingest_inbound(batch[i:i + 500], "C0SUPPORT1", now)
        for _ in range(2):
            t0 = time.perf_counter()
            owed = await store.owed_targets()
            t1 = time.perf_counter()
            await store.owed_targets(time.time() + 1)
            t3 = time.perf_counter()
            await store.active_targets()
            t2 = time.perf_counter()
        print(f"{n} open conversations: owed_targets {1000*(t1-t0):.1f} ms ({len(owed)} rows), "
              f"active_targets {1000*(t2-t3):.1f} ms, changed-since scan {1000*(t3-t1):.1f} ms")
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
