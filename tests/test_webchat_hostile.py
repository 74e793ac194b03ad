"""Hostile input on the web chat's socket and long-poll: JSON nested past any real frame,
control characters and lone surrogates in the text and the page's fields, frames past the
size limit, resume cursors past any id.  Each gets an error frame or a 4xx, and no row (or a
clean one); never a 5xx or a dropped socket."""

from __future__ import annotations

import json

import pytest

from connectors.base import SendError
from tests.conftest import HarnessFactory
from tests.test_webchat_http import ORIGIN, bridge, connect, say
from vocab.models import ConversationId, MessageId, OutboundFile, OutboundMessage

DEEP = "[" * 30_000 + "]" * 30_000  # under the 64 KiB frame limit


async def test_deep_json_on_the_socket_is_a_bad_frame(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    ws = await connect(h)
    await ws.send_str(DEEP)
    got = await ws.receive_json(timeout=5)
    assert got == {"type": "error", "code": "bad_json"}
    assert (await say(ws, "still here", "c-1"))["type"] == "ack"  # the socket lived on
    assert h.count("messages") == 1
    await ws.close()


async def test_deep_json_on_the_poll_is_a_400(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    async with h.session.post(f"{h.url}/webchat/poll?site=shop", data=DEEP.encode(),
                              headers={"Origin": ORIGIN, "Content-Type": "application/json"},
                              ) as resp:
        assert resp.status == 400
    nested = {"after": 0, "frames": [{"type": "message", "client_id": "d", "text": "x",
                                      "page": json.loads("[" * 70 + "]" * 70)}]}
    async with h.session.post(f"{h.url}/webchat/poll?site=shop", json=nested,
                              headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 400
    assert h.count("messages") == 0


async def test_nul_and_lone_surrogates_are_stored_clean(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    ws = await connect(h, "&name=Eve%00Null")
    raw = ('{"type": "message", "client_id": "n-1", "text": "hi \\ud800 there\\u0000",'
           ' "page": {"url": "https://shop.example/\\u0000x", "invitation": "Help?\\u0000",'
           ' "language": "en\\ud800", "local_time": "\\u0007noon"}}')
    await ws.send_str(raw)
    ack = await ws.receive_json(timeout=5)
    assert ack["type"] == "ack", ack
    text, markup = h.rows("SELECT text, markup FROM messages")[0]
    assert text == "hi ? there"
    assert "\x00" not in markup and "\x07" not in markup and "https://shop.example/x" in markup
    assert [tuple(r) for r in h.rows("SELECT display_name FROM identities")] == [("EveNull",)]
    assert [tuple(r) for r in h.rows("SELECT invitation FROM conversations")] == [("Help?",)]
    await ws.close()


async def test_oversized_frames_and_forged_cursors(make_harness: HarnessFactory) -> None:
    h = await bridge(make_harness)
    ws = await connect(h)
    assert (await say(ws, "first", "c-1"))["type"] == "ack"
    for after in (10**30, 2**63):
        await ws.send_json({"type": "resume", "after": after})
    await ws.send_str('{"type": "resume", "after": 1e400}')
    assert (await ws.receive_json(timeout=5)) == {"type": "error", "code": "bad_resume"}
    await ws.send_str('{"type": "resume", "after": ' + "9" * 5000 + "}")
    assert (await ws.receive_json(timeout=5)) == {"type": "error", "code": "bad_json"}
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json(timeout=5)) == {"type": "pong"}  # no frame for the cursors
    await ws.send_str(json.dumps({"type": "message", "client_id": "big", "text": "x" * 70_000}))
    closing = await ws.receive(timeout=5)
    assert ws.closed and closing.data == 1009  # past the frame limit: closed as too big
    assert h.count("messages") == 1


async def test_a_reply_to_an_address_of_no_site_is_refused(make_harness: HarnessFactory) -> None:
    """An agent's message or file for a visitor of a site no longer configured (or an address
    with no visitor part): a non-retryable `unknown_site`, and nothing kept for any page."""
    h = await bridge(make_harness)
    webchat = h.bridge.router.delivery.connectors["webchat"]
    for address in ("gone:v-0123456789abcdef01234567", "shop:", "shop"):
        msg = OutboundMessage(message_id=MessageId(7), conversation_id=ConversationId(1),
                              address=address, text="hello", author_name="Dana")
        for attempt in (webchat.send(msg), webchat.send_file(msg, OutboundFile(
                filename="a.txt", mime_type="text/plain", data=b"hi"))):
            with pytest.raises(SendError) as refused:
                await attempt
            assert refused.value.code == "unknown_site" and not refused.value.retryable
    assert h.rows("SELECT key FROM connector_state WHERE key LIKE 'log:%'"
                  " OR key LIKE 'file:%'") == []
