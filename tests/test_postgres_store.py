"""The bridge on PostgreSQL: the `storage.schema` option, and the full loop with rows checked
in the database (customer on Telegram -> Slack thread -> agent reply -> Telegram)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from bridge.registry import create_store
from bridge.settings import StorageSettings
from storage.base import StoreError
from storage.postgres import PostgresStore, redacted
from tests.conftest import AGENT_NAME, CHANNEL, HarnessFactory
from tests.helpers_pg import PG_URL, fresh_schema, pg_rows, wait_pg_rows


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with fresh_schema() as name:
        yield name


@pytest.mark.parametrize(("table", "message"), [
    ({"url": "sqlite:///b.db", "schema": "bridge"}, "for PostgreSQL only"),
    ({"schema": "bridge"}, "for PostgreSQL only"),
    ({"url": PG_URL, "schema": "Bridge"}, "plain lower-case name"),
    ({"url": PG_URL, "schema": "x; DROP TABLE y"}, "plain lower-case name"),
    ({"url": PG_URL, "schema": "pg_catalog"}, "plain lower-case name"),
])
def test_schema_option_is_checked(table: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        StorageSettings.model_validate(table)
    [error] = caught.value.errors()
    assert error["loc"] == ("schema",) and "storage.schema" in error["msg"]
    assert message in error["msg"]


def test_the_url_scheme_picks_the_store() -> None:
    store = create_store(StorageSettings.model_validate({"url": PG_URL, "schema": "bridge"}))
    assert isinstance(store, PostgresStore) and store.schema == "bridge"
    assert create_store(StorageSettings.model_validate({"url": "postgres://u@h/db"})).dialect \
        .name == "postgres"
    with pytest.raises(StoreError, match=r"storage\.schema"):
        PostgresStore(PG_URL, schema="Not-Valid")
    assert redacted("postgresql://bridge:s3cret@db:5432/x") == "postgresql://bridge:***@db:5432/x"


async def test_an_unreachable_server_is_a_store_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreError, match="cannot open PostgreSQL store"):
        await store.open()
    assert not store.is_open


@pytest.mark.backends("postgres")  # the test points the bridge at its own schema
async def test_customer_to_slack_to_customer_on_postgres(
    make_harness: HarnessFactory, schema: str,
) -> None:
    h = await make_harness({"storage": {"url": PG_URL, "schema": schema}})
    async with h.session.get(f"{h.url}/healthz") as resp:
        health = await resp.json()
    assert health["store"] == "postgres" and health["schema_version"] >= 2

    assert await h.customer_says(4242, "Where is order #123?", first_name="Ann",
                                 last_name="Lee", username="ann_l") == 200
    posts = await h.slack.wait_for("chat.postMessage", 1)
    assert posts[0].params["channel"] == CHANNEL and "thread_ts" not in posts[0].params
    assert "Where is order #123?" in posts[0].params["text"]
    thread = h.slack.parents(CHANNEL)[0]["ts"]
    sql = "SELECT slack_channel, slack_thread_ts, address, status FROM conversations"
    expected_conv = [(CHANNEL, thread, "4242", "open")]
    assert await wait_pg_rows(schema, sql, expected_conv) == expected_conv

    assert await h.agent_says(thread, "It ships today") == 200
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert sent[0].params["chat_id"] == "4242"
    assert sent[0].params["text"] == f"<b>{AGENT_NAME}</b>\nIt ships today"
    assert await h.agent_says(thread, "note: VIP customer") == 200  # stays in Slack

    assert await h.customer_says(4242, "Thanks!", first_name="Ann", last_name="Lee") == 200
    await h.slack.wait_for("chat.postMessage", 2)
    assert h.slack.calls_to("chat.postMessage")[1].params["thread_ts"] == thread

    expected = [("in", "posted", "Ann Lee", "Where is order #123?"),
                ("out", "sent", AGENT_NAME, "It ships today"),
                ("note", "note", "", "note: VIP customer"),
                ("in", "posted", "Ann Lee", "Thanks!")]
    sql = "SELECT direction, state, author_name, text FROM messages ORDER BY id"
    assert await wait_pg_rows(schema, sql, expected) == expected
    done = [("done", 3)]
    sql = "SELECT status, COUNT(*) FROM outbox GROUP BY status"
    assert await wait_pg_rows(schema, sql, done) == done
    assert await pg_rows(schema, "SELECT COUNT(*) FROM customers") == [(1,)]
    assert len(h.telegram.calls_to("sendMessage")) == 1
