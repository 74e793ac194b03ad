"""The web chat where WebSockets are blocked: the same frames over plain HTTP long-polls.

`POST /webchat/poll?site=…[&token=…|&user_id=…&user_hash=…]` with
`{"after": <last id>, "frames": [<message frames>]}`: the answer is `{"frames": [...]}` with a
`welcome` first for a new visitor, an `ack` (or `error`) per message frame once committed, then
every message after `after`; with nothing to say the bridge holds the request up to
`hold_seconds` and answers as soon as an agent's reply arrives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connectors.base import Malformed, WebhookRejected, read_body
from connectors.webchat.mailbox import Mailbox, message_frame
from connectors.webchat.protocol import BadFrame, Say, frame_of
from vocab.untrusted import load_json

Frame = dict[str, Any]
Speak = Callable[[Say, bool], Awaitable[tuple[Frame, bool]]]
MAX_POLL_BODY = 256 * 1024


async def read_poll(request: web.Request, max_chars: int) -> tuple[int, list[Say | Frame]]:
    """`after` and the page's frames (a `Say`, or an error frame for a bad one)."""
    body = await read_body(request, MAX_POLL_BODY, 10.0, ("application/json", "text/plain"))
    try:
        data = load_json(body or b"{}")
    except ValueError as exc:
        raise Malformed("the body must be JSON") from exc
    if not isinstance(data, dict):
        raise Malformed("the body must be a JSON object")
    after, frames = data.get("after", 0), data.get("frames", [])
    if not isinstance(after, int) or isinstance(after, bool) or after < 0 or \
            not isinstance(frames, list) or len(frames) > 50:
        raise Malformed("after must be a number >= 0 and frames a list of at most 50")
    out: list[Say | Frame] = []
    for frame in frames:
        try:
            parsed = frame_of(frame, max_chars)
        except BadFrame as exc:
            out.append({"type": "error", "code": exc.code, **(
                {"client_id": exc.client_id} if exc.client_id else {})})
            continue
        if isinstance(parsed, Say):
            out.append(parsed)
    return after, out


async def answer_poll(request: web.Request, mailbox: Mailbox, address: str,
                      welcome: Frame | None, speak: Speak, max_chars: int,
                      hold_seconds: float, headers: dict[str, str]) -> web.StreamResponse:
    try:
        after, frames = await read_poll(request, max_chars)
    except WebhookRejected as exc:
        return web.json_response({"error": exc.reason}, status=exc.status, headers=headers)
    out: list[Frame] = [welcome] if welcome else []
    first = True
    for frame in frames:
        if isinstance(frame, Say):
            answer, ok = await speak(frame, first)
            first = False
            out.append(answer)
            if not ok:
                break
        else:
            out.append(frame)
    news = [message_frame(i) for i in await mailbox.after(address, after)]
    if not out and not news and hold_seconds > 0:
        await mailbox.wait(address, hold_seconds)
        news = [message_frame(i) for i in await mailbox.after(address, after)]
    return web.json_response({"frames": out + news},
                             headers={**headers, "Cache-Control": "no-store"})
