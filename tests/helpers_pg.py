"""The PostgreSQL server the tests use, and a fresh schema per test.

Tests that need PostgreSQL never skip: when the server does not answer, the first of them runs
`scripts/ensure-postgres.sh` (install, start, database `test`, trust on 127.0.0.1) and fails
if it still cannot connect.  `BRIDGE_TEST_POSTGRES_URL` points the tests at another server.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage.dialect import POSTGRES
from tests.waiting import poll

PG_URL = os.environ.get("BRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ENSURE = Path(__file__).resolve().parent.parent / "scripts" / "ensure-postgres.sh"
_ensured: list[bool] = []  # the script runs at most once per test session


async def _ensure_server() -> None:
    _ensured.append(True)
    proc = await asyncio.create_subprocess_exec(
        "bash", str(ENSURE), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        pytest.fail(f"{ENSURE} failed ({proc.returncode}):\n{out.decode(errors='replace')}")


async def connect(schema: str | None = None) -> Any:
    """An asyncpg connection (search_path = `schema` if given); starts the server if needed."""
    settings = {"search_path": schema} if schema else None
    try:
        return await asyncpg.connect(PG_URL, timeout=10, server_settings=settings)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        if _ensured:
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable: {exc}")
    await _ensure_server()
    try:
        return await asyncpg.connect(PG_URL, timeout=10, server_settings=settings)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable even after {ENSURE.name}: {exc}")


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A new, empty schema with a random name, dropped with everything in it afterwards."""
    name = f"test_{secrets.token_hex(6)}"
    admin = await connect()
    try:
        await admin.execute(f"CREATE SCHEMA {name}")
        yield name
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await admin.close()


async def pg_rows(schema: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement (`?` placeholders) in `schema` on a connection of its own."""
    conn = await connect(schema)
    try:
        return [tuple(r) for r in await conn.fetch(POSTGRES.prepare(sql), *params)]
    finally:
        await conn.close()


async def wait_pg_rows(schema: str, sql: str, expected: Sequence[tuple[Any, ...]],
                       timeout: float = 5.0) -> list[tuple[Any, ...]]:
    """Poll until a query returns `expected` (the outbox commits just after the API call);
    fail with the last rows read if it does not within `timeout`."""
    return await poll(lambda: pg_rows(schema, sql), lambda got: got == list(expected),
                      f"{sql!r} to return {list(expected)!r}", timeout)
