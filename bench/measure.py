"""Load generation and accounting for the benchmark: wrk runs, paced latency, posts, the DB."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.procs import children_cpu_seconds, cpu_seconds

LUA = Path(__file__).with_name("load.lua")
SPLIT = 5_000_000  # update_id offset between the wrk processes of one run (one per instance)
# What to sample CPU time of during a wrk run: a pid, or a function returning CPU seconds.
Watch = dict[str, int | Callable[[], float]]
MARKER = re.compile(r"mk(\d+)")
# The same body as load.lua writes, for the paced (latency) client.
BODY = ('{{"update_id":{id},"message":{{"message_id":{id},'
        '"from":{{"id":{chat},"is_bot":false,"first_name":"Ann","language_code":"en"}},'
        '"chat":{{"id":{chat},"first_name":"Ann","type":"private"}},'
        '"date":{date},"text":"bench mk{id}"}}}}')


def update_body(update_id: int, chats: int) -> bytes:
    chat = 1000 + update_id % chats
    return BODY.format(id=update_id, chat=chat, date=int(time.time())).encode()


@dataclass
class WrkResult:
    started: float  # time.monotonic() just before wrk was launched
    finished: float
    generated: int  # requests built by the Lua script (completed + in flight at the stop)
    completed: int  # responses received
    non_200: int  # HTTP status >= 400
    socket_errors: dict[str, int]
    req_per_s: float
    ack_p50_ms: float
    ack_p99_ms: float
    ranges: list[tuple[int, int]]  # (first update_id, count) per wrk thread
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core per process
    completed_per_url: list[int] = field(default_factory=list)

    @property
    def acked(self) -> int:
        return self.completed - self.non_200

    def ids(self) -> set[int]:
        return {first + i for first, n in self.ranges for i in range(n)}


def _cpu(what: int | Callable[[], float]) -> float:
    return what() if callable(what) else cpu_seconds(what)


async def run_wrk(urls: Sequence[str], *, duration: float, connections: int, threads: int,
                  base: int, chats: int, secret: str, watch: Watch) -> WrkResult:
    """Drive `urls` with wrk + load.lua for `duration` seconds, one wrk process per URL (wrk
    takes one host), the connections split evenly; sample CPU of `watch` meanwhile.  The
    processes' results are summed; their ack p50 is the mean weighted by requests and their
    ack p99 the worse of the two (percentiles of two runs do not combine exactly)."""
    n = len(urls)
    conns = [max(threads, connections // n + (1 if i < connections % n else 0))
             for i in range(n)]
    before = {name: _cpu(what) for name, what in watch.items()}
    wrk_before = children_cpu_seconds()
    started = time.monotonic()
    procs = [await asyncio.create_subprocess_exec(
        "wrk", f"-t{threads}", f"-c{conns[i]}", f"-d{duration:g}s", "--timeout", "10s",
        "-s", str(LUA), url,
        env={**os.environ, "BENCH_BASE": str(base + i * SPLIT), "BENCH_CHATS": str(chats),
             "BENCH_SECRET": secret},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL) for i, url in enumerate(urls)]
    outs = await asyncio.gather(*(proc.communicate() for proc in procs))
    finished = time.monotonic()
    elapsed = finished - started
    cpu = {name: round((_cpu(what) - before[name]) / elapsed, 2)
           for name, what in watch.items()}
    cpu["wrk"] = round((children_cpu_seconds() - wrk_before) / elapsed, 2)
    parts: list[dict[str, str]] = []
    for proc, (out, _) in zip(procs, outs, strict=True):
        text = out.decode(errors="replace")
        line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_RESULT ")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{text}")
        parts.append(dict(item.split("=", 1) for item in line.split()[1:]))
    completed = [int(kv["requests"]) for kv in parts]
    errors: Counter[str] = Counter()
    for kv in parts:
        errors.update({k: int(kv[k]) for k in ("connect", "read", "write", "timeout")
                       if int(kv[k])})
    return WrkResult(
        started=started, finished=finished,
        generated=sum(int(kv["generated"]) for kv in parts), completed=sum(completed),
        non_200=sum(int(kv["status"]) for kv in parts), socket_errors=dict(errors),
        req_per_s=sum(c / (int(kv["duration_us"]) / 1e6) for c, kv in zip(completed, parts,
                                                                           strict=True)),
        ack_p50_ms=sum(c * int(kv["p50_us"]) for c, kv in zip(completed, parts, strict=True))
        / max(1, sum(completed)) / 1000,
        ack_p99_ms=max(int(kv["p99_us"]) for kv in parts) / 1000,
        ranges=[(int(a), int(b)) for kv in parts
                for a, b in (r.split(":") for r in kv["ranges"].split(","))],
        cpu=cpu, completed_per_url=completed,
    )


# -- the Slack stand-in's record ---------------------------------------------------------------
async def post_count(session: aiohttp.ClientSession, standin: str) -> int:
    async with session.get(f"{standin}/_standin/stats") as resp:
        stats: dict[str, Any] = await resp.json()
    return int(stats["calls"].get("chat.postMessage", 0))


async def fetch_posts(session: aiohttp.ClientSession, standin: str) -> dict[int, list[float]]:
    """Every chat.postMessage the stand-in took, as marker -> receive times (monotonic)."""
    async with session.get(f"{standin}/_standin/posts") as resp:
        posts: list[list[Any]] = await resp.json()
    by_marker: dict[int, list[float]] = {}
    for at, text in posts:
        found = MARKER.search(str(text))
        if found:
            by_marker.setdefault(int(found.group(1)), []).append(float(at))
    return by_marker


Idle = Callable[[], Awaitable[bool]]  # True when the app under test has nothing left to send


async def wait_drained(session: aiohttp.ClientSession, standin: str, *, target: int,
                       timeout: float, quiet: float = 1.0, idle: Idle | None = None) -> bool:
    """Wait until `target` posts arrived, or the count stopped moving for `quiet` seconds,
    and `idle` says the outbox is empty (duplicates count as posts, so reaching `target` alone
    does not prove every row was sent).  False on timeout."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = await post_count(session, standin)
        if count >= target and (idle is None or await idle()):
            return True
        now = time.monotonic()
        if count != last:
            last, since = count, now
        elif now - since >= quiet:
            if idle is None or await idle():
                return True
        await asyncio.sleep(0.1)
    return False


