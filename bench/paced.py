"""Open-loop paced webhook client: ``python -m bench.paced URL [URL...] --rate R --duration S``.

Sends ``rate`` Telegram updates per second on a fixed schedule (a slow answer never delays the
next send), each with a unique update_id and marker, to the URLs in turn (several bridge
instances: update i goes to URL i mod n), and prints one JSON object: each update's
send time (``time.monotonic()``), the answers' statuses and times, how late each send was
against its schedule (the client's own accuracy), and the achieved rate.

It runs in a process of its own with the cyclic GC frozen/off for the bounded run, so neither
the orchestrator's heap nor a collection here shows up as the bridge's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections import Counter

import aiohttp

from bench.ceilings import new_loop
from bench.measure import update_body


async def paced(urls: list[str], rate: float, duration: float, base: int, chats: int,
                secret: str) -> dict[str, object]:
    count = max(1, int(rate * duration))
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
    bodies = [update_body(base + i, chats) for i in range(count)]
    sent_at: dict[int, float] = {}
    late_ms: list[float] = []
    statuses: Counter[str] = Counter()
    ack_ms: list[float] = []
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def one(i: int, due: float) -> None:
            t0 = sent_at[base + i] = time.monotonic()
            late_ms.append((t0 - due) * 1000)
            try:
                async with session.post(urls[i % len(urls)], data=bodies[i],
                                        headers=headers) as resp:
                    await resp.read()
                    statuses[str(resp.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
            ack_ms.append((time.monotonic() - t0) * 1000)

        # warm one connection per URL up front so the first sends do not pay the handshake
        for url in urls:
            async with session.get(url.rsplit("/webhooks/", 1)[0] + "/healthz") as resp:
                await resp.read()
        start = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        for i in range(count):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        span = time.monotonic() - start
        await asyncio.gather(*tasks)
    return {"sent_at": sent_at, "statuses": dict(statuses), "ack_ms": ack_ms,
            "late_ms": late_ms, "achieved_rate": (count - 1) / span if span > 0 else 0.0}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.paced", description=__doc__)
    p.add_argument("urls", nargs="+", metavar="URL")
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--base", type=int, required=True)
    p.add_argument("--chats", type=int, default=100)
    p.add_argument("--secret", default="")
    a = p.parse_args(argv)
    if not (0 < a.rate <= 20_000 and 0 < a.duration <= 60):
        p.error("keep it bounded: 0 < --rate <= 20000, 0 < --duration <= 60")
    gc.collect()
    gc.freeze()
    gc.disable()  # bounded run (<= 1.2 M small objects); no collection pauses mid-measurement
    with asyncio.Runner(loop_factory=new_loop) as runner:
        result = runner.run(paced(a.urls, a.rate, a.duration, a.base, a.chats, a.secret))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
