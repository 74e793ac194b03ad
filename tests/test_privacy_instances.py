"""Two bridge instances on one PostgreSQL database: an erasure made on the store empties the
customer's Slack thread exactly once (whichever instance holds the lane), and the retention
job both start runs once."""

from __future__ import annotations

import time

import pytest

from tests.conftest import CHANNEL, HarnessFactory
from tests.helpers_pg import PG_URL, fresh_schema
from tests.waiting import poll


@pytest.mark.backends("postgres")
async def test_two_instances_erase_once_and_run_retention_once(
        make_harness: HarnessFactory) -> None:
    async with fresh_schema() as schema:
        shared = {"storage": {"url": PG_URL, "schema": schema},
                  "privacy": {"keep_messages_days": 30}}
        first = await make_harness(shared)
        second = await make_harness(shared)
        for text in ("one", "two", "three"):
            assert await first.customer_says(4242, text, first_name="Ann") == 200
        thread = await first.thread_of(4242)
        await first.drained()
        customer = int(first.rows("SELECT customer_id FROM conversations")[0][0])

        done = await second.bridge.store.erase_customer(customer, "dpo", time.time())
        assert len(done.threads) == 1
        await first.drained(timeout=10)

        async def thread_now() -> list[str]:
            return [m["text"] for m in first.slack.thread(CHANNEL, thread)]
        texts = await poll(thread_now, lambda got: len(got) == 1, "the thread emptied")
        assert texts[0].startswith("erased on ")
        updates = [c for c in first.slack.calls if c.method == "chat.update"
                   and str(c.params.get("text", "")).startswith("erased on ")]
        assert len(updates) == 1
        deletes = [c.params["ts"] for c in first.slack.calls if c.method == "chat.delete"]
        assert len(deletes) == len(set(deletes)) == 2  # the two replies, each once
        assert first.rows("SELECT action, actor FROM audit_log WHERE action <> 'retention'") \
            == [("erase", "dpo")]
        assert first.rows("SELECT COUNT(*) FROM audit_log WHERE action = 'retention'") \
            == [(1,)]  # both instances started the job; it ran once
        await first.bridge.stop()
        await second.bridge.stop()
