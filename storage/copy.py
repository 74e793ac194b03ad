"""Copy one store into another (SQLite into PostgreSQL, or back), ids preserved.

The target is migrated first; every table is then copied in id order with
`INSERT ... ON CONFLICT DO NOTHING`, so a rerun skips what is already there.  PostgreSQL's id
sequences are moved past the copied ids at the end.  Stop the bridge that writes the source
first: rows changed after they were copied are not copied again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from storage import reads
from storage.base import StoreError
from storage.query import Row, Tx, execute, rows
from storage.sqlstore import SQLStore

# Parents before children (foreign keys), each with the key it is read in order of.
TABLES: tuple[tuple[str, str], ...] = (
    ("customers", "id"),
    ("identities", "id"),
    ("identity_claims", "kind, value, identity_id"),
    ("conversations", "id"),  # previous_id always points at a lower id
    ("conversation_changes", "id"),
    ("moved_threads", "slack_channel, slack_thread_ts"),
    ("links", "id"),
    ("handoff_codes", "code_hash"),
    ("messages", "id"),
    ("outbox", "id"),
    ("sent_ids", "connector, platform_id"),
    ("receipts", "connector, platform_id, state"),
    ("slack_events", "event_id"),
    ("connector_state", "connector, key"),
    ("media", "token"),
    ("customer_fields", "customer_id, name"),
    ("response_targets", "id"),
    ("surveys", "id"),
    ("auto_answers", "id"),
    ("canned_replies", "id"),
    ("canned_previews", "token"),
    ("audit_log", "id"),
    ("privacy_jobs", "job"),
)
# Not copied: `leases` (who works what right now; meaningless in another database).
NOT_COPIED = frozenset({"leases"})
PAGE_ROWS = {"media": 16}  # files can be large; everything else is read 500 rows at a time
MAX_PARAMS = 30_000  # below both SQLite's (32766) and PostgreSQL's (32767) limits


@dataclass(frozen=True)
class TableCopy:
    table: str
    copied: int
    skipped: int  # already in the target


def _page(table: str, columns: Sequence[str], order: str, limit: int,
          offset: int) -> Tx[list[Row]]:
    found = yield from rows(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"
                            " LIMIT ? OFFSET ?", limit, offset)
    return found


def _insert(table: str, columns: Sequence[str], page: Sequence[tuple[Any, ...]]) -> Tx[int]:
    marks = "(" + ", ".join("?" for _ in columns) + ")"
    per_statement = max(1, MAX_PARAMS // len(columns))
    added = 0
    for start in range(0, len(page), per_statement):
        chunk = page[start:start + per_statement]
        params: list[Any] = [value for row in chunk for value in row]
        added += yield from execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
            f" {', '.join(marks for _ in chunk)} ON CONFLICT DO NOTHING", *params)
    return added


def _reset_sequences(template: str) -> Tx[None]:
    for table, key in TABLES:
        if key == "id":
            yield from execute(template.format(table=table))


async def check_source(source: SQLStore) -> None:
    if await source.schema_version() == 0:
        raise StoreError(f"source {source.where} holds no bridge schema: it is not a bridge "
                         "store, or was never migrated")
    await source.check_schema()  # refuses a newer or an outdated source, naming the fix


async def copy_store(source: SQLStore, target: SQLStore, page_rows: int = 500) -> list[TableCopy]:
    """Copy every table of `source` into `target`; both open.  Raise `StoreError` subclasses
    for a source that is not migrated to this bridge's version or a target that is newer."""
    await check_source(source)
    await target.migrate()  # raises SchemaTooNew for a newer target
    done: list[TableCopy] = []
    for table, order in TABLES:
        columns = await source._read(partial(reads.table_columns, source.dialect, table))
        theirs = await target._read(partial(reads.table_columns, target.dialect, table))
        if columns != theirs:
            raise StoreError(f"table {table} differs: source has {columns}, target {theirs}")
        limit = PAGE_ROWS.get(table, page_rows)
        copied = seen = 0
        while True:
            page = await source._read(partial(_page, table, columns, order, limit, seen))
            if not page:
                break
            values = [tuple(row) for row in page]
            copied += await target._write(partial(_insert, table, columns, values))
            seen += len(page)
        done.append(TableCopy(table, copied, seen - copied))
    template = target.dialect.reset_sequence
    if template is not None:
        await target._write(lambda: _reset_sequences(template))
    return done
