"""End-to-end benchmark of `bridge run`: Telegram webhooks in, Slack posts out, on loopback.

    python -m bench.run            # ~2.5 minutes: 15 s load runs, sqlite "full" and "normal"
    python -m bench.run --quick    # ~35 s: 5 s load runs, the default ("full") store only
    options: --duration S  --latency-duration S  --connections N  --chats N  --profile

Everything runs as separate processes on 127.0.0.1: the Slack and Telegram stand-ins
(``python -m bridge.standins``), the system under test, and wrk (one thread) with
bench/load.lua as the load generator.  Every webhook is a unique Telegram update whose text
carries a marker (``mk<update_id>``); chat ids are spread over ``--chats`` conversations.
In the same run it measures:

(a) bare ceiling: an aiohttp app that reads the body and answers 200 (bench/ceilings.py);
(b) relay ceiling: an app that also makes one chat.postMessage to the Slack stand-in per
    webhook before answering, with no store and no checks: (b1) with a raw shared aiohttp
    session, the headline ceiling, and (b2) through slack_sdk's AsyncWebClient as the bridge;
(c) the bridge (`python -m bridge run --config ...`, fresh SQLite DB per run, default
    settings, logging at WARNING), with ``sqlite_synchronous`` "full" (default) and "normal".

Throughput (msg/s) is end to end for every app: markers that reached the Slack stand-in,
divided by the time from starting wrk to the last of those posts (for the bridge this
includes draining its outbox after wrk stopped).  Then an open-loop paced client sends
webhooks at half the bridge's sustained rate; latency is the stand-in's receive time of the
post minus the client's send time (both time.monotonic(), which is system-wide on Linux), so
it is an upper bound of webhook receipt -> Slack API call.  The raw relay is measured at the
same offered rate for comparison.

Lost = acknowledged (200) webhooks whose marker never reached Slack, cross-checked against
the bridge's store after it stopped (committed inbound messages never posted); duplicated =
extra posts of a marker.  RSS is the bridge's VmRSS and peak VmHWM at the end.  The report
is printed and written to bench/results/latest.json.  Targets (not a CI gate): bridge
throughput >= 0.6 x relay (b1), p99 < 50 ms at half rate, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import measure, profile
from bench.ceilings import new_loop
from bench.procs import Proc, Procs, free_port, memory_mib, python_argv
from bench.report import add_ratios, render

SECRET = "bench-webhook-secret"
TG_TOKEN = "123456:BENCH"
CHANNEL = "C0BENCH01"
WRK_BASE = 1_000_000
PACED_BASE = 500_000_000
RESULTS = Path(__file__).with_name("results")


async def start_standin(procs: Procs, kind: str, tag: str) -> tuple[Proc, str]:
    """A stand-in subprocess; returns it and its base URL (``http://127.0.0.1:PORT``)."""
    token = "" if kind == "slack" else TG_TOKEN
    proc = await procs.start(f"{kind}-{tag}", python_argv("-m", "bridge.standins", kind,
                                                          "--port", "0", "--token", token))
    url = proc.ready_line.split()[1]
    return proc, url.split("/api/")[0] if kind == "slack" else url.removesuffix("/bot")


def write_config(path: Path, *, port: int, db: Path, slack: str, telegram: str,
                 synchronous: str) -> None:
    path.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"
[storage]
url = "sqlite:///{db}"
sqlite_synchronous = "{synchronous}"
[slack]
bot_token = "${{SLACK_BOT_TOKEN}}"
signing_secret = "${{SLACK_SIGNING_SECRET}}"
support_channel = "{CHANNEL}"
api_base_url = "{slack}/api/"
[logging]
level = "WARNING"
[connectors.telegram]
enabled = true
bot_token = "${{TELEGRAM_BOT_TOKEN}}"
webhook_secret = "${{TELEGRAM_WEBHOOK_SECRET}}"
api_base_url = "{telegram}/bot"
file_base_url = "{telegram}/file/bot"
""", encoding="utf-8")


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


def rate_of(ids: set[int], by_marker: dict[int, list[float]], started: float) -> float:
    acc = measure.account(ids, by_marker)
    span = acc.last_post - started
    return acc.unique_posted / span if acc.unique_posted and span > 0 else 0.0


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.procs = Procs(workdir)
        self.phase = 0
        self.relay_raw: tuple[str, str] | None = None  # (webhook url, stand-in url), kept up

    def next_base(self) -> int:
        self.phase += 1
        return WRK_BASE * self.phase * 10

    async def wrk(self, url: str, base: int, watch: dict[str, int]) -> measure.WrkResult:
        a = self.args
        return await measure.run_wrk(url, duration=a.duration, connections=a.connections,
                                     threads=1, base=base, chats=a.chats, secret=SECRET,
                                     watch=watch)

    async def ceiling(self, session: aiohttp.ClientSession, kind: str) -> dict[str, Any]:
        print(f"- {kind} ceiling ...", file=sys.stderr, flush=True)
        tag = kind
        argv = ["-m", "bench.ceilings", kind]
        watch: dict[str, int] = {}
        standin_url = ""
        if kind != "bare":
            slack, standin_url = await start_standin(self.procs, "slack", tag)
            argv += ["--slack", f"{standin_url}/api/"]
            watch["slack-standin"] = slack.pid
        app = await self.procs.start(tag, python_argv(*argv))
        watch["app"] = app.pid
        url = f"http://127.0.0.1:{app.ready_line.split()[1]}/webhooks/telegram"
        w = await self.wrk(url, self.next_base(), watch)
        out: dict[str, Any] = {
            "kind": kind, "wrk_req_per_s": round(w.req_per_s, 1), "acked": w.acked,
            "non_200": w.non_200, "socket_errors": w.socket_errors,
            "ack_p50_ms": w.ack_p50_ms, "ack_p99_ms": w.ack_p99_ms, "cpu": w.cpu,
            **memory_mib(app.pid),
        }
        if kind == "bare":
            out["msg_per_s"] = out["wrk_req_per_s"]
            await self.procs.stop(app)
            return out
        await measure.wait_drained(session, standin_url, target=w.generated, timeout=15,
                                   quiet=0.5)
        posts = await measure.fetch_posts(session, standin_url)
        acc = measure.account(w.ids(), posts)
        out.update(msg_per_s=round(rate_of(w.ids(), posts, w.started), 1),
                   posted=acc.unique_posted, lost=max(0, w.acked - acc.unique_posted),
                   duplicated=acc.duplicated,
                   posts_per_s=measure.timeline(w.ids(), posts, w.started))
        if kind == "relay-raw":
            self.relay_raw = (url, standin_url)  # kept for the latency comparison
        else:
            await self.procs.stop(app)
            await self.procs.stop(slack)
        return out

    async def paced(self, session: aiohttp.ClientSession, url: str, standin: str,
                    rate: float, healthz: str | None = None) -> dict[str, Any]:
        before = await measure.post_count(session, standin)
        base = PACED_BASE + self.next_base()
        p = await measure.paced_load(url, rate=rate, duration=self.args.latency_duration,
                                     base=base, chats=self.args.chats, secret=SECRET)
        await measure.wait_drained(session, standin, target=before + len(p.sent_at),
                                   timeout=30, healthz=healthz)
        posts = await measure.fetch_posts(session, standin)
        lat = measure.latencies_ms(p.sent_at, posts)
        acc = measure.account(set(p.sent_at), posts)
        return {
            "offered_per_s": round(rate, 1), "achieved_per_s": round(p.achieved_rate, 1),
            "sent": len(p.sent_at), "statuses": dict(p.statuses), "acked": p.acked,
            "posted": acc.unique_posted, "duplicated": acc.duplicated,
            "lost": max(0, p.acked - acc.unique_posted),
            "p50_ms": round(measure.percentile(lat, 50), 2),
            "p99_ms": round(measure.percentile(lat, 99), 2),
            "max_ms": round(max(lat, default=float("nan")), 2),
            "ack_p50_ms": round(measure.percentile(p.ack_ms, 50), 2),
            "ack_p99_ms": round(measure.percentile(p.ack_ms, 99), 2),
            "ids": set(p.sent_at),
        }

    async def bridge(self, session: aiohttp.ClientSession, synchronous: str) -> dict[str, Any]:
        print(f"- bridge (sqlite_synchronous={synchronous}) ...", file=sys.stderr, flush=True)
        tag = f"bridge-{synchronous}"
        slack, slack_url = await start_standin(self.procs, "slack", tag)
        tg, tg_url = await start_standin(self.procs, "telegram", tag)
        port = free_port()
        rundir = self.workdir / tag
        rundir.mkdir()
        db = rundir / "bridge.db"
        config = rundir / "bridge.toml"
        write_config(config, port=port, db=db, slack=slack_url, telegram=tg_url,
                     synchronous=synchronous)
        env = {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench-signing",
               "TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET}
        bridge = await self.procs.start(tag, python_argv("-m", "bridge", "run", "--config",
                                                         str(config)),
                                        env=env, ready_prefix=None, cwd=rundir)
        root = f"http://127.0.0.1:{port}"
        await wait_healthy(session, f"{root}/healthz", bridge)
        url = f"{root}/webhooks/telegram"
        spy = None
        if self.args.profile and profile.available():
            spy = await profile.record(bridge.pid, self.args.duration - 1,
                                       RESULTS / f"profile-{synchronous}.folded")
        w = await self.wrk(url, self.next_base(),
                           {"bridge": bridge.pid, "slack-standin": slack.pid})
        drained = await measure.wait_drained(session, slack_url, target=w.generated,
                                             timeout=60, healthz=f"{root}/healthz")
        drain_s = time.monotonic() - w.finished
        posts = await measure.fetch_posts(session, slack_url)
        acc = measure.account(w.ids(), posts)
        rate = rate_of(w.ids(), posts, w.started)
        lat = await self.paced(session, url, slack_url, rate / 2, f"{root}/healthz")
        mem = memory_mib(bridge.pid)
        code = await self.procs.stop(bridge)
        posts = await measure.fetch_posts(session, slack_url)  # a stop may still post
        sent = w.ids() | lat.pop("ids")
        acked = w.acked + lat["acked"]
        check = measure.db_check(db, posts, acked, sent)
        unique = len(set(posts) & sent)
        await self.procs.stop(tg)
        await self.procs.stop(slack)
        if spy is not None:
            await spy.wait()
        out: dict[str, Any] = {
            "kind": f"bridge ({synchronous})", "synchronous": synchronous,
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
                               "posts_per_s": measure.timeline(w.ids(), posts, w.started)},
            "latency": lat, "db": check, "exit_code": code, **mem,
        }
        if spy is not None:
            out["profile"] = profile.summarize(
                RESULTS / f"profile-{synchronous}.folded").as_dict()
        return out

    async def run(self) -> dict[str, Any]:
        a = self.args
        results: dict[str, Any] = {
            "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "aiohttp": aiohttp.__version__, "tmp_fs": fs_type(self.workdir)},
            "settings": {"duration_s": a.duration, "latency_duration_s": a.latency_duration,
                         "connections": a.connections, "wrk_threads": 1, "chats": a.chats},
        }
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                for kind in ("bare", "relay-raw", "relay-sdk"):
                    results[kind] = await self.ceiling(session, kind)
                for sync in a.variants:
                    results[f"bridge-{sync}"] = await self.bridge(session, sync)
                main = results[f"bridge-{a.variants[0]}"]
                if self.relay_raw is not None:
                    print("- relay-raw latency at the same offered rate ...", file=sys.stderr)
                    url, standin = self.relay_raw
                    lat = await self.paced(session, url, standin,
                                           main["latency"]["offered_per_s"])
                    lat.pop("ids")
                    results["relay-raw"]["latency"] = lat
            finally:
                await self.procs.stop_all()
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        return results


def fs_type(path: Path) -> str:
    try:
        out = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True,
                             text=True, check=False).stdout.split()
    except OSError:
        return "?"
    return out[-1] if len(out) > 1 else "?"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs, default store only")
    p.add_argument("--duration", type=float, help="seconds per wrk run (15; quick 5)")
    p.add_argument("--latency-duration", type=float, help="seconds of paced load (10; quick 4)")
    p.add_argument("--connections", type=int, default=40,
                   help="wrk connections (Telegram's default webhook max_connections is 40)")
    p.add_argument("--chats", type=int, default=100, help="conversations in parallel")
    p.add_argument("--variants", default=None,
                   help="comma-separated sqlite_synchronous values (full,normal; quick: full)")
    p.add_argument("--profile", action="store_true",
                   help="sample the bridge with py-spy during its wrk run (perturbs it a bit)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (DBs, logs)")
    args = p.parse_args(argv)
    args.duration = args.duration or (5.0 if args.quick else 15.0)
    args.latency_duration = args.latency_duration or (4.0 if args.quick else 10.0)
    variants = args.variants or ("full" if args.quick else "full,normal")
    args.variants = [v.strip() for v in variants.split(",") if v.strip()]
    if not set(args.variants) <= {"full", "normal"} or not args.variants:
        p.error("--variants takes full and/or normal")
    if args.duration > 60 or args.latency_duration > 60 or not 1 <= args.connections <= 1000:
        p.error("keep the load bounded: --duration and --latency-duration <= 60, "
                "1 <= --connections <= 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    # children run in a temp dir (no stray .env): let them import bench.ceilings
    root = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    workdir = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            results = runner.run(Bench(args, workdir).run())
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