@dataclass
class Delivery:
    """What reached Slack for a set of acknowledged webhooks."""

    sent: int
    unique_posted: int
    duplicated: int  # extra posts of markers already posted
    first_post: float
    last_post: float  # the last marker's first post (a late duplicate does not count)


def account(ids: set[int], by_marker: dict[int, list[float]]) -> Delivery:
    hits = [by_marker[i] for i in ids if i in by_marker]
    firsts = [min(h) for h in hits]
    return Delivery(
        sent=len(ids), unique_posted=len(hits),
        duplicated=sum(len(h) - 1 for h in hits),
        first_post=min(firsts, default=0.0), last_post=max(firsts, default=0.0),
    )


def rate_of(ids: set[int], by_marker: dict[int, list[float]], started: float) -> float:
    """Markers posted per second, from `started` to the last marker's first post."""
    acc = account(ids, by_marker)
    span = acc.last_post - started
    return acc.unique_posted / span if acc.unique_posted and span > 0 else 0.0


def timeline(ids: set[int], by_marker: dict[int, list[float]], started: float) -> list[int]:
    """Posts per second since `started` (first post of each marker): is the rate steady?"""
    buckets: Counter[int] = Counter(int(min(by_marker[i]) - started) for i in ids
                                    if i in by_marker)
    return [buckets.get(s, 0) for s in range(max(buckets, default=-1) + 1)]


# -- paced open-loop client (bench/paced.py, in its own process) -------------------------------
@dataclass
class Paced:
    sent_at: dict[int, float]
    statuses: Counter[str]
    ack_ms: list[float]
    late_ms: list[float]  # actual send minus scheduled send: the client's own accuracy
    offered_rate: float
    achieved_rate: float

    @property
    def acked(self) -> int:
        return self.statuses.get("200", 0)


async def paced_load(urls: Sequence[str], *, rate: float, duration: float, base: int, chats: int,
                     secret: str) -> Paced:
    """Run bench/paced.py (a fresh process, so this one's heap and GC stay out of the
    timings) and read its JSON answer."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.paced", *urls, "--rate", f"{rate:.3f}", "--duration",
        f"{duration:g}", "--base", str(base), "--chats", str(chats), "--secret", secret,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"paced client failed ({proc.returncode}): {err.decode()[-2000:]}")
    data: dict[str, Any] = json.loads(out)
    return Paced(sent_at={int(k): float(v) for k, v in data["sent_at"].items()},
                 statuses=Counter(data["statuses"]), ack_ms=data["ack_ms"],
                 late_ms=data["late_ms"], offered_rate=rate,
                 achieved_rate=float(data["achieved_rate"]))


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latencies_ms(sent_at: dict[int, float], by_marker: dict[int, list[float]]) -> list[float]:
    """Per message: first Slack stand-in receipt minus webhook send time."""
    return [(min(by_marker[i]) - t) * 1000 for i, t in sent_at.items() if i in by_marker]


# -- the bridge's store, read after it stopped -------------------------------------------------
def read_sqlite(db: Path) -> tuple[dict[int, str], dict[str, int]]:
    """Inbound messages (platform id -> state) and outbox rows per status."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT platform_message_id, state FROM messages"
                            " WHERE direction = 'in'").fetchall()
        outbox = dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
    return {int(pid): str(state) for pid, state in rows}, outbox


def store_check(states: dict[int, str], outbox: dict[str, int],
                by_marker: dict[int, list[float]], acked: int, sent: set[int]
                ) -> dict[str, Any]:
    """Cross-check the store (either backend) against the stand-in: committed, posted, marked
    posted."""
    committed = set(states)
    posted = set(by_marker) & sent
    return {
        "committed": len(committed),
        "acked_200": acked,
        "acked_not_committed": max(0, acked - len(committed)),
        "committed_not_posted": len(committed - posted),
        "posted_not_committed": len(posted - committed),
        "posted_not_marked_posted": sum(1 for i in posted & committed
                                        if states[i] != "posted"),
        "states": dict(Counter(states.values())),
        "outbox": outbox,
    }
