"""A hostile-input probe (issue 16): bad requests at every endpoint of a local bridge, then slow
connections while valid webhooks flow.  Bounded in count and time; loopback only.

    python -m bench.probe --per-endpoint 2000 --slow 200

The bridge runs as `python -m bridge run` (a subprocess, its log in a file) against stand-ins
in this process, with `[server] trusted_proxies = ["127.0.0.1/32"]`, so the slow clients,
connecting from 127.0.0.2, are an outside address.  Printed: requests and status counts per
endpoint, 5xx, rows written by rejected requests, log bytes and tracebacks, open files, and the
latency of valid webhooks during the slow connections.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from bridge.standins import SlackStandin, TelegramStandin
from bridge.standins.config import Secrets, standin_config
from bridge.standins.messenger import DEFAULT_APP_SECRET, MessengerStandin
from bridge.standins.signing import slack_signature_headers
from bridge.standins.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioStandin

SECRET, SIGNING, CHANNEL = "probe-webhook-secret", "probe-signing", "C0PROBE1"
TG_TOKEN = "123456:STANDIN"
ROOT = Path(__file__).resolve().parent.parent
PAGE = "1111111111"
Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


def bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed without holding them in memory."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk, out = b"\0" * (1 << 20), [z.compress(b"\0" * 0)]
    for _ in range(size >> 20):
        out.append(z.compress(chunk))
    out.append(z.flush())
    return b"".join(out)


class Probe:
    def __init__(self, port: int, rng: random.Random, big_bomb: bytes) -> None:
        self.port, self.rng, self.bomb = port, rng, big_bomb
        self.public = f"http://127.0.0.1:{port}"

    def noise(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, 2000))

    def deep(self) -> bytes:
        n = self.rng.randint(2_000, 100_000)
        return b'{"update_id": 1, "message": ' + b"[" * n + b"]" * n + b"}"

    # -- signing -------------------------------------------------------------------------------
    def slack(self, body: bytes, ct: str = "application/json") -> dict[str, str]:
        return slack_signature_headers(SIGNING, body, content_type=ct)

    def meta(self, body: bytes) -> dict[str, str]:
        digest = hmac.new(DEFAULT_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + digest}

    def twilio(self, path: str, params: dict[str, str]) -> Request:
        sig = RequestValidator(DEFAULT_AUTH_TOKEN).compute_signature(self.public + path, params)
        return ("POST", path, urlencode(params).encode(),
                {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})

    # -- what each endpoint gets ---------------------------------------------------------------
    def common(self, path: str, sign: Callable[[bytes], dict[str, str]]) -> list[Request]:
        gz = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        body = self.noise()
        return [
            ("POST", path, body, {"Content-Type": "application/json"}),
            ("POST", path, body, sign(body)),
            ("POST", path, b"not gzip", gz),
            ("POST", path, b"not gzip", {**sign(b"not gzip"), **gz}),
            ("POST", path, self.bomb, {**sign(self.bomb), **gz}),
            ("POST", path, self.deep(), sign(self.deep())),
            ("POST", path, b"{}", {**sign(b"{}"), "Content-Type": "text/xml"}),
            ("POST", path, b"\xff\xfe\x00", sign(b"\xff\xfe\x00")),
        ]

    def telegram(self) -> list[Request]:
        def sign(_: bytes) -> dict[str, str]:
            return {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
        chat = self.rng.randint(1, 10**6)
        odd = (b'{"update_id": %d, "message": {"message_id": 1, "date": 1, "chat": {"id": %d, '
               b'"type": "private"}, "from": {"id": %d, "is_bot": false, "first_name": "A"}, '
               b'"text": "x\\ud800\\u0000y"}}' % (chat, chat, chat))
        huge = odd.replace(b'"message_id": 1', b'"message_id": ' + b"9" * 5000)
        return [*self.common("/webhooks/telegram", sign),
                ("POST", "/webhooks/telegram", odd, sign(odd)),
                ("POST", "/webhooks/telegram", huge, sign(huge))]

    def slack_events(self) -> list[Request]:
        event = {"type": "event_callback", "event_id": f"Ev{self.rng.random()}", "event": {
            "type": "message", "channel": CHANNEL, "user": "U1", "ts": "2.0",
            "thread_ts": "1.0", "text": "!unlink 99999999999999999999"}}
        changed = {"type": "event_callback", "event": {
            "type": "message", "subtype": "message_changed", "channel": CHANNEL,
            "message": "a string"}}
        forms = [{"type": "view_submission", "view": None, "user": {"id": "U1"}},
                 {"type": "block_actions", "user": {"id": "U1"},
                  "actions": [{"action_id": "bridge_retry", "value": "9" * 10_000}]}]
        out = self.common("/slack/events", self.slack)
        for data in (event, changed):
            raw = json.dumps(data).encode().replace(b"99999", b"99999\\ud800", 1)
            out.append(("POST", "/slack/events", raw, self.slack(raw)))
        for form in forms:
            raw = urlencode({"payload": json.dumps(form)}).encode()
            out.append(("POST", "/slack/events", raw,
                        self.slack(raw, "application/x-www-form-urlencoded")))
        return out

    def twilio_hooks(self, path: str) -> list[Request]:
        def sign(body: bytes) -> dict[str, str]:
            return self.twilio(path, {"Body": body.decode("latin-1")[:50]})[3]
        sid = f"SM{self.rng.getrandbits(128):032x}"
        return [*self.common(path, sign),
                self.twilio(path, {"MessageSid": sid, "From": "+1", "To": "+2",
                                   "NumMedia": "9" * 5000, "MessageStatus": "sent\x00"}),
                self.twilio(path, {"MessageSid": sid, "MediaUrl0": "http://127.0.0.1:1/x"})]

    def messenger(self) -> list[Request]:
        attach = json.dumps({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": "6001"}, "recipient": {"id": PAGE}, "timestamp": 10**400,
             "message": {"mid": "m1", "text": "\udc80"}}]}]}).encode()
        return [*self.common("/webhooks/messenger", self.meta),
                ("POST", "/webhooks/messenger", attach, self.meta(attach))]

    def media(self) -> list[Request]:
        token = "".join(self.rng.choice("abcXYZ019_-.~%!") for _ in range(self.rng.randint(0,
                                                                                       300)))
        return [("GET", "/media/" + token.replace("%", "%25"), b"", {}),
                ("GET", "/media/" + "A" * 43, b"", {})]


def rows(db: Path) -> tuple[int, ...]:
    with sqlite3.connect(db) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("messages", "outbox", "customers", "identities"))


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def send(session: aiohttp.ClientSession, base: str, req: Request) -> int:
    method, path, body, headers = req
    try:
        async with session.request(method, base + path, data=body or None,
                                   headers=headers) as resp:
            await resp.read()
            return resp.status
    except aiohttp.ClientError:
        return 0  # the bridge closed the connection (counted as "closed")


async def slow_client(port: int, refused: Counter[str], stop: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=("127.0.0.2", 0))
    except OSError:
        refused["connect failed"] += 1
        return
    started = time.monotonic()
    try:  # over a cap, the bridge answers 503 at once
        line = await asyncio.wait_for(reader.readline(), 0.5)
        refused["503" if line.startswith(b"HTTP/1.1 503") else "closed at once"] += 1
        writer.close()
        return
    except TimeoutError:
        pass
    writer.write(b"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    try:
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            try:
                line = await asyncio.wait_for(reader.readline(), 1.0)
            except TimeoutError:
                continue
            refused["503" if line.startswith(b"HTTP/1.1 503") else
                    f"closed after {time.monotonic() - started:.0f}s"] += 1
            return
        refused["still open"] += 1
    except (ConnectionError, OSError):
        refused[f"closed after {time.monotonic() - started:.0f}s"] += 1
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="probe-"))
    async with SlackStandin() as slack, \
            TelegramStandin(token=TG_TOKEN) as telegram, TwilioStandin() as twilio, \
            MessengerStandin(pages={PAGE: "page-token"}) as meta:
        port = args.port
        db, log = work / "bridge.db", work / "bridge.log"
        (work / "bridge.toml").write_text(standin_config(
            port=port, db=db, channel=CHANNEL, slack_api_url=slack.base_url,
            telegram_api_url=telegram.base_url, telegram_file_url=telegram.file_base_url,
            secrets=Secrets(slack.bot_token or "xoxb-probe", SIGNING, TG_TOKEN, SECRET),
            overrides={
                "server": {"trusted_proxies": ["127.0.0.1/32"],
                           "keepalive_timeout": args.keepalive},
                "logging": {"level": "INFO"},
                "connectors.telegram": {"register_webhook": False},
                "connectors.twilio": {"enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
                                      "auth_token": DEFAULT_AUTH_TOKEN, "sms_from": "+14155550199",
                                      "api_base_url": twilio.base_url},
                "connectors.messenger": {"enabled": True, "app_secret": DEFAULT_APP_SECRET,
                                         "verify_token": "v", "graph_base_url": meta.base_url,
                                         "pages": [{"id": PAGE, "access_token": "page-token"}]},
            }), encoding="utf-8")
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bridge", "run", "--config", str(work / "bridge.toml"),
                stdout=out, stderr=out, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            await run(args, rng, base, port, db, log, proc.pid)
        finally:
            proc.terminate()
            await proc.wait()


async def run(args: argparse.Namespace, rng: random.Random, base: str, port: int, db: Path,
              log: Path, pid: int) -> None:
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while await send(session, base, ("GET", "/healthz", b"", {})) != 200:
            assert time.monotonic() < deadline, "the bridge did not start"
            await asyncio.sleep(0.2)
        print(f"open files at start: {open_files(pid)}")
        probe = Probe(port, rng, bomb(args.bomb_mib << 20))
        endpoints: dict[str, Callable[[], list[Request]]] = {
            "telegram": probe.telegram, "slack": probe.slack_events,
            "twilio": lambda: probe.twilio_hooks("/webhooks/twilio"),
            "twilio/status": lambda: probe.twilio_hooks("/webhooks/twilio/status"),
            "messenger": probe.messenger, "media": probe.media}
        total_5xx = 0
        for name, make in endpoints.items():
            statuses: Counter[int] = Counter()
            leaked, started, sent = 0, time.monotonic(), 0
            while sent < args.per_endpoint:
                for req in make():
                    before = rows(db)
                    status = await send(session, base, req)
                    statuses[status] += 1
                    sent += 1
                    if status >= 300 and rows(db) != before:
                        leaked += 1
                    if sent >= args.per_endpoint:
                        break
            fives = sum(n for s, n in statuses.items() if s >= 500)
            total_5xx += fives
            print(f"{name:14} {sent} requests in {time.monotonic() - started:5.1f}s  "
                  f"statuses {dict(sorted(statuses.items()))}  5xx {fives}  "
                  f"rows by rejected {leaked}")
        print(f"all endpoints: 5xx {total_5xx}")
        await slow_phase(args, session, base, port, pid)
    text = await asyncio.to_thread(log.read_bytes)
    print(f"bridge log: {len(text)} bytes, {text.count(b'Traceback')} tracebacks, "
          f"{text.count(b'rejected')} 'rejected' lines")


async def slow_phase(args: argparse.Namespace, session: aiohttp.ClientSession, base: str,
                     port: int, pid: int) -> None:
    refused: Counter[str] = Counter()
    stop = asyncio.Event()
    slow = [asyncio.create_task(slow_client(port, refused, stop)) for _ in range(args.slow)]
    await asyncio.sleep(1.0)
    during = open_files(pid)
    latencies = []
    for i in range(args.valid):
        update = {"update_id": 10**7 + i, "message": {
            "message_id": i + 1, "date": int(time.time()), "text": f"valid {i}",
            "chat": {"id": 10**7 + i, "type": "private"},
            "from": {"id": 10**7 + i, "is_bot": False, "first_name": "V"}}}
        started = time.monotonic()
        status = await send(session, base, ("POST", "/webhooks/telegram",
                                            json.dumps(update).encode(),
                                            {"Content-Type": "application/json",
                                             "X-Telegram-Bot-Api-Secret-Token": SECRET}))
        latencies.append(time.monotonic() - started)
        assert status == 200, status
        await asyncio.sleep(0.02)
    ms = sorted(x * 1000 for x in latencies)
    print(f"{args.valid} valid webhooks during {args.slow} slow connections from 127.0.0.2: "
          f"p50 {statistics.median(ms):.1f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.1f} ms, "
          f"max {ms[-1]:.1f} ms; open files during {during}")
    await asyncio.wait(slow, timeout=args.keepalive + 15)
    stop.set()
    await asyncio.gather(*slow)
    print(f"slow connections: {dict(sorted(refused.items()))}; "
          f"open files after {open_files(pid)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-endpoint", type=int, default=2000)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--valid", type=int, default=200)
    parser.add_argument("--keepalive", type=float, default=60.0)
    parser.add_argument("--bomb-mib", type=int, default=1024)
    parser.add_argument("--port", type=int, default=18480)
    parser.add_argument("--seed", type=int, default=16)
    asyncio.run(main(parser.parse_args()))
