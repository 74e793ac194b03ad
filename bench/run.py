"""End-to-end benchmark of `bridge run`: Telegram webhooks in, Slack posts out, on loopback.

    python -m bench.run            # ~4 min: 2 rounds x 10 s per app, variants full,normal,pg,pg2
    python -m bench.run --quick    # ~35 s: 1 round x 5 s per app, the default store (full)
    python -m bench.run --quick --variants full,pg,pg2   # ~60 s
    options: --duration S  --rounds N  --connections N  --chats N  --variants LIST
             --pg-url URL  --pg-pool N  --pg2-cpus one|two  --profile[=wall]  --no-pin  --keep

Everything is a separate process on 127.0.0.1: the Slack and Telegram stand-ins
(``python -m bridge.standins`` via bench/standin.py, which only keeps the stand-in's own GC
pauses out of the timings), the app under test, and wrk (one thread) with bench/load.lua as
the load generator.  Every webhook is a unique Telegram update whose text carries a marker
(``mk<update_id>``); chat ids are spread over ``--chats`` conversations.  Measured in the
same run, each from a fresh process (and, for the bridge, a fresh store and stand-ins):

(a) bare ceiling: an aiohttp app that reads the body and answers 200 (bench/ceilings.py);
(b) relay ceiling: an app that also makes one chat.postMessage to the Slack stand-in per
    webhook before answering, with no store and no checks: (b1) with a raw shared aiohttp
    session, the headline ceiling, and (b2) through slack_sdk's AsyncWebClient as the bridge;
(c) the bridge (`python -m bridge run --config ...`, default settings, logging at WARNING),
    in the variants chosen with --variants (bench/bridges.py):
      full    SQLite, ``sqlite_synchronous = "full"`` (the default)
      normal  SQLite, ``sqlite_synchronous = "normal"``
      pg      PostgreSQL, one instance (``[storage] url`` = --pg-url, default the tests'
              server postgresql://postgres@127.0.0.1:5432/test, ``pool_size`` = --pg-pool)
      pg2     PostgreSQL, two `bridge run` processes on the same database and schema, on two
              ports; wrk's connections are split over them (one wrk process each, results
              summed) and the paced client alternates between them.
    Each PostgreSQL run gets a fresh schema ``bench_<random>`` in that database, dropped at the
    end (kept with --keep).  scripts/ensure-postgres.sh runs first when pg or pg2 is chosen.

The apps run in rounds, A B C D then D C B A, so drift on the machine cancels out; figures are
means over rounds (each round's is kept).  The app under test is pinned to one core, and wrk,
the stand-ins and the paced client share the other(s), the same split for every app.  pg2 by
default (--pg2-cpus one) runs both instances on that same one core: a per-core comparison, like
for like with the ceilings and the other variants, which shows what sharing a database costs,
not what a second core buys.  --pg2-cpus two gives the second instance a core of its own when
there are 3 or more (taken from the load generator's for every app) and, on 2 cores, puts it
on the load generator's core: then pg2 has more CPU than the ceilings and competes with wrk,
so its ratios are not like for like (the report says so).  The PostgreSQL server is shared
with the machine and not pinned (its backends run wherever the scheduler puts them, mostly
the load generator's core while the app's is busy); its CPU is reported as "postgres".

Throughput (msg/s) is end to end for every app: markers that reached the Slack stand-in,
divided by the time from starting wrk to the last of those posts (for the bridge this
includes draining its outbox after wrk stopped).  Then bench/paced.py, an open-loop client in
its own process, sends webhooks at half the bridge's sustained rate; latency is the stand-in's
receive time of the post minus the client's send time (both time.monotonic(), system-wide on
Linux), an upper bound of webhook receipt -> Slack API call.  The raw relay is measured at the
first variant's offered rate as the floor.

Lost = acknowledged (200) webhooks whose marker never reached Slack, cross-checked against
the bridge's store after it stopped (committed inbound messages never posted; PostgreSQL read
with asyncpg); duplicated = extra posts of a marker (with two instances: both posted a row).
RSS is the bridge's VmRSS and peak VmHWM before it stops (pg2: the sum of both instances).
The report is printed and written to bench/results/latest.json.  Targets (not a CI gate): bridge
throughput >= 0.6 x relay (b1), p99 < 50 ms at half rate, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import measure, pg
from bench.bridges import RESULTS, SECRET, VARIANTS, Run, start_standin
from bench.ceilings import new_loop
from bench.procs import Proc, Procs, memory_mib, python_argv
from bench.report import add_ratios, aggregate, latency_summary, render

WRK_BASE = 1_000_000
PACED_BASE = 500_000_000
FULL_VARIANTS = ("full", "normal", "pg", "pg2")  # the default of a full run


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.procs = Procs(workdir)
        self.phase = 0
        self.kept_relay: tuple[Proc, Proc, str, str] | None = None  # app, stand-in, urls
        self.sut_cpus: set[int] | None = None
        self.second_cpus: set[int] | None = None  # pg2's second instance
        self.cpu_note = "not pinned"
        cpus = sorted(os.sched_getaffinity(0))
        if args.pin and len(cpus) >= 2 and shutil.which("taskset"):
            # The app under test gets one core to itself; wrk, the stand-ins and this process
            # (the paced client) share the others.  Same split for every app: comparable.
            self.sut_cpus = self.second_cpus = {cpus[-1]}
            load = cpus[:-1]
            self.cpu_note = f"app under test on CPU {cpus[-1]}"
            if "pg2" in args.variants:
                self.cpu_note += "; pg2: both instances on it (per-core comparison)"
            if "pg2" in args.variants and args.pg2_cpus == "two":
                if len(cpus) >= 3:
                    self.second_cpus, load = {cpus[-2]}, cpus[:-2]
                    self.cpu_note = (f"app under test on CPU {cpus[-1]}; pg2's second "
                                     f"instance on CPU {cpus[-2]}: pg2 has twice the app CPU")
                else:
                    self.second_cpus = {cpus[0]}
                    self.cpu_note = (f"app under test on CPU {cpus[-1]}; pg2's second instance "
                                     f"on CPU {cpus[0]} with the load generator: NOT like for "
                                     "like")
            os.sched_setaffinity(0, set(load))

    def instance_cpus(self, instances: int) -> list[set[int] | None]:
        return [self.sut_cpus, self.second_cpus][:instances]

    def next_base(self) -> int:
        self.phase += 1
        return WRK_BASE * self.phase * 10

    async def wrk(self, urls: list[str], base: int, watch: measure.Watch
                  ) -> measure.WrkResult:
        a = self.args
        return await measure.run_wrk(urls, duration=a.duration, connections=a.connections,
                                     threads=1, base=base, chats=a.chats, secret=SECRET,
                                     watch=watch)

    async def ceiling(self, session: aiohttp.ClientSession, kind: str) -> dict[str, Any]:
        argv = ["-m", "bench.ceilings", kind]
        watch: measure.Watch = {}
        standin_url = ""
        slack: Proc | None = None
        if kind != "bare":
            slack, standin_url = await start_standin(self.procs, "slack", kind)
            argv += ["--slack", f"{standin_url}/api/"]
            watch["slack-standin"] = slack.pid
        app = await self.procs.start(kind, python_argv(*argv), cpus=self.sut_cpus)
        watch["app"] = app.pid
        url = f"http://127.0.0.1:{app.ready_line.split()[1]}/webhooks/telegram"
        w = await self.wrk([url], self.next_base(), watch)
        out: dict[str, Any] = {
            "msg_per_s": round(w.req_per_s, 1), "wrk_req_per_s": round(w.req_per_s, 1),
            "acked": w.acked, "non_200": w.non_200, "socket_errors": w.socket_errors,
            "ack_p50_ms": w.ack_p50_ms, "ack_p99_ms": w.ack_p99_ms, "cpu": w.cpu,
            **memory_mib(app.pid),
        }
        if slack is not None:
            await measure.wait_drained(session, standin_url, target=w.generated, timeout=15,
                                       quiet=0.5)
            posts = await measure.fetch_posts(session, standin_url)
            acc = measure.account(w.ids(), posts)
            out.update(msg_per_s=round(measure.rate_of(w.ids(), posts, w.started), 1),
                       posted=acc.unique_posted, lost=max(0, w.acked - acc.unique_posted),
                       duplicated=acc.duplicated,
                       posts_per_s=measure.timeline(w.ids(), posts, w.started))
        if kind == "relay-raw" and slack is not None:  # kept for the latency comparison
            if self.kept_relay is not None:
                await self.procs.stop(self.kept_relay[0])
                await self.procs.stop(self.kept_relay[1])
            self.kept_relay = (app, slack, url, standin_url)
            return out
        await self.procs.stop(app)
        if slack is not None:
            await self.procs.stop(slack)
        return out

    async def paced(self, session: aiohttp.ClientSession, urls: list[str], standin: str,
                    rate: float, idle: measure.Idle | None = None) -> dict[str, Any]:
        before = await measure.post_count(session, standin)
        base = PACED_BASE + self.next_base()
        p = await measure.paced_load(urls, rate=rate, duration=self.args.latency_duration,
                                     base=base, chats=self.args.chats, secret=SECRET)
        await measure.wait_drained(session, standin, target=before + len(p.sent_at),
                                   timeout=30, idle=idle)
        posts = await measure.fetch_posts(session, standin)
        acc = measure.account(set(p.sent_at), posts)
        return {
            "offered_per_s": round(rate, 1), "achieved_per_s": round(p.achieved_rate, 1),
            "sent": len(p.sent_at), "statuses": dict(p.statuses), "acked": p.acked,
            "posted": acc.unique_posted, "duplicated": acc.duplicated,
            "lost": max(0, p.acked - acc.unique_posted),
            "_lat_ms": measure.latencies_ms(p.sent_at, posts), "_ack_ms": p.ack_ms,
            "_late_ms": p.late_ms,
            "_ids": set(p.sent_at),
        }

    async def run(self) -> dict[str, Any]:
        a = self.args
        results: dict[str, Any] = {
            "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "aiohttp": aiohttp.__version__, "tmp_fs": fs_type(self.workdir)},
            "settings": {"duration_s": a.duration, "latency_duration_s": a.latency_duration,
                         "rounds": a.rounds, "connections": a.connections, "wrk_threads": 1,
                         "chats": a.chats, "variants": a.variants,
                         "app_cpus": sorted(self.sut_cpus) if self.sut_cpus else "any",
                         "cpu_split": self.cpu_note},
            "code": code_state(),
        }
        if any(VARIANTS[v].store == "postgresql" for v in a.variants):
            results["postgres"] = {"url": a.pg_url, "pool_size": a.pg_pool,
                                   "pg2_cpus": a.pg2_cpus, **await pg.server_info(a.pg_url)}
        order = ["bare", "relay-raw", "relay-sdk", *(VARIANTS[v].key for v in a.variants)]
        variants = {VARIANTS[v].key: VARIANTS[v] for v in a.variants}
        phases: dict[str, list[dict[str, Any]]] = {key: [] for key in order}
        started = time.monotonic()
        task = asyncio.current_task()
        if task is not None:  # SIGTERM: cancel, so `finally` still stops every child process
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                for rnd in range(a.rounds):  # A B C D, then D C B A: drift cancels out
                    for key in order if rnd % 2 == 0 else order[::-1]:
                        print(f"- round {rnd + 1}/{a.rounds}: {key} ...", file=sys.stderr,
                              flush=True)
                        if key in variants:
                            phases[key].append(await Run(self, session,
                                                         variants[key]).measure())
                        else:
                            phases[key].append(await self.ceiling(session, key))
                relay_latency = None
                if self.kept_relay is not None:
                    print("- relay-raw latency at the bridge's half rate ...", file=sys.stderr)
                    main = phases[order[3]]
                    rate = sum(p["msg_per_s"] for p in main) / len(main) / 2
                    relay_latency = await self.paced(session, [self.kept_relay[2]],
                                                     self.kept_relay[3], rate)
            finally:
                await self.procs.stop_all()
        for key in order:
            results[key] = aggregate(phases[key])
        if relay_latency is not None:
            results["relay-raw"]["latency"] = latency_summary([relay_latency])
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        return results


def fs_type(path: Path) -> str:
    try:
        out = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True,
                             text=True, check=False).stdout.split()
    except OSError:
        return "?"
    return out[-1] if len(out) > 1 else "?"


def code_state() -> dict[str, Any]:
    """The commit measured and the files changed on top of it (others edit this checkout)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  check=False).stdout.rstrip("\n")
        except OSError:
            return ""
    return {"commit": git("log", "-1", "--format=%h %s")[:120],
            "changed": [ln[3:] for ln in git("status", "--porcelain").splitlines() if ln]}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs, default store only")
    p.add_argument("--duration", type=float, help="seconds per wrk run (10; quick 5)")
    p.add_argument("--latency-duration", type=float,
                   help="seconds of paced load per bridge run (6; quick 4)")
    p.add_argument("--rounds", type=int, help="rounds over all apps, alternating order (2; "
                                               "quick 1)")
    p.add_argument("--connections", type=int, default=40,
                   help="wrk connections (Telegram's default webhook max_connections is 40)")
    p.add_argument("--chats", type=int, default=100, help="conversations in parallel")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated bridge variants among {','.join(VARIANTS)} "
                        f"(default {','.join(FULL_VARIANTS)}; quick: full)")
    p.add_argument("--pg-url", default=pg.DEFAULT_URL,
                   help="PostgreSQL database for pg and pg2 (a fresh schema per run); the "
                        "default is the server scripts/ensure-postgres.sh sets up")
    p.add_argument("--pg-pool", type=int, default=10,
                   help="[storage] pool_size of each PostgreSQL instance (default 10)")
    p.add_argument("--pg2-cpus", choices=["one", "two"], default="one",
                   help="pg2: both instances on the app's core (one, default: per-core "
                        "comparison) or the second on another core (two)")
    p.add_argument("--profile", nargs="?", const="gil", choices=["gil", "wall"],
                   help="sample the bridge with py-spy during its first wrk run (perturbs it a "
                        "little): 'gil' (default) = the thread holding the GIL, 'wall' = every "
                        "busy thread")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the app under test to its own core (default: pinned, the "
                        "load generator and stand-ins share the other cores)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp dir (DBs, logs) and the PostgreSQL schemas")
    args = p.parse_args(argv)
    args.duration = args.duration or (5.0 if args.quick else 10.0)
    args.latency_duration = args.latency_duration or (4.0 if args.quick else 6.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    variants = args.variants or ("full" if args.quick else ",".join(FULL_VARIANTS))
    args.variants = list(dict.fromkeys(v.strip() for v in variants.split(",") if v.strip()))
    if not set(args.variants) <= set(VARIANTS) or not args.variants:
        p.error(f"--variants takes one or more of {','.join(VARIANTS)}")
    if not 1 <= args.pg_pool <= 200:
        p.error("--pg-pool takes 1..200 (storage.pool_size)")
    if (args.duration > 60 or args.latency_duration > 60 or not 1 <= args.rounds <= 5
            or not 1 <= args.connections <= 1000):
        p.error("keep the load bounded: --duration and --latency-duration <= 60, "
                "--rounds <= 5, 1 <= --connections <= 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    if any(VARIANTS[v].store == "postgresql" for v in args.variants):
        try:
            pg.ensure(args.pg_url)
            asyncio.run(pg.server_info(args.pg_url))
        except pg.Unavailable as exc:
            print(f"PostgreSQL is needed for --variants {','.join(args.variants)} and is not "
                  f"usable: {exc}\n(run without pg and pg2, or pass --pg-url)", file=sys.stderr)
            return 2
    RESULTS.mkdir(exist_ok=True)
    for old in RESULTS.glob("profile-*.folded"):
        old.unlink()
    # children run in a temp dir (no stray .env): let them import bench.ceilings
    root = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    workdir = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            results = runner.run(Bench(args, workdir).run())
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; every process the benchmark started was stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    add_ratios(results)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
