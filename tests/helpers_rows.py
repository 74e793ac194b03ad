"""Read what a bridge committed, synchronously, from whichever store it runs on.

The tests write SQL once, with `?` placeholders; on PostgreSQL it is rewritten to `$1..$n` by
the store's own dialect and run through psycopg's `RawCursor` (native placeholders, so a `%`
or a `?` inside a string literal needs no escaping).  Either way the result is a list of plain
tuples: TEXT -> str, INTEGER and BIGINT -> int, REAL and DOUBLE PRECISION -> float.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any, Protocol

import psycopg

from bridge.settings import StorageSettings
from storage.dialect import POSTGRES
from storage.postgres import is_postgres_url
from storage.sqlite import sqlite_path

Rows = list[tuple[Any, ...]]


class RowReader(Protocol):
    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Rows: ...

    def close(self) -> None: ...


class SQLiteRows:
    """A new connection per read: sees what is committed, holds no lock in between."""

    def __init__(self, path: str) -> None:
        self.path = path

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Rows:
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        pass


def _plain(value: Any) -> Any:
    # SUM() and AVG() of integers are NUMERIC on PostgreSQL; SQLite gives int or float.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class PostgresRows:
    """One autocommit connection (each statement sees the latest commits, and no transaction
    stays open to hold locks), opened at the first read; `search_path` is the bridge's schema."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.url = url
        self.schema = schema
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                   cursor_factory=psycopg.RawCursor)
            if self.schema:
                conn.execute(f'SET search_path TO "{self.schema}"')
            self._conn = conn
        return self._conn

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Rows:
        cur = self._connection().execute(POSTGRES.prepare(sql), params)
        return [tuple(_plain(v) for v in row) for row in cur.fetchall()]

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


def reader_for(storage: StorageSettings) -> RowReader:
    """A reader of the store these settings open (what the bridge under test uses)."""
    if is_postgres_url(storage.url):
        return PostgresRows(storage.url, storage.schema_)
    return SQLiteRows(sqlite_path(storage.url))
