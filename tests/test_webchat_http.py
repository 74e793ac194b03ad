"""The web chat's endpoints at the HTTP and WebSocket level: the protocol (welcome, ack after
the commit, dedupe by client_id, resume), and bad input answered with a 4xx or an error frame
and no row."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import AGENT, Harness, HarnessFactory
from tests.helpers_webchat import user_hash, webchat_thread

README = Path(__file__).resolve().parent.parent / "README.md"
ORIGIN = "https://shop.example"
SITE_TABLE: dict[str, Any] = {"id": "shop", "allowed_origins": [ORIGIN], "title": "Acme",
                              "identity_secret": "s3cret-for-hmac"}


async def bridge(make_harness: HarnessFactory, **keys: Any) -> Harness:
    table = {"enabled": True, "sites": [{**SITE_TABLE, **keys.pop("site", {})}], **keys}
    return await make_harness({"connectors.webchat": table})


def ws_url(h: Harness, query: str = "") -> str:
    return f"ws://127.0.0.1:{h.port}/webchat/ws?site=shop{query}"


async def connect(h: Harness, query: str = "", origin: str = ORIGIN,
                  ) -> aiohttp.ClientWebSocketResponse:
    ws = await h.session.ws_connect(ws_url(h, query), headers={"Origin": origin})
    welcome = await ws.receive_json(timeout=5)
    assert welcome["type"] == "welcome"
    return ws


async def say(ws: aiohttp.ClientWebSocketResponse, text: str, client_id: str) -> dict[str, Any]:
    await ws.send_json({"type": "message", "client_id": client_id, "text": text})
    frame: dict[str, Any] = await ws.receive_json(timeout=5)
    return frame


async def status_of(h: Harness, query: str, origin: str | None = ORIGIN) -> int:
    headers = {"Origin": origin} if origin else {}
    try:
        ws = await h.session.ws_connect(ws_url(h, query), headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


async def test_message_ack_dedupe_and_resume(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    ws = await connect(h)
    ack = await say(ws, "Hello", "c-1")
    rows = h.rows("SELECT id, text FROM messages WHERE connector = 'webchat'")
    assert ack == {"type": "ack", "client_id": "c-1", "id": rows[0][0]}  # after the commit
    assert await say(ws, "Hello", "c-1") == ack  # a resend: the same id, no second row
    assert h.count("messages") == 1
    thread = await webchat_thread(h)
    assert await h.agent_says(thread, "Hi there") == 200
    pushed = await ws.receive_json(timeout=5)
    assert pushed["type"] == "message" and pushed["text"] == "Hi there"
    assert pushed["author"] == {"name": "Dana", "avatar": ""} and pushed["from"] == "agent"
    await ws.send_json({"type": "resume", "after": ack["id"]})
    again = await ws.receive_json(timeout=5)
    assert again["id"] == pushed["id"] and again["text"] == "Hi there"
    await ws.close()


async def test_a_token_continues_the_visitor_and_a_forged_one_does_not(
        make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    ws = await h.session.ws_connect(ws_url(h), headers={"Origin": ORIGIN})
    token = (await ws.receive_json(timeout=5))["visitor_token"]
    await say(ws, "first", "c-1")
    await ws.close()
    back = await connect(h, f"&token={token}")
    await back.send_json({"type": "resume", "after": 0})
    assert (await back.receive_json(timeout=5))["text"] == "first"
    await back.close()
    visitor, _, mac = token.partition(".")
    forged = await connect(h, f"&token={visitor}.{'0' * len(mac)}")
    await forged.send_json({"type": "resume", "after": 0})
    await forged.send_json({"type": "ping"})
    assert await forged.receive_json(timeout=5) == {"type": "pong"}  # nothing of `first`
    await forged.close()


@pytest.mark.parametrize("frame, code", [
    ("not json", "bad_json"), ("[1]", "bad_frame"), ('{"type": "shout"}', "unknown_type"),
    ('{"type": "message", "client_id": "a b", "text": "x"}', "bad_client_id"),
    ('{"type": "message", "client_id": "c", "text": "   "}', "empty"),
    ('{"type": "message", "client_id": "c", "text": 5}', "empty"),
    ('{"type": "message", "client_id": "c", "text": "' + "x" * 101 + '"}', "too_long"),
    ('{"type": "resume", "after": -1}', "bad_resume"),
])
async def test_bad_frames_get_an_error_and_no_row(make_harness: HarnessFactory, frame: str,
                                                  code: str) -> None:
    h = await bridge(make_harness, max_text_chars=100)
    ws = await connect(h)
    await ws.send_str(frame)
    got = await ws.receive_json(timeout=5)
    assert got["type"] == "error" and got["code"] == code
    await ws.send_bytes(b"\x00\x01")
    assert (await ws.receive_json(timeout=5))["code"] == "text_frames_only"
    assert h.count("messages") == 0
    await ws.close()


async def test_refused_before_the_socket_opens(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness, site={"require_verification": True})
    good = f"&user_id=alice&user_hash={user_hash('alice', 's3cret-for-hmac')}"
    assert await status_of(h, good) == 101
    assert await status_of(h, good, origin="https://evil.example") == 403
    assert await status_of(h, good, origin=None) == 403
    assert await status_of(h, f"&user_id=alice&user_hash={'0' * 64}") == 403  # forged
    assert await status_of(h, "&user_id=alice") == 403  # no hash
    assert await status_of(h, "") == 403  # anonymous on a verifying site
    assert await status_of(h, "&user_id=%0a") == 400
    async with h.session.get(f"{h.url}/webchat/ws?site=nope",
                             headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 404
    assert h.count("messages") == 0 and h.count("identities") == 0


async def test_config_only_for_allowed_origins(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    url = f"{h.url}/webchat/config?site=shop"
    async with h.session.post(url, headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert (await resp.json())["title"] == "Acme"
    for headers in ({"Origin": "https://evil.example"}, {}):
        async with h.session.post(url, headers=headers) as resp:
            assert resp.status == 403
            assert "Access-Control-Allow-Origin" not in resp.headers
    async with h.session.post(f"{h.url}/webchat/config?site=other",
                              headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 404


async def test_the_script_is_small_and_compressed(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    async with h.session.get(f"{h.url}/widget.js", headers={"Accept-Encoding": "gzip"},
                             auto_decompress=False) as resp:
        assert resp.status == 200 and resp.headers["Content-Encoding"] == "gzip"
        assert resp.content_type == "application/javascript"
        body = await resp.read()
    assert len(body) < 8 * 1024
    assert b"BridgeChat" in gzip.decompress(body)


async def test_rate_limits(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness, messages_per_minute=3, connections_per_minute=4)
    ws = await connect(h)
    codes = [(await say(ws, f"m{i}", f"c-{i}"))["type"] for i in range(4)]
    assert codes == ["ack", "ack", "ack", "error"]
    await ws.close()
    statuses = [await status_of(h, "") for _ in range(4)]
    assert statuses == [101, 101, 101, 429]  # the first connection counted too
    assert h.count("messages") == 3




async def test_every_webchat_route_is_in_the_readme(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    readme = README.read_text(encoding="utf-8")
    table = readme[readme.index("### HTTP endpoints"):readme.index("### Promises for bad input")]
    rows = set(re.findall(r"^\| `([A-Z]+ /[^`]*)`", table, re.MULTILINE))
    served = {f"{r.method} {r.resource.canonical}" for r in h.bridge.web_app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    assert {"GET /widget.js", "POST /webchat/config", "GET /webchat/ws"} <= served
    assert sorted(s for s in served - rows if "{" not in s) == []


async def test_pictures_only_from_allowed_hosts(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    h.slack.users[AGENT]["profile"]["image_72"] = "http://127.0.0.1:9/not-slack.png"
    ws = await connect(h)
    await say(ws, "Hello", "c-1")
    assert await h.agent_says(await webchat_thread(h), "Hi") == 200
    pushed = await ws.receive_json(timeout=5)
    assert pushed["author"] == {"name": "Dana", "avatar": ""}  # not fetched, not linked
    await ws.close()
    for key in ("0" * 32, "nope"):
        async with h.session.get(f"{h.url}/webchat/avatar/{key}") as resp:
            assert resp.status == 404
