"""Retention removes exactly what is older than the settings say, keeps what the KPIs count,
runs once per 24 hours across instances, and follows the bridge's (moved) clock.  Both
stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bridge.privacy import DAY, RetentionJob
from bridge.settings import PrivacySettings
from storage.postgres import PostgresStore
from storage.sqlite import SQLiteStore
from storage.sqlstore import SQLStore
from tests.helpers_pg import PG_URL, fresh_schema
from tests.waiting import poll, until
from vocab.models import ConversationId, ConversationStatus, InboundMessage

NOW = 2_000_000_000.0
Factory = Callable[[], SQLStore]


@pytest.fixture(params=["sqlite", "postgres"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """A migrated store on each backend, and how to open another instance of it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
        yield lambda: SQLiteStore(url)
        return
    async with fresh_schema() as schema:
        yield lambda: PostgresStore(PG_URL, schema=schema)


async def opened(make: Factory) -> SQLStore:
    store = make()
    await store.open()
    await store.migrate()
    return store


async def conversation(store: SQLStore, chat: str, at: float, closed_at: float | None) -> int:
    [result] = await store.ingest_inbound([InboundMessage(
        connector="telegram", platform_message_id=f"{chat}-1", address=chat,
        sender_name="Ann", text=f"words of {chat}")], "C1", at)
    assert result.conversation_id is not None
    if closed_at is not None:
        await store.set_status(result.conversation_id, ConversationStatus.CLOSED, "U1",
                               closed_at)
    return int(result.conversation_id)


async def texts(store: SQLStore, conversation_id: int) -> list[str]:
    return [m.text for m in await store.messages(ConversationId(conversation_id))]


async def test_retention_removes_exactly_what_is_older(stores: Factory) -> None:
    store = await opened(stores)
    try:
        old = await conversation(store, "1", NOW - 90 * DAY, NOW - 40 * DAY)
        recent = await conversation(store, "2", NOW - 90 * DAY, NOW - 20 * DAY)
        still_open = await conversation(store, "3", NOW - 90 * DAY, None)
        await store.put_media("a" * 32, "old.png", "image/png", b"old", NOW - 10 * DAY,
                              NOW + DAY, old)
        await store.put_media("b" * 32, "new.png", "image/png", b"new", NOW - DAY, NOW + DAY,
                              recent)
        done = await store.retention(NOW, NOW - 30 * DAY, NOW - 5 * DAY, "retention", DAY)
        assert done.ran and done.messages == 1 and done.media == 1
        assert await texts(store, old) == [""]
        assert await texts(store, recent) == ["words of 2"]
        assert await texts(store, still_open) == ["words of 3"]
        assert await store.get_media("a" * 32, NOW) is None
        assert await store.get_media("b" * 32, NOW) is not None
        conv = await store.get_conversation(ConversationId(old))
        assert conv is not None and conv.closed_at == NOW - 40 * DAY  # the KPIs' times stay

        assert not (await store.retention(NOW + 3600, NOW, NOW, "retention", DAY)).ran
        later = await store.retention(NOW + DAY, NOW + DAY - 30 * DAY, None, "retention", DAY)
        assert later.ran and later.messages == 0  # nothing more is old enough
        entries = await store.audit_entries(0)
        assert [(e.action, e.detail) for e in entries] == [
            ("retention", "1 messages emptied, 1 files deleted"),
            ("retention", "0 messages emptied, 0 files deleted")]
    finally:
        await store.close()


async def test_instances_starting_together_run_it_once(stores: Factory) -> None:
    first = await opened(stores)
    second = await opened(stores)
    try:
        await conversation(first, "1", NOW - 90 * DAY, NOW - 40 * DAY)
        runs = await asyncio.gather(*(s.retention(NOW, NOW - 30 * DAY, None, "retention", DAY)
                                      for s in (first, second, first, second)))
        assert sorted(r.ran for r in runs) == [False, False, False, True]
        assert sum(r.messages for r in runs) == 1
    finally:
        await second.close()
        await first.close()


async def asked_again(*jobs: RetentionJob) -> None:
    """Wait until each job's loop has asked the store again (not a fixed sleep)."""
    for job in jobs:
        job.last = None
    await until(lambda: all(j.last is not None for j in jobs), "the jobs to ask again", 5.0)


async def test_two_jobs_on_a_moved_clock_run_once_per_day(stores: Factory) -> None:
    """Two instances' jobs, their loops asking all the time, on one moved clock: each 24 hours
    the clock passes gives exactly one run between them, and none in between."""
    first, second = await opened(stores), await opened(stores)
    now = [NOW]
    jobs = [RetentionJob(s, PrivacySettings(keep_messages_days=2), lambda: now[0],
                         check_every=0.01) for s in (first, second)]
    try:
        await conversation(first, "1", NOW - 9 * DAY, NOW - 3 * DAY)
        await conversation(first, "2", NOW - 9 * DAY, NOW - DAY)
        for job in jobs:
            await job.start()

        async def runs() -> list[str]:
            return [e.detail for e in await first.audit_entries(0)]
        assert await poll(runs, lambda got: len(got) >= 1, "a first retention run", 5.0) == [
            "1 messages emptied, 0 files deleted"]
        await asked_again(*jobs)
        now[0] += DAY - 1  # not yet 24 hours: no run however often they ask
        await asked_again(*jobs)
        assert len(await runs()) == 1
        now[0] += 2  # past 24 hours: one of the two runs it, once
        await poll(runs, lambda got: len(got) >= 2, "a second retention run", 5.0)
        await asked_again(*jobs)
        await asked_again(*jobs)
        assert await runs() == ["1 messages emptied, 0 files deleted"] * 2
    finally:
        for job in jobs:
            await job.stop()
        await second.close()
        await first.close()


async def test_the_job_follows_the_bridges_clock(stores: Factory) -> None:
    store = await opened(stores)
    now = [NOW]
    try:
        await conversation(store, "1", NOW - 9 * DAY, NOW - 3 * DAY)
        await conversation(store, "2", NOW - 9 * DAY, NOW - DAY)
        job = RetentionJob(store, PrivacySettings(keep_messages_days=2), lambda: now[0],
                           check_every=0.01)
        await job.start()  # runs at start-up
        async def runs() -> list[str]:
            return [e.detail for e in await store.audit_entries(0)]
        assert await poll(runs, lambda got: len(got) == 1, "a first retention run", 5.0) == [
            "1 messages emptied, 0 files deleted"]
        now[0] += DAY / 2  # half a day later (the loop keeps asking): not again
        await asked_again(job)
        assert job.last is not None and not job.last.ran
        assert len(await store.audit_entries(0)) == 1
        now[0] += DAY  # the moved clock passes 24 hours: the second conversation is old now
        await poll(runs, lambda got: len(got) == 2, "a second retention run", 5.0)
        await job.stop()
        assert (await runs())[1] == "1 messages emptied, 0 files deleted"
        assert not RetentionJob(store, PrivacySettings(), lambda: NOW).enabled
    finally:
        await store.close()
