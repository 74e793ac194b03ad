"""PostgreSQL conversation store (asyncpg, connection pool).

The transactions are the backend-neutral generators of `storage/transactions.py`; `run_async`
drives one on an asyncpg connection, with `?` rewritten to `$1..$n` (`storage/dialect.py`).
Each write runs in its own transaction on a pooled connection.  Several bridge instances may
share the database: when a transaction loses a race on a unique key (two instances received
the same webhook) it is rolled back and run again from the start, and then finds the row the
other instance committed.  Migrations run under a transaction-scoped advisory lock.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.base import StoreError
from storage.dialect import POSTGRES, valid_schema_name
from storage.query import Tx, TxFactory, Want, rowcount
from storage.sqlstore import SQLStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# A transaction stopped by one of these saw another one's commit: run it again from the start.
RETRYABLE = (asyncpg.UniqueViolationError, asyncpg.SerializationError,
             asyncpg.DeadlockDetectedError)
ATTEMPTS = 10


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


async def run_async(conn: Any, tx: Tx[T]) -> T:
    """Drive a transaction generator on an asyncpg connection (inside the caller's transaction)."""
    result: Any = None
    while True:
        try:
            query = tx.send(result)
        except StopIteration as stop:
            return cast(T, stop.value)
        sql = POSTGRES.prepare(query.sql)
        if query.want is Want.COUNT:
            result = rowcount(await conn.execute(sql, *query.params))
        elif query.want is Want.ONE:
            result = await conn.fetchrow(sql, *query.params)
        elif query.want is Want.ALL:
            result = await conn.fetch(sql, *query.params)
        else:
            result = await conn.fetchval(sql, *query.params)


class PostgresStore(SQLStore):
    dialect = POSTGRES
    shared = True  # several bridge instances may run on one PostgreSQL database

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 10) -> None:
        if not is_postgres_url(url):
            raise StoreError(f"not a PostgreSQL URL: {redacted(url)!r}"
                             " (expected postgresql://user@host:5432/db)")
        if schema is not None and not valid_schema_name(schema):
            raise StoreError(f"storage.schema {schema!r} is not a valid schema name (lower-case"
                             " letters, digits and _, not starting with a digit or pg_)")
        self.url = url
        self.schema = schema
        self._pool_size = pool_size
        self._pool: Any = None  # asyncpg.Pool

    @property
    def where(self) -> str:
        schema = f" (schema {self.schema})" if self.schema else ""
        return f"{redacted(self.url)}{schema}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        # Quoted, so that a name that is also an SQL keyword ("user") still works.
        settings = {"search_path": f'"{self.schema}"'} if self.schema else None
        try:
            if self.schema:
                await self._create_schema()
            self._pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=self._pool_size, server_settings=settings)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # and timeouts
            raise StoreError(f"cannot open PostgreSQL store {self.where}: {exc}") from exc

    async def _create_schema(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1",
                                   self.schema) is None:
                async with conn.transaction():
                    # Serialised with migrations, so instances starting together never race.
                    await conn.execute(POSTGRES.migration_lock)
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        finally:
            await conn.close()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    # -- running transactions ----------------------------------------------------------------
    async def _write(self, make: TxFactory[T]) -> T:
        pool = self._require_pool()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with pool.acquire() as conn, conn.transaction():
                    return await run_async(conn, make())
            except RETRYABLE as exc:
                if attempt == ATTEMPTS:
                    raise
                log.debug("transaction lost a race (%s); running it again", exc)
        raise AssertionError("unreachable")

    async def _read(self, make: TxFactory[T]) -> T:
        async with self._require_pool().acquire() as conn:
            return await run_async(conn, make())
