"""The bridge under test: its variants, and one measured run of a variant (bench/run.py).

A run starts fresh stand-ins and a fresh store (a new SQLite file, or a new PostgreSQL schema
``bench_<random>``), then `bridge run` once or, for ``pg2``, twice on the same database and
schema (different ports); it drives them with wrk (one wrk per instance, the connections split
evenly), waits for the outbox to drain, measures latency with the paced client (alternating
between the instances), stops the bridges and checks the store against the Slack stand-in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp

from bench import measure, pg, profile
from bench.procs import Proc, Procs, free_port, memory_mib, python_argv
from bridge.standins.config import Secrets, TomlValue, standin_config
from storage.postgres import STATS_ENV

SECRET = "bench-webhook-secret"
TG_TOKEN = "123456:BENCH"
CHANNEL = "C0BENCH01"
RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True)
class Variant:
    name: str  # as given to --variants
    store: Literal["sqlite", "postgresql"]
    instances: int = 1
    synchronous: str = "full"  # SQLite only

    @property
    def key(self) -> str:
        return f"bridge-{self.name}"

    @property
    def label(self) -> str:
        if self.store == "sqlite":
            return f"sqlite {self.synchronous}"
        return "postgresql" if self.instances == 1 else f"postgresql x{self.instances}"


VARIANTS = {v.name: v for v in (
    Variant("full", "sqlite"), Variant("normal", "sqlite", synchronous="normal"),
    Variant("pg", "postgresql"), Variant("pg2", "postgresql", instances=2),
)}


class Harness(Protocol):
    """What a bridge run needs from the benchmark (bench.run.Bench)."""

    args: argparse.Namespace
    workdir: Path
    procs: Procs
    phase: int

    def instance_cpus(self, instances: int) -> list[set[int] | None]: ...

    def next_base(self) -> int: ...

    async def wrk(self, urls: list[str], base: int, watch: measure.Watch
                  ) -> measure.WrkResult: ...

    async def paced(self, session: aiohttp.ClientSession, urls: list[str], standin: str,
                    rate: float, idle: measure.Idle | None = None) -> dict[str, Any]: ...


async def start_standin(procs: Procs, kind: str, tag: str) -> tuple[Proc, str]:
    """A stand-in subprocess (`python -m bridge.standins` through bench/standin.py, which keeps
    its GC pauses out of the timings); returns it and its base URL (``http://127.0.0.1:PORT``)."""
    token = "" if kind == "slack" else TG_TOKEN
    proc = await procs.start(f"{kind}-{tag}", python_argv("-m", "bench.standin", kind,
                                                          "--port", "0", "--token", token))
    url = proc.ready_line.split()[1]
    return proc, url.split("/api/")[0] if kind == "slack" else url.removesuffix("/bot")


async def wait_healthy(session: aiohttp.ClientSession, url: str, proc: Proc,
                       timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"bridge exited ({proc.proc.returncode}):\n{proc.log_tail()}")
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"bridge not healthy after {timeout}s:\n{proc.log_tail()}")


def store_counters(path: Path, messages: int) -> dict[str, float]:
    """What the PostgreSQL stores sent to the server (summed over the instances: round trips,
    transactions, group commits), in all and per message acknowledged."""
    totals: dict[str, float] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            for key, value in json.loads(line).items():
                totals[key] = totals.get(key, 0) + value
    for key in ("round_trips", "transactions", "write_round_trips"):
        if key in totals and messages:
            totals[f"{key}_per_msg"] = round(totals[key] / messages, 2)
    if totals.get("batches"):
        totals["ops_per_batch"] = round(totals["batched_ops"] / totals["batches"], 1)
    return totals


async def outbox_pending(session: aiohttp.ClientSession, healthz: Sequence[str]) -> int:
    """Rows queued in the instances' outbox workers (their /healthz)."""
    total = 0
    for url in healthz:
        async with session.get(url) as resp:
            total += int((await resp.json()).get("outbox_pending", 1))
    return total


