"""Twilio traffic through `bridge run`, against the bare and relay ceilings of the same run.

    python -m bench.channels                 # ~40 s: 3,000 SMS in, 1,500 replies out, receipts
    python -m bench.channels --messages 6000 --replies 3000 --concurrency 64 --customers 300

Everything on 127.0.0.1.  This process is the load generator and hosts the Slack and Twilio
stand-ins (pinned to the other core(s)); the app under test is a subprocess pinned to core 0:

(a) bare: ``python -m bench.ceilings bare``, answering every webhook 200;
(b) relay: ``python -m bench.ceilings relay-raw``: one chat.postMessage per webhook, no store,
    no signature check: the headline ceiling for inbound traffic;
(c) the bridge (`python -m bridge run`, SQLite, default settings) with the Twilio connector on.

Phases, each a closed loop of ``--concurrency`` clients:
1. inbound: ``--messages`` SMS webhooks, each signed with the twilio SDK's own
   ``RequestValidator.compute_signature`` (signed before the clock starts), from ``--customers``
   numbers, each body a marker.  Rate = markers that reached the Slack stand-in / time from the
   first request to the last post (store, outbox and Slack included).  For the ceilings the
   same forms are posted to ``/webhooks/twilio``.
2. outbound (bridge only): ``--replies`` signed Slack thread replies spread over the threads;
   rate = replies that reached the Twilio stand-in's Messages.json (through the twilio SDK's
   AsyncTwilioHttpClient) / time to the last create.
3. receipts (bridge only): a signed ``delivered`` status callback for every create; rate =
   callbacks acknowledged / time, then the store is checked: every reply ``delivered``.
Lost = acknowledged but never posted/sent; duplicated = a marker posted or sent twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench.procs import Procs, free_port, memory_mib, python_argv
from bridge.standins import SlackEventSender, SlackStandin
from bridge.standins.config import Secrets, standin_config
from bridge.standins.signing import slack_signature_headers
from bridge.standins.twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    TwilioStandin,
    TwilioWebhookSender,
)

CHANNEL = "C0BENCH01"
SIGNING = "bench-signing-secret"
AGENT = "U0AGENT1"
SMS_FROM = "+14155550199"
ROOT = Path(__file__).resolve().parent.parent  # `python -m bench.ceilings` runs from here
MARK = re.compile(r"\b([mr]k\d+)\b")

Request = tuple[str, bytes, dict[str, str]]  # url, body, headers


async def closed_loop(session: aiohttp.ClientSession, requests: Sequence[Request],
                      concurrency: int) -> tuple[float, int, list[float]]:
    """Post every request with `concurrency` workers: (seconds, acked, latencies in ms)."""
    queue = iter(requests)
    acked = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal acked
        for url, body, headers in queue:
            began = time.monotonic()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status == 200:
                    acked += 1
            latencies.append((time.monotonic() - began) * 1000)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started, acked, latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def wait_until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def markers(texts: Sequence[str]) -> Counter[str]:
    return Counter(m.group(1) for t in texts for m in [MARK.search(t)] if m)


def sms_requests(url: str, count: int, customers: int, prefix: str) -> list[Request]:
    """Signed inbound SMS forms, as Twilio posts them."""
    sender = TwilioWebhookSender(url, DEFAULT_AUTH_TOKEN, None)  # type: ignore[arg-type]
    out: list[Request] = []
    for i in range(count):
        form = sender.sms(from_=f"+1415{5600000 + i % customers:07d}", body=f"{prefix}{i} hi")
        out.append((url, urlencode(form).encode(), {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sender.signature(form)}))
    return out


class Run:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.procs = Procs(workdir)
        ncpu = os.cpu_count() or 2
        self.app_cpus = {0}
        self.load_cpus = set(range(1, ncpu)) or {0}

    async def app(self, name: str, argv: list[str], ready: str | None) -> Any:
        return await self.procs.start(name, argv, ready_prefix=ready, cpus=self.app_cpus,
                                      cwd=ROOT)

    async def ceiling(self, session: aiohttp.ClientSession, slack: SlackStandin,
                      kind: str) -> dict[str, Any]:
        port = free_port()
        argv = python_argv("-m", "bench.ceilings", kind, "--port", str(port),
                           "--slack", slack.base_url)
        proc = await self.app(kind, argv, "READY")
        try:
            url = f"http://127.0.0.1:{port}/webhooks/twilio"
            requests = sms_requests(url, self.args.messages, self.args.customers, "mk")
            before = len(slack.messages)
            seconds, acked, lat = await closed_loop(session, requests, self.args.concurrency)
            return {"msg_per_s": round(acked / seconds), "acked": acked,
                    "posted": len(slack.messages) - before,
                    "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1)}
        finally:
            await self.procs.stop(proc)

    async def bridge(self, session: aiohttp.ClientSession, slack: SlackStandin,
                     twilio: TwilioStandin) -> dict[str, Any]:
        port = free_port()
        db = self.workdir / "bridge.db"
        config = self.workdir / "bridge.toml"
        config.write_text(standin_config(
            port=port, db=db, channel=CHANNEL, slack_api_url=slack.base_url,
            telegram_api_url="http://127.0.0.1:9/bot", telegram_file_url="http://127.0.0.1:9/f",
            secrets=Secrets(slack.bot_token or "", SIGNING, "1:unused", "unused"),
            overrides={"connectors.telegram": {"enabled": False},
                       "connectors.twilio": {"enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
                                             "auth_token": DEFAULT_AUTH_TOKEN,
                                             "sms_from": SMS_FROM,
                                             "api_base_url": twilio.base_url}}))
        proc = await self.app("bridge", python_argv("-m", "bridge", "run", "--config",
                                                    str(config)), None)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    async with session.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            result = {"inbound": await self._inbound(session, slack, base),
                      "outbound": await self._outbound(session, slack, twilio, base),
                      "receipts": await self._receipts(session, twilio, base)}
            result["memory"] = memory_mib(proc.pid)
        finally:
            await self.procs.stop(proc)
        result["store"] = self._store_check(db)
        return result

    async def _inbound(self, session: aiohttp.ClientSession, slack: SlackStandin,
                       base: str) -> dict[str, Any]:
        a = self.args
        requests = sms_requests(f"{base}/webhooks/twilio", a.messages, a.customers, "mk")
        started = time.monotonic()
        seconds, acked, lat = await closed_loop(session, requests, a.concurrency)
        await wait_until(lambda: len(markers([m.get("text", "") for m in slack.messages]))
                         >= acked, 60)
        end = time.monotonic() - started
        seen = markers([m.get("text", "") for m in slack.messages])
        return {"acked": acked, "ack_per_s": round(acked / seconds),
                "msg_per_s": round(len(seen) / end), "lost": acked - len(seen),
                "duplicated": sum(n - 1 for n in seen.values()),
                "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1)}

    async def _outbound(self, session: aiohttp.ClientSession, slack: SlackStandin,
                        twilio: TwilioStandin, base: str) -> dict[str, Any]:
        threads = [str(m["ts"]) for m in slack.parents(CHANNEL)]
        agent = SlackEventSender(f"{base}/slack/events", SIGNING, session,
                                 team_id=slack.team_id)
        requests: list[Request] = []
        for i in range(self.args.replies):
            event = agent.message_event(channel=CHANNEL, user=AGENT, text=f"rk{i} on its way",
                                        thread_ts=threads[i % len(threads)])
            body = json.dumps(event).encode()
            requests.append((agent.bridge_url, body,
                             slack_signature_headers(SIGNING, body, None, "application/json")))
        started = time.monotonic()
        seconds, acked, lat = await closed_loop(session, requests, self.args.concurrency)
        await wait_until(lambda: len(twilio.sent) >= acked, 60)
        end = time.monotonic() - started
        seen = markers([str(m.get("body", "")) for m in twilio.sent])
        return {"acked": acked, "ack_per_s": round(acked / seconds),
                "msg_per_s": round(len(seen) / end), "lost": acked - len(seen),
                "duplicated": sum(n - 1 for n in seen.values()),
                "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1)}

    async def _receipts(self, session: aiohttp.ClientSession, twilio: TwilioStandin,
                        base: str) -> dict[str, Any]:
        sender = TwilioWebhookSender(f"{base}/webhooks/twilio", DEFAULT_AUTH_TOKEN, session)
        requests: list[Request] = []
        for sent in twilio.sent:
            form = sender.status(message_sid=str(sent["sid"]), status="delivered",
                                 to=str(sent["to"]))
            requests.append((f"{base}/webhooks/twilio/status", urlencode(form).encode(), {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sender.signature(form, path="/status")}))
        seconds, acked, lat = await closed_loop(session, requests, self.args.concurrency)
        return {"acked": acked, "ack_per_s": round(acked / seconds),
                "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1)}

    def _store_check(self, db: Path) -> dict[str, Any]:
        with sqlite3.connect(db) as conn:
            states = dict(conn.execute(
                "SELECT direction || ':' || state, COUNT(*) FROM messages GROUP BY 1").fetchall())
            pending = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE status <> 'done'").fetchone()[0]
        return {"messages": states, "outbox_not_done": pending}

    async def run(self) -> dict[str, Any]:
        os.sched_setaffinity(0, self.load_cpus)
        result: dict[str, Any] = {"args": vars(self.args)}
        connector = aiohttp.TCPConnector(limit=self.args.concurrency * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            for kind in ("bare", "relay-raw"):
                async with SlackStandin(bot_token="xoxb-bench") as slack:
                    result[kind] = await self.ceiling(session, slack, kind)
            async with SlackStandin(bot_token="xoxb-bench") as slack, \
                    TwilioStandin() as twilio:
                slack.add_user(AGENT, display_name="Dana", real_name="Dana Whitfield")
                result["bridge"] = await self.bridge(session, slack, twilio)
        await self.procs.stop_all()
        return result


def report(r: dict[str, Any]) -> str:
    b, relay = r["bridge"], r["relay-raw"]
    lines = [f"bare ceiling      {r['bare']['msg_per_s']:>7,} msg/s (p99 {r['bare']['p99_ms']} ms)",
             f"relay ceiling     {relay['msg_per_s']:>7,} msg/s (p99 {relay['p99_ms']} ms)"]
    for phase in ("inbound", "outbound"):
        p = b[phase]
        ratio = p["msg_per_s"] / relay["msg_per_s"] if relay["msg_per_s"] else 0.0
        lines.append(f"bridge {phase:<9} {p['msg_per_s']:>7,} msg/s end to end = {ratio:.2f} x "
                     f"relay; acks {p['ack_per_s']:,}/s p50 {p['p50_ms']} p99 {p['p99_ms']} ms;"
                     f" lost {p['lost']}, duplicated {p['duplicated']} of {p['acked']}")
    rc = b["receipts"]
    lines.append(f"bridge receipts   {rc['ack_per_s']:>7,} callbacks/s (p99 {rc['p99_ms']} ms), "
                 f"{rc['acked']} acked")
    lines.append(f"store after stop  {b['store']}; RSS {b['memory']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.channels", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=3000)
    p.add_argument("--replies", type=int, default=1500)
    p.add_argument("--customers", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-channels-") as tmp:
        result = asyncio.run(Run(args, Path(tmp)).run())
    print(report(result))
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "channels.json").write_text(json.dumps(result, indent=2))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
