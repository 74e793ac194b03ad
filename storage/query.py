"""Transactions as generators: they yield queries and are sent the results ("sans-IO").

A transaction is written once, as a generator that yields `Query` objects and receives each
one's result; it never sees a connection.  A backend runs it: `storage/sqlite.py` on SQLite's
worker thread (many transactions to one commit), `storage/postgres.py` on an asyncpg
connection inside a transaction (re-run from the start when a unique key stopped it).

    def rename(customer_id: int, name: str) -> Tx[bool]:
        changed = yield from execute("UPDATE customers SET display_name = ? WHERE id = ?",
                                     name, customer_id)
        return changed == 1

SQL uses `?` placeholders and `{{token}}` dialect tokens (`storage/dialect.py`).  Because a
transaction may run more than once, it must not change anything outside the database.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar, cast

T = TypeVar("T")


class Want(enum.Enum):
    COUNT = "count"  # how many rows the statement changed
    ONE = "one"  # the first row, or None
    ALL = "all"  # every row
    ID = "id"  # the `id` of the row inserted (the SQL ends with RETURNING id)
    CLAIM = "claim"  # no statement: the key (params[0]) this transaction is about to write


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: tuple[Any, ...]
    want: Want


class Row(Protocol):
    """A result row, read by column name (`row["id"]`): a `sqlite3.Row` or an asyncpg Record.
    Both also iterate in column order, for `for a, b in found` over a two-column SELECT."""

    def __getitem__(self, key: str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


Tx: TypeAlias = Generator[Query, Any, T]
TxFactory: TypeAlias = Callable[[], Tx[T]]  # a fresh run of the transaction each call


def execute(sql: str, *params: Any) -> Tx[int]:
    """Run a statement; the number of rows it changed."""
    count = yield Query(sql, params, Want.COUNT)
    return int(count)


def one(sql: str, *params: Any) -> Tx[Row | None]:
    row = yield Query(sql, params, Want.ONE)
    return cast("Row | None", row)


def rows(sql: str, *params: Any) -> Tx[list[Row]]:
    found = yield Query(sql, params, Want.ALL)
    return list(found)


def insert(sql: str, *params: Any) -> Tx[int]:
    """An INSERT of one row; its new id (`RETURNING id`, which SQLite >= 3.35 has too)."""
    new_id = yield Query(sql + " RETURNING id", params, Want.ID)
    return int(new_id)


def claim(key: str) -> Tx[None]:
    """Say, before writing, what this transaction is about to change (a customer): transactions
    grouped into one commit (PostgreSQL, `storage/pgbatch.py`) that claim the same key run one
    after the other.  Sent to no database; a backend running one transaction at a time skips
    it."""
    yield Query("", (key,), Want.CLAIM)


def rowcount(status: str) -> int:
    """Rows changed, from a PostgreSQL command tag such as `UPDATE 3` or `INSERT 0 1`."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
