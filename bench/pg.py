"""PostgreSQL for the benchmark: the server up, a schema per bridge run, the store read back.

The bridge variants ``pg`` and ``pg2`` run on the server that `scripts/ensure-postgres.sh`
provides (the tests' server: 127.0.0.1:5432, trust auth, database ``test``, user ``postgres``),
each run in a fresh schema ``bench_<random>`` that is dropped afterwards (``--keep`` keeps it).
The server is shared with whatever else runs on the machine and is not pinned to a core; its
CPU time (every ``postgres`` process) is sampled beside the bridge's.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

from bench.procs import CLK_TCK

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
ENSURE = Path(__file__).resolve().parent.parent / "scripts" / "ensure-postgres.sh"
SETTINGS = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "commit_delay",
            "max_connections", "shared_buffers")
ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Unavailable(Exception):
    """PostgreSQL cannot be used for the benchmark; the message says why and what to do."""


def ensure(url: str) -> None:
    """Run scripts/ensure-postgres.sh (install, start, database, trust auth) when `url` is the
    server it sets up; other servers must already be running."""
    if url != DEFAULT_URL:
        return
    try:
        done = subprocess.run(["bash", str(ENSURE)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{ENSURE} could not run: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise Unavailable(f"{ENSURE} failed (exit {done.returncode}):\n{tail}")


async def server_info(url: str) -> dict[str, str]:
    """The server settings that bear on commit cost, or Unavailable."""
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except ERRORS as exc:
        raise Unavailable(f"cannot connect to PostgreSQL at {url}: {exc}") from exc
    try:
        found = await conn.fetch("SELECT name, setting, unit FROM pg_settings"
                                 " WHERE name = ANY($1::text[])", list(SETTINGS))
    finally:
        await conn.close()
    return {str(r["name"]): f"{r['setting']}{' x ' + r['unit'] if r['unit'] else ''}"
            for r in found}


def new_schema() -> str:
    return f"bench_{secrets.token_hex(5)}"


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def read_store(url: str, schema: str
                     ) -> tuple[dict[int, str], dict[str, int], int | None]:
    """Inbound messages (platform id -> state), outbox rows per status, and lease rows left
    (None without a leases table), read from `schema` after the bridges stopped."""
    conn = await asyncpg.connect(url, timeout=10, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch("SELECT platform_message_id, state FROM messages"
                                " WHERE direction = 'in'")
        outbox = await conn.fetch("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        leases = None
        if await conn.fetchval("SELECT to_regclass('leases') IS NOT NULL"):
            leases = int(await conn.fetchval("SELECT COUNT(*) FROM leases"))
    finally:
        await conn.close()
    return ({int(r["platform_message_id"]): str(r["state"]) for r in rows},
            {str(r["status"]): int(r["n"]) for r in outbox}, leases)


class Pending:
    """Counts the schema's pending outbox rows: with two instances, a row committed by one
    for a lane the other holds is in neither's queue until the holder's next poll, so only
    the database knows the outbox is empty."""

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.schema = schema
        self._conn: Any = None

    async def count(self) -> int:
        if self._conn is None:
            self._conn = await asyncpg.connect(self.url, timeout=10,
                                               server_settings={"search_path": self.schema})
        return int(await self._conn.fetchval(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"))

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


def cpu_seconds() -> float:
    """User + system CPU time of every process named ``postgres`` (the server and its
    backends; a backend that exited during the measurement takes its time with it)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        if raw[raw.find("(") + 1:raw.rfind(")")] != "postgres":
            continue
        fields = raw.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK
