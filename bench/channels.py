"""Twilio, Messenger and WhatsApp Cloud traffic through `bridge run`, against the bare and
relay ceilings.

    python -m bench.channels                 # ~60 s: per channel 3,000 in, 1,500 out, receipts
    python -m bench.channels --channels twilio --messages 6000 --replies 3000 --concurrency 64

Everything on 127.0.0.1.  This process is the load generator and hosts the Slack, Twilio and
Graph API stand-ins (pinned to the other core(s)); the app under test is a subprocess pinned
to core 0:

(a) bare: ``python -m bench.ceilings bare``, answering every webhook 200;
(b) relay: ``python -m bench.ceilings relay-raw``: one chat.postMessage per webhook, no store,
    no signature check: the headline ceiling for inbound traffic;
(c) the bridge (`python -m bridge run`, SQLite, default settings) with the Twilio, Messenger
    and WhatsApp Cloud connectors on.

Per channel, each phase a closed loop of ``--concurrency`` clients:
1. inbound: ``--messages`` webhooks signed as the platform signs them (Twilio: the SDK's own
   ``RequestValidator.compute_signature``; Meta: ``X-Hub-Signature-256``), signed before the
   clock starts, from ``--customers`` customers, each body a marker.  Rate = markers that
   reached the Slack stand-in / time from the first request to the last post (store, outbox
   and Slack included).  The ceilings get the same requests.
2. outbound (bridge only): ``--replies`` signed Slack thread replies spread over the threads;
   rate = replies that reached the platform stand-in (Twilio: through the twilio SDK's
   AsyncTwilioHttpClient; Messenger and WhatsApp: the Graph API over the shared aiohttp
   session) / time to the last one.
3. receipts (bridge only): Twilio: a signed ``delivered`` status callback per reply;
   Messenger: a delivery watermark per conversation; WhatsApp: a signed ``delivered`` status
   per reply.  Then the store is checked: every reply ``delivered``.
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

from bench.measure import percentile
from bench.procs import Procs, free_port, memory_mib, python_argv
from bridge.standins import SlackEventSender, SlackStandin
from bridge.standins.config import Secrets, TomlValue, standin_config
from bridge.standins.messenger import (
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    MessengerStandin,
    MessengerWebhookSender,
    meta_json,
    meta_signature,
)
from bridge.standins.signing import slack_signature_headers
from bridge.standins.twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    TwilioStandin,
    TwilioWebhookSender,
)
from bridge.standins.whatsapp import (
    DEFAULT_TOKEN,
    DEFAULT_WABA,
    WhatsAppStandin,
    WhatsAppWebhookSender,
)

CHANNEL = "C0BENCH01"
SIGNING = "bench-signing-secret"
AGENT = "U0AGENT1"
SMS_FROM = "+14155550199"
PAGE, PAGE_TOKEN = "1234567890", "bench-page-token"
ROOT = Path(__file__).resolve().parent.parent  # `python -m bench.ceilings` runs from here
NUMBER_ID = "106540352242922"  # the WhatsApp Cloud business number
MARK = re.compile(r"\b((?:ti|to|fi|fo|wi|wo)\d+)\b")  # twilio/facebook/whatsapp, in/out
CHANNELS = ("twilio", "messenger", "whatsapp")
LETTER = {"twilio": "t", "messenger": "f", "whatsapp": "w"}  # marker: letter + i(n) / o(ut)

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


def latency(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 1), "p99_ms": round(percentile(values, 99), 1)}


async def wait_until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def markers(texts: Sequence[str], prefix: str) -> Counter[str]:
    found = (m.group(1) for t in texts for m in [MARK.search(t)] if m)
    return Counter(f for f in found if f.startswith(prefix))


def psid(n: int) -> str:
    return f"{6000000000000000 + n}"


def inbound_requests(channel: str, base: str, count: int, customers: int) -> list[Request]:
    """Signed inbound webhooks as the platform sends them, one marker each."""
    out: list[Request] = []
    if channel == "twilio":
        url = f"{base}/webhooks/twilio"
        sender = TwilioWebhookSender(url, DEFAULT_AUTH_TOKEN, None)  # type: ignore[arg-type]
        for i in range(count):
            form = sender.sms(from_=f"+1415{5600000 + i % customers:07d}", body=f"ti{i} hi")
            out.append((url, urlencode(form).encode(), {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sender.signature(form)}))
        return out
    if channel == "whatsapp":
        return whatsapp_requests(base, count, customers)
    url = f"{base}/webhooks/messenger"
    meta = MessengerWebhookSender(url, DEFAULT_APP_SECRET, None)  # type: ignore[arg-type]
    for i in range(count):
        raw = meta_json(meta.body(meta.entry(PAGE, meta.message(PAGE, psid(i % customers),
                                                                f"fi{i} hi"))))
        out.append((url, raw, {"Content-Type": "application/json",
                               "X-Hub-Signature-256": meta_signature(DEFAULT_APP_SECRET, raw)}))
    return out


def wa_id(n: int) -> str:
    return f"{4477009000000 + n}"


def signed(url: str, body: dict[str, Any]) -> Request:
    raw = meta_json(body)
    return (url, raw, {"Content-Type": "application/json",
                       "X-Hub-Signature-256": meta_signature(DEFAULT_APP_SECRET, raw)})


def whatsapp_requests(base: str, count: int, customers: int) -> list[Request]:
    url = f"{base}/webhooks/whatsapp"
    wa = WhatsAppWebhookSender(url, None)  # type: ignore[arg-type]
    return [signed(url, wa.body(wa.change(NUMBER_ID, [
        wa.message(wa_id(i % customers), text=f"wi{i} hi")]))) for i in range(count)]


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

    async def ceiling(self, session: aiohttp.ClientSession, slack: SlackStandin, kind: str,
                      channel: str) -> dict[str, Any]:
        port = free_port()
        argv = python_argv("-m", "bench.ceilings", kind, "--port", str(port),
                           "--slack", slack.base_url)
        proc = await self.app(kind, argv, "READY")
        try:
            requests = inbound_requests(channel, f"http://127.0.0.1:{port}",
                                        self.args.messages, self.args.customers)
            seconds, acked, lat = await closed_loop(session, requests, self.args.concurrency)
            return {"msg_per_s": round(acked / seconds), "acked": acked,
                    **latency(lat)}
        finally:
            await self.procs.stop(proc)

    def config(self, port: int, slack: SlackStandin, twilio: TwilioStandin,
               meta: MessengerStandin, wa: WhatsAppStandin) -> Path:
        overrides: dict[str, dict[str, TomlValue]] = {
            "storage": {"sqlite_synchronous": self.args.synchronous},
            "connectors.telegram": {"enabled": False},
            "connectors.twilio": {"enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
                                  "auth_token": DEFAULT_AUTH_TOKEN, "sms_from": SMS_FROM,
                                  "api_base_url": twilio.base_url},
            "connectors.messenger": {"enabled": True, "app_secret": DEFAULT_APP_SECRET,
                                     "verify_token": "bench", "app_id": DEFAULT_APP_ID,
                                     "graph_base_url": meta.base_url,
                                     "pages": [{"id": PAGE, "access_token": PAGE_TOKEN}]},
            "connectors.whatsapp": {"enabled": True, "app_secret": DEFAULT_APP_SECRET,
                                    "verify_token": "bench", "access_token": DEFAULT_TOKEN,
                                    "business_account_id": DEFAULT_WABA,
                                    "graph_base_url": wa.base_url,
                                    "phone_numbers": [{"phone_number_id": NUMBER_ID,
                                                       "number": "+15550783881"}]},
        }
        config = self.workdir / "bridge.toml"
        config.write_text(standin_config(
            port=port, db=self.workdir / "bridge.db", channel=CHANNEL,
            slack_api_url=slack.base_url, telegram_api_url="http://127.0.0.1:9/bot",
            telegram_file_url="http://127.0.0.1:9/f",
            secrets=Secrets(slack.bot_token or "", SIGNING, "1:unused", "unused"),
            overrides=overrides))
        return config

    async def bridge(self, session: aiohttp.ClientSession, slack: SlackStandin,
                     twilio: TwilioStandin, meta: MessengerStandin,
                     wa: WhatsAppStandin) -> dict[str, Any]:
        port = free_port()
        config = self.config(port, slack, twilio, meta, wa)
        proc = await self.app("bridge", python_argv("-m", "bridge", "run", "--config",
                                                    str(config)), None)
        base = f"http://127.0.0.1:{port}"
        result: dict[str, Any] = {}
        try:
            for _ in range(200):
                try:
                    async with session.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            for channel in self.args.channels:
                sent: Callable[[], list[str]] = {
                    "twilio": lambda: [str(m.get("body", "")) for m in twilio.sent],
                    "messenger": meta.texts, "whatsapp": wa.texts}[channel]
                result[channel] = {
                    "inbound": await self._inbound(session, slack, base, channel),
                    "outbound": await self._outbound(session, slack, base, channel, sent),
                    "receipts": await self._receipts(session, base, channel, twilio, meta,
                                                     wa)}
            result["memory"] = memory_mib(proc.pid)
            result["drained_s"] = await self._drain(session, base)
        finally:
            await self.procs.stop(proc)
        result["store"] = self._store_check(self.workdir / "bridge.db")
        return result

    async def _inbound(self, session: aiohttp.ClientSession, slack: SlackStandin, base: str,
                       channel: str) -> dict[str, Any]:
        a, prefix = self.args, LETTER[channel] + "i"
        requests = inbound_requests(channel, base, a.messages, a.customers)

        def posted() -> Counter[str]:
            return markers([m.get("text", "") for m in slack.messages], prefix)

        started = time.monotonic()
        seconds, acked, lat = await closed_loop(session, requests, a.concurrency)
        await wait_until(lambda: len(posted()) >= acked, 60)
        return self._figures(posted(), acked, seconds, time.monotonic() - started, lat)

    async def _outbound(self, session: aiohttp.ClientSession, slack: SlackStandin, base: str,
                        channel: str, sent: Callable[[], list[str]]) -> dict[str, Any]:
        inbound, prefix = LETTER[channel] + "i", LETTER[channel] + "o"
        threads = [str(m["ts"]) for m in slack.parents(CHANNEL)
                   if markers([str(m.get("text", ""))], inbound)]
        agent = SlackEventSender(f"{base}/slack/events", SIGNING, session,
                                 team_id=slack.team_id)
        requests: list[Request] = []
        for i in range(self.args.replies):
            event = agent.message_event(channel=CHANNEL, user=AGENT,
                                        text=f"{prefix}{i} on its way",
                                        thread_ts=threads[i % len(threads)])
            body = json.dumps(event).encode()
            requests.append((agent.bridge_url, body,
                             slack_signature_headers(SIGNING, body, None, "application/json")))
        started = time.monotonic()
        seconds, acked, lat = await closed_loop(session, requests, self.args.concurrency)
        await wait_until(lambda: len(markers(sent(), prefix)) >= acked, 60)
        return self._figures(markers(sent(), prefix), acked, seconds,
                             time.monotonic() - started, lat)

    @staticmethod
    async def _drain(session: aiohttp.ClientSession, base: str) -> float:
        """Wait (up to 60 s) for the outbox to empty (reactions for receipts...); seconds."""
        started = time.monotonic()
        while time.monotonic() - started < 60:
            async with session.get(f"{base}/healthz") as resp:
                if (await resp.json()).get("outbox_pending") == 0:
                    break
            await asyncio.sleep(0.05)
        return round(time.monotonic() - started, 2)

    @staticmethod
    def _figures(seen: Counter[str], acked: int, seconds: float, end: float,
                 lat: list[float]) -> dict[str, Any]:
        return {"acked": acked, "ack_per_s": round(acked / seconds),
                "msg_per_s": round(len(seen) / end), "lost": acked - len(seen),
                "duplicated": sum(n - 1 for n in seen.values()),
                **latency(lat)}

    async def _receipts(self, session: aiohttp.ClientSession, base: str, channel: str,
                        twilio: TwilioStandin, meta: MessengerStandin,
                        wa: WhatsAppStandin) -> dict[str, Any]:
        requests: list[Request] = []
        if channel == "whatsapp":
            ws = WhatsAppWebhookSender(f"{base}/webhooks/whatsapp", session)
            requests = [signed(ws.target_url, ws.body(ws.change(NUMBER_ID, statuses=[
                ws.status(str(m["wamid"]), str(m["to"]), "delivered")])))
                for m in wa.sent if m.get("type") == "text"]
        elif channel == "twilio":
            sender = TwilioWebhookSender(f"{base}/webhooks/twilio", DEFAULT_AUTH_TOKEN, session)
            for sent in twilio.sent:
                form = sender.status(message_sid=str(sent["sid"]), status="delivered",
                                     to=str(sent["to"]))
                requests.append((f"{base}/webhooks/twilio/status", urlencode(form).encode(), {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": sender.signature(form, path="/status")}))
        else:
            fb = MessengerWebhookSender(f"{base}/webhooks/messenger", DEFAULT_APP_SECRET,
                                        session)
            for customer in sorted({str(m["recipient"]["id"]) for m in meta.sent}):
                raw = meta_json(fb.body(fb.entry(PAGE, fb.delivery(PAGE, customer))))
                requests.append((fb.target_url, raw, {
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": meta_signature(DEFAULT_APP_SECRET, raw)}))
        seconds, acked, lat = await closed_loop(session, requests, self.args.concurrency)
        return {"acked": acked, "ack_per_s": round(acked / seconds),
                **latency(lat)}

    def _store_check(self, db: Path) -> dict[str, Any]:
        with sqlite3.connect(db) as conn:
            states = {f"{c}:{d}:{s}": n for c, d, s, n in conn.execute(
                "SELECT connector, direction, state, COUNT(*) FROM messages GROUP BY 1, 2, 3")}
            pending = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE status <> 'done'").fetchone()[0]
        return {"messages": states, "outbox_not_done": pending}

    async def run(self) -> dict[str, Any]:
        os.sched_setaffinity(0, self.load_cpus)
        result: dict[str, Any] = {"args": vars(self.args)}
        connector = aiohttp.TCPConnector(limit=self.args.concurrency * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            for channel in self.args.channels:
                for kind in ("bare", "relay-raw"):
                    async with SlackStandin(bot_token="xoxb-bench") as slack:
                        result.setdefault(channel, {})[kind] = await self.ceiling(
                            session, slack, kind, channel)
            async with SlackStandin(bot_token="xoxb-bench") as slack, \
                    TwilioStandin() as twilio, \
                    MessengerStandin(pages={PAGE: PAGE_TOKEN}) as meta, \
                    WhatsAppStandin(numbers=(NUMBER_ID,), check_window=False) as wa:
                slack.add_user(AGENT, display_name="Dana", real_name="Dana Whitfield")
                for n in range(self.args.customers):
                    meta.add_profile(psid(n), "Customer", str(n))
                result["bridge"] = await self.bridge(session, slack, twilio, meta, wa)
        await self.procs.stop_all()
        return result


def report(r: dict[str, Any]) -> str:
    lines: list[str] = []
    b = r["bridge"]
    for channel in r["args"]["channels"]:
        relay = r[channel]["relay-raw"]
        lines.append(f"{channel}:")
        lines.append(f"  bare ceiling      {r[channel]['bare']['msg_per_s']:>7,} msg/s "
                     f"(p99 {r[channel]['bare']['p99_ms']} ms)")
        lines.append(f"  relay ceiling     {relay['msg_per_s']:>7,} msg/s "
                     f"(p99 {relay['p99_ms']} ms)")
        for phase in ("inbound", "outbound"):
            p = b[channel][phase]
            ratio = p["msg_per_s"] / relay["msg_per_s"] if relay["msg_per_s"] else 0.0
            lines.append(f"  bridge {phase:<9}  {p['msg_per_s']:>6,} msg/s end to end = "
                         f"{ratio:.2f} x relay; acks {p['ack_per_s']:,}/s p50 {p['p50_ms']} "
                         f"p99 {p['p99_ms']} ms; lost {p['lost']}, duplicated "
                         f"{p['duplicated']} of {p['acked']}")
        rc = b[channel]["receipts"]
        lines.append(f"  bridge receipts   {rc['ack_per_s']:>7,} callbacks/s "
                     f"(p99 {rc['p99_ms']} ms), {rc['acked']} acked")
    lines.append(f"store after stop: {b['store']}; RSS {b['memory']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.channels", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channels", default=",".join(CHANNELS),
                   help="comma-separated: twilio, messenger, whatsapp")
    p.add_argument("--messages", type=int, default=3000)
    p.add_argument("--replies", type=int, default=1500)
    p.add_argument("--customers", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--synchronous", choices=["full", "normal"], default="full",
                   help="the bridge's [storage] sqlite_synchronous")
    args = p.parse_args(argv)
    args.channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    if not args.channels or not set(args.channels) <= set(CHANNELS):
        p.error(f"--channels takes some of {','.join(CHANNELS)}")
    with tempfile.TemporaryDirectory(prefix="bench-channels-") as tmp:
        result = asyncio.run(Run(args, Path(tmp)).run())
    print(report(result))
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "channels.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
