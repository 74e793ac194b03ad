"""Group commit on PostgreSQL: many transactions of one instance in one database transaction,
their statements sent together ("lockstep"), so a batch costs a round trip per step, not per
statement of every transaction.

The writer (`storage/postgres.py`) hands `run_lockstep` the batch's transaction generators.
Each round, the statements the generators wait on are grouped by their SQL; a group of one runs
as itself, a larger group runs as one `fetchmany` (asyncpg sends every execution and a single
Sync: one round trip), its rows told apart by an ordinal parameter the SQL is given here
(`SELECT $k::int AS _ord, ...`, `... RETURNING id, $k::int AS _ord`).  The statements of one
group run one after the other in the server, in batch order, so a later one sees an earlier
one's rows: unique keys still stop duplicates (the batch is then rolled back and each
transaction run alone).

Transactions of one batch that touch the same customer must not interleave (both would read
the conversation before either wrote it): they say so with `claim(key)` before they write
(storage/query.py).  A transaction that claims a key another one of the batch holds waits until
that one has finished, as it would on a row lock; if every transaction left waits, the batch
gives up (`Stuck`) and each runs alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from storage.dialect import POSTGRES
from storage.query import Query, Tx, Want, rowcount

ORD = "_ord"


DEFERRED = object()  # an op that waited on a claim before its first statement: next batch


class Stuck(Exception):
    """Every transaction left in the batch waits on another's claim."""


class Counters:
    """What the store sent to the server: for benchmarks (round trips and transactions per
    message) and tests."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.read_round_trips = 0  # of which outside the write path (reads on pooled conns)
        self.transactions = 0
        self.batches = 0
        self.batched_ops = 0
        self.deferred = 0  # transactions moved to the next batch by another's row lock

    def as_dict(self) -> dict[str, int]:
        out = dict(vars(self))
        out["write_round_trips"] = self.round_trips - self.read_round_trips
        return out


class Stripped:
    """A row of a grouped SELECT without its ordinal column (read by name, iterated in order)."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getitem__(self, key: str) -> Any:
        return self._record[key]

    def __iter__(self) -> Iterator[Any]:
        values: Iterator[Any] = iter(self._record.values())
        next(values)
        return values

    def __len__(self) -> int:
        return len(self._record) - 1


def grouped_sql(sql: str, want: Want, nparams: int) -> str | None:
    """The statement with an ordinal column added, or None when it cannot be grouped."""
    mark = f"${nparams + 1}::int AS {ORD}"
    head = sql.lstrip()[:7].upper()
    if want in (Want.ONE, Want.ALL):
        if not head.startswith("SELECT ") or " UNION " in sql.upper():
            return None
        rest = sql.lstrip()[7:]
        if rest.upper().startswith("DISTINCT "):
            return f"SELECT DISTINCT {mark}, {rest[9:]}"
        return f"SELECT {mark}, {rest}"
    if want is Want.ID:
        return f"{sql[:-len(' RETURNING id')]} RETURNING id, {mark}" \
            if sql.endswith(" RETURNING id") else None
    if head.startswith(("UPDATE ", "DELETE ", "INSERT ")) and "RETURNING" not in sql.upper():
        return f"{sql} RETURNING {mark}"
    return None


class _Op:
    __slots__ = ("blocked", "done", "error", "first", "gen", "patient", "query", "result",
                 "started", "wrote")

    def __init__(self, gen: Tx[Any], patient: bool = False) -> None:
        self.gen = gen
        self.patient = patient  # deferred often enough: waits for row locks like anyone
        self.wrote = False  # sent a statement that changes rows
        self.first = "~"  # its first claim: the batch runs in this order (locks taken in order)
        self.started = False  # sent a statement
        self.query: Query | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.blocked: str | None = None  # the key it waits for
        self.done = False