class Run:
    """One variant, one round: stand-ins, store, instances; `measure()` returns the figures."""

    def __init__(self, h: Harness, session: aiohttp.ClientSession, variant: Variant) -> None:
        self.h = h
        self.session = session
        self.v = variant
        self.rundir = h.workdir / f"{variant.key}-{h.phase}"
        self.db = self.rundir / "bridge.db"
        self.stats = self.rundir / "store-counters.jsonl"
        self.schema = pg.new_schema() if variant.store == "postgresql" else ""
        self.pending = pg.Pending(h.args.pg_url, self.schema) if self.schema else None
        self.bridges: list[Proc] = []
        self.roots: list[str] = []

    def storage(self) -> dict[str, TomlValue]:
        if self.v.store == "sqlite":
            return {"url": f"sqlite:///{self.db}", "sqlite_synchronous": self.v.synchronous}
        return {"url": self.h.args.pg_url, "schema": self.schema,
                "pool_size": self.h.args.pg_pool}

    async def idle(self) -> bool:
        """Nothing left to send: every instance's queue empty and, on PostgreSQL, no pending
        row in the database (a row may wait there for the lane holder's next poll)."""
        if await outbox_pending(self.session, [f"{r}/healthz" for r in self.roots]):
            return False
        return self.pending is None or await self.pending.count() == 0

    async def start_bridges(self, slack_url: str, tg_url: str) -> None:
        env = {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench-signing",
               "TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET}
        if self.schema:  # each PostgreSQL store adds its counters here when it closes
            env[STATS_ENV] = str(self.stats)
        cpus = self.h.instance_cpus(self.v.instances)
        for i in range(self.v.instances):  # all started at once: migrations race, as for real
            port = free_port()
            config = self.rundir / f"bridge-{i + 1}.toml"
            config.write_text(standin_config(
                port=port, db=self.db, channel=CHANNEL, slack_api_url=f"{slack_url}/api/",
                telegram_api_url=f"{tg_url}/bot", telegram_file_url=f"{tg_url}/file/bot",
                secrets=Secrets.from_env(), overrides={"storage": self.storage()},
            ), encoding="utf-8")
            name = self.v.key if self.v.instances == 1 else f"{self.v.key}-{i + 1}"
            self.bridges.append(await self.h.procs.start(
                name, python_argv("-m", "bridge", "run", "--config", str(config)), env=env,
                ready_prefix=None, cwd=self.rundir, cpus=cpus[i]))
            self.roots.append(f"http://127.0.0.1:{port}")
        for proc, root in zip(self.bridges, self.roots, strict=True):
            await wait_healthy(self.session, f"{root}/healthz", proc)

    async def measure(self) -> dict[str, Any]:
        self.rundir.mkdir()
        try:
            return await self._measure()
        finally:
            for proc in self.bridges:  # before the schema goes (no-op when already stopped)
                await self.h.procs.stop(proc)
            if self.pending is not None:
                await self.pending.close()
            if self.schema and not self.h.args.keep:
                try:
                    await pg.drop_schema(self.h.args.pg_url, self.schema)
                except pg.ERRORS as exc:
                    print(f"  could not drop schema {self.schema}: {exc}", file=sys.stderr)

    async def _measure(self) -> dict[str, Any]:
        h, v, session = self.h, self.v, self.session
        slack, slack_url = await start_standin(h.procs, "slack", v.key)
        tg, tg_url = await start_standin(h.procs, "telegram", v.key)
        await self.start_bridges(slack_url, tg_url)
        urls = [f"{root}/webhooks/telegram" for root in self.roots]
        folded = RESULTS / f"profile-{v.name}.folded"
        spy = None
        if h.args.profile and profile.available() and not folded.exists():
            spy = await profile.record(self.bridges[0].pid, h.args.duration - 1, folded,
                                       gil=h.args.profile == "gil")
        watch: measure.Watch = {(f"bridge-{i + 1}" if v.instances > 1 else "bridge"): b.pid
                                for i, b in enumerate(self.bridges)}
        watch["slack-standin"] = slack.pid
        if self.schema:
            watch["postgres"] = pg.cpu_seconds
        w = await h.wrk(urls, h.next_base(), watch)
        drained = await measure.wait_drained(session, slack_url, target=w.generated,
                                             timeout=60, idle=self.idle)
        drain_s = time.monotonic() - w.finished
        posts = await measure.fetch_posts(session, slack_url)
        acc = measure.account(w.ids(), posts)
        rate = measure.rate_of(w.ids(), posts, w.started)
        lat = await h.paced(session, urls, slack_url, rate / 2, self.idle)
        mems = [memory_mib(b.pid) for b in self.bridges]
        codes = list(await asyncio.gather(*(h.procs.stop(b) for b in self.bridges)))
        posts = await measure.fetch_posts(session, slack_url)  # a stop may still post
        sent = w.ids() | lat["_ids"]
        acked = w.acked + lat["acked"]
        leases_left: int | None = None
        if self.schema:
            states, outbox, leases_left = await pg.read_store(h.args.pg_url, self.schema)
        else:
            states, outbox = measure.read_sqlite(self.db)
        check = measure.store_check(states, outbox, posts, acked, sent)
        if leases_left is not None:
            check["leases_left"] = leases_left
        unique = len(set(posts) & sent)
        await h.procs.stop(tg)
        await h.procs.stop(slack)
        out: dict[str, Any] = {
            "variant": v.name, "label": v.label, "store": v.store, "instances": v.instances,
            "msg_per_s": round(rate, 1), "wrk_req_per_s": round(w.req_per_s, 1),
            "acked": acked, "non_200": w.non_200 + sum(
                n for s, n in lat["statuses"].items() if s != "200"),
            "socket_errors": w.socket_errors, "posted": unique,
            "lost": max(acked - unique, check["committed_not_posted"]),
            "duplicated": sum(len(posts[i]) - 1 for i in sent if i in posts),
            "unexpected_posts": len(set(posts) - sent),
            "drained": drained, "drain_s": round(drain_s, 2),
            "ack_p50_ms": w.ack_p50_ms, "ack_p99_ms": w.ack_p99_ms, "cpu": w.cpu,
            "throughput_run": {"acked": w.acked, "posted": acc.unique_posted,
                               "duplicated": acc.duplicated,
                               "completed_per_instance": w.completed_per_url,
                               "posts_per_s": measure.timeline(w.ids(), posts, w.started)},
            "latency": lat, "db": check, "exit_code": codes[0] if len(codes) == 1 else codes,
            "rss_mib": round(sum(m["rss_mib"] for m in mems), 1),
            "peak_rss_mib": round(sum(m["peak_rss_mib"] for m in mems), 1),
        }
        if v.store == "sqlite":
            out["synchronous"] = v.synchronous
        else:
            out["schema"] = self.schema
            if h.args.keep:
                print(f"  kept schema {self.schema}", file=sys.stderr)
        # CPU per message while wrk ran (ms of CPU time per message delivered).
        out["cpu_ms_per_msg"] = {k: round(share * 1000 / rate, 3) if rate else 0.0
                                 for k, share in w.cpu.items()}
        if self.schema:
            out["store_counters"] = store_counters(self.stats, acked)
        if v.instances > 1:
            out["rss_mib_instances"] = [m["rss_mib"] for m in mems]
        if spy is not None:
            await spy.wait()
            out["profile"] = profile.summarize(folded).as_dict()
        return out