class Lockstep:
    def __init__(self, conn: Any, counters: Counters) -> None:
        self.conn = conn
        self.counters = counters
        self.holders: dict[str, _Op] = {}

    def _advance(self, op: _Op, value: Any) -> None:
        """Send `value`, then answer claims until a real statement or the end."""
        while True:
            try:
                query = op.gen.send(value)
            except StopIteration as stop:
                op.done, op.result, op.query = True, stop.value, None
                for key in [k for k, holder in self.holders.items() if holder is op]:
                    del self.holders[key]
                return
            if query.want is not Want.CLAIM:
                op.query, op.started = query, True
                if not query.sql.lstrip()[:7].upper().startswith("SELECT "):
                    op.wrote = True
                return
            key = str(query.params[0])
            if not op.started and op.first == "~":
                op.first = key
            holder = self.holders.setdefault(key, op)
            if holder is not op:
                op.blocked, op.query = key, query
                return
            value = None

    def _defer(self, op: _Op) -> None:
        op.gen.close()
        op.done, op.result, op.blocked, op.query = True, DEFERRED, None, None
        for key in [k for k, holder in self.holders.items() if holder is op]:
            del self.holders[key]

    async def run(self, gens: Sequence[Tx[Any]], patient: Sequence[bool] = ()) -> list[Any]:
        """Each generator's result, or DEFERRED for one that would have waited before it
        wrote anything (on another's claim in this batch, or on a row another instance's
        transaction holds: `FOR UPDATE SKIP LOCKED`); it is run again in the next batch rather
        than hold this one up.  `patient` ones wait for row locks instead."""
        ops = [_Op(gen, bool(patient) and patient[i]) for i, gen in enumerate(gens)]
        order_in = {id(op): i for i, op in enumerate(ops)}
        for op in ops:
            self._advance(op, None)
            if op.blocked is not None:
                self._defer(op)
        # Instances lock rows in one order (claims sorted), so their commits never deadlock
        # on them.
        ops.sort(key=lambda op: op.first)
        while True:
            for op in ops:  # a finished holder frees its keys for those waiting
                if op.blocked is not None and op.blocked not in self.holders:
                    key, op.blocked = op.blocked, None
                    self.holders[key] = op
                    self._advance(op, None)
            ready = [op for op in ops if not op.done and op.blocked is None]
            if not ready:
                if all(op.done for op in ops):
                    return [op.result for op in sorted(ops, key=lambda o: order_in[id(o)])]
                raise Stuck("every transaction left in the batch waits on another's claim")
            groups: dict[tuple[str, Want, bool], list[_Op]] = {}
            for op in ready:
                assert op.query is not None
                skip = (op.query.want is Want.ONE and not op.wrote and not op.patient
                        and "{{for_update}}" in op.query.sql)
                groups.setdefault((op.query.sql, op.query.want, skip), []).append(op)
            for (sql, want, skip), members in groups.items():
                params = [m.query.params for m in members]  # type: ignore[union-attr]
                prepared = POSTGRES.prepare(sql)
                if skip:
                    results = await self._skip_locked(prepared, params)
                else:
                    results = await self._execute(prepared, want, params)
                for member, value in zip(members, results, strict=True):
                    if value is DEFERRED:
                        self._defer(member)
                    else:
                        self._advance(member, value)

    async def _skip_locked(self, sql: str, params: list[tuple[Any, ...]]) -> list[Any]:
        """A `FOR UPDATE` read of transactions that wrote nothing yet: rows locked by another
        transaction are skipped, and those that found nothing because of that are DEFERRED."""
        found = await self._execute(sql.replace(" FOR UPDATE", " FOR UPDATE SKIP LOCKED"),
                                    Want.ONE, params)
        missing = [i for i, row in enumerate(found) if row is None]
        if missing:  # nothing there, or locked: look without locking
            plain = sql.replace(" FOR UPDATE", "")
            there = await self._execute(plain, Want.ONE, [params[i] for i in missing])
            for i, row in zip(missing, there, strict=True):
                if row is not None:
                    found[i] = DEFERRED
                    self.counters.deferred += 1
        return found

    async def _execute(self, sql: str, want: Want, params: list[tuple[Any, ...]]) -> list[Any]:
        conn = self.conn
        self.counters.round_trips += 1
        grouped = grouped_sql(sql, want, len(params[0])) if len(params) > 1 else None
        if grouped is None:
            out: list[Any] = []
            for args in params:
                if len(out):
                    self.counters.round_trips += 1
                out.append(await run_one(conn, sql, want, args))
            return out
        found = await conn.fetchmany(grouped, [(*args, i) for i, args in enumerate(params)])
        by_ord: list[list[Any]] = [[] for _ in params]
        for record in found:
            by_ord[record[ORD]].append(record)
        if want is Want.COUNT:
            return [len(rs) for rs in by_ord]
        if want is Want.ID:
            return [rs[0]["id"] for rs in by_ord]
        if want is Want.ONE:
            return [Stripped(rs[0]) if rs else None for rs in by_ord]
        return [[Stripped(r) for r in rs] for rs in by_ord]


async def run_one(conn: Any, sql: str, want: Want, args: Sequence[Any]) -> Any:
    """One statement (already prepared for PostgreSQL), its result as the transaction wants."""
    if want is Want.COUNT:
        return rowcount(await conn.execute(sql, *args))
    if want is Want.ONE:
        return await conn.fetchrow(sql, *args)
    if want is Want.ALL:
        return await conn.fetch(sql, *args)
    return await conn.fetchval(sql, *args)
