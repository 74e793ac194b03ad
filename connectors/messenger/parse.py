"""Meta's Messenger webhook body -> messages and watermarks: pure, tested on recorded payloads.

One body may batch several entries (several Pages) and each entry several events, under
`messaging` (our app owns the thread) or `standby` (another app does, handover protocol).
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connectors.base import Malformed
from vocab.models import Attachment, DeliveryState, InboundMessage
from vocab.untrusted import clean_text, load_json

NAME = "messenger"
# Our sends carry this `metadata`, which Meta repeats in their echoes (with our app id).
METADATA = "support-bridge"
PAGE_INBOX = "Page Inbox (sent by staff outside the bridge)"
KINDS = {"image": "photo", "video": "video", "audio": "audio", "file": "document",
         "reel": "video", "ig_reel": "video"}
# The events the bridge acts on; each must be an object and come with both ids.
HANDLED = ("message", "postback", "referral", "delivery", "read")
LATEST_MS = 1e14  # year 5138: a larger time in milliseconds is not one


clean = clean_text  # the shared rule (vocab.untrusted)


def address(page_id: str, psid: str) -> str:
    """A conversation's address: the Page it came through and the customer's page-scoped id."""
    return f"{page_id}:{psid}"


def split_address(value: str) -> tuple[str, str]:
    page_id, _, psid = value.partition(":")
    return page_id, psid


def neutral_name(psid: str) -> str:
    """Until (or unless) the Graph API tells us the customer's name."""
    return f"Messenger user …{psid[-4:]}"


@dataclass(frozen=True)
class Watermark:
    """Everything our Page sent to `psid` up to `watermark` was delivered (or read)."""

    page_id: str
    psid: str
    state: DeliveryState
    watermark: float  # seconds
    mids: tuple[str, ...] = ()


@dataclass
class Parsed:
    messages: list[InboundMessage] = field(default_factory=list)
    watermarks: list[Watermark] = field(default_factory=list)
    # mid -> app id of each echo kept as a Page Inbox reply (the connector drops those whose
    # mid it sent itself, and so learns its own app id when `app_id` is not configured)
    echo_apps: dict[str, str] = field(default_factory=dict)


def load(body: bytes) -> dict[str, Any]:
    try:
        data = load_json(body)  # depth-limited, strings cleaned
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise Malformed(f"not JSON: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise Malformed("the body is not a JSON object")
    return data


def _seconds(value: Any, what: str) -> float | None:
    """Meta's times are milliseconds since the epoch; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 <= value < LATEST_MS):  # NaN and infinities fail the comparison
        raise Malformed(f"{what} is not a time in milliseconds")
    return value / 1000


def _str_id(obj: Any) -> str | None:
    value = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value) or None


def _attachment(item: Any) -> tuple[Attachment | None, str]:
    """A file to copy into Slack, or a line of text for what is not a file."""
    if not isinstance(item, dict):
        raise Malformed("an attachment is not an object")
    kind = str(item.get("type") or "")
    raw = item.get("payload")
    payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
    url = payload.get("url") if isinstance(payload.get("url"), str) else None
    if kind in KINDS and url:
        try:
            name = posixpath.basename(urlsplit(url).path) or None
        except ValueError:  # "http://[::1": not a URL we can name a file after
            name = None
        mime = mimetypes.guess_type(name)[0] if name else None
        return Attachment(kind=KINDS[kind], url=url, filename=name, mime_type=mime), ""
    if kind == "fallback":  # a shared link
        title = str(item.get("title") or payload.get("title") or "a link")
        return None, f"[{title}]({url})" if url else f"[{title}]"
    if kind == "location":
        raw_where = payload.get("coordinates")
        where: dict[str, Any] = raw_where if isinstance(raw_where, dict) else {}
        lat, lon = where.get("lat"), where.get("long")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
            return None, f"[location: {lat}, {lon}]"
        return None, f"[location]({url})" if url else "[location]"
    return None, f"[{kind or 'unsupported'} attachment]"


def _ref(referral: Any) -> str | None:
    """The `ref` of a referral (an m.me link's `?ref=`, an ad's ref), or None."""
    ref = referral.get("ref") if isinstance(referral, dict) else None
    if isinstance(ref, bool) or not isinstance(ref, (str, int)):
        return None
    return str(ref).strip() or None


def _message(event: dict[str, Any], page_id: str, psid: str, at: float | None,
             echo_author: str | None) -> InboundMessage:
    message = event["message"]
    mid = message.get("mid")
    if not isinstance(mid, str) or not mid:
        raise Malformed("a message without a mid")
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    raw = message.get("attachments") or []
    if not isinstance(raw, list):
        raise Malformed("attachments is not a list")
    files: list[Attachment] = []
    lines = [text] if text else []
    for item in raw:
        attachment, line = _attachment(item)
        if attachment is not None:
            files.append(attachment)
        if line:
            lines.append(line)
    quick = message.get("quick_reply")
    choice = None
    if isinstance(quick, dict) and quick.get("payload"):
        choice = str(quick["payload"])[:1000]  # verified by the core (a survey's signed id)
        if not choice.startswith("s:"):
            lines.append(f"(quick reply: {quick['payload']})")
    body = "\n".join(lines)
    reply_to = message.get("reply_to")
    if isinstance(reply_to, dict) and reply_to.get("mid"):
        body = f"(reply to an earlier message) {body}"
    if not body and not files:
        body = "[empty message]"
    # A message may carry the referral that brought its sender (an ad, a link): in the message
    # or beside it.  An echo is the Page's own message: it hands nobody off.
    ref = None if echo_author else _ref(message.get("referral")) or _ref(event.get("referral"))
    return InboundMessage(
        connector=NAME, platform_message_id=mid, address=address(page_id, psid),
        sender_name=neutral_name(psid), text=body, attachments=tuple(files), platform_time=at,
        platform_ref=mid, echo_author=echo_author, handoff_code=ref, inbox=page_id,
        choice=None if echo_author else choice,
    )


def _when(event: Mapping[str, Any]) -> str:
    """The dedupe key of an event without a mid: its timestamp, or (none given) a digest of
    the whole event, the same on each redelivery; never one key for every such event."""
    stamp = event.get("timestamp")
    if stamp is not None:
        return str(stamp)
    raw = json.dumps(event, sort_keys=True, ensure_ascii=True, default=str)
    return "h" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def _ours(message: Mapping[str, Any], app_id: str) -> bool:
    """An echo of a message the bridge itself sent."""
    if app_id and str(message.get("app_id", "")) == app_id:
        return True
    return str(message.get("metadata") or "").startswith(METADATA)


def _event(event: Any, page_id: str, app_id: str, out: Parsed) -> None:
    if not isinstance(event, dict):
        raise Malformed("an event is not an object")
    handled = [key for key in HANDLED if key in event]
    for key in handled:
        if not isinstance(event[key], dict):
            raise Malformed(f"{key} is not an object")
    sender, recipient = _str_id(event.get("sender")), _str_id(event.get("recipient"))
    if not handled:
        return  # optins, reactions, edits, handover notices...: acknowledged, ignored
    if sender is None and isinstance(event.get("sender"), dict) and event["sender"].get(
            "user_ref"):
        return  # a guest of the chat plugin, known by user_ref only: no PSID to answer
    if sender is None or recipient is None:
        raise Malformed(f"a {handled[0]} event without a sender or recipient id")
    stamp = event.get("timestamp")
    at = _seconds(stamp, "timestamp")
    if isinstance(event.get("message"), dict):
        if event["message"].get("is_echo"):
            if not _ours(event["message"], app_id):  # staff replied in Meta's Page Inbox
                echo = _message(event, page_id, recipient, at, PAGE_INBOX)
                out.messages.append(echo)
                app = event["message"].get("app_id")
                if isinstance(app, (str, int)) and not isinstance(app, bool):
                    out.echo_apps[echo.platform_message_id] = str(app)
            return
        out.messages.append(_message(event, page_id, sender, at, None))
    elif isinstance(event.get("postback"), dict):
        postback = event["postback"]
        title, payload = str(postback.get("title") or ""), str(postback.get("payload") or "")
        # A new thread opened from an m.me link: its Get Started postback carries the ref.
        ref = _ref(postback.get("referral"))
        mid = postback.get("mid") or f"postback:{page_id}:{sender}:{_when(event)}"
        text = f"[button] {title}" + (f" (payload: {payload})" if payload else "")
        out.messages.append(InboundMessage(
            connector=NAME, platform_message_id=str(mid), address=address(page_id, sender),
            sender_name=neutral_name(sender), text=text, platform_time=at,
            platform_ref=f"ref:{ref}" if ref else None, handoff_code=ref,
            inbox=page_id))
    elif isinstance(event.get("referral"), dict):
        # An existing thread reopened from an m.me link (or an ad).
        referral = event["referral"]
        ref = _ref(referral)
        source = str(referral.get("source") or "a link").lower()
        text = f"[opened the conversation from {source}" + (f", ref: {ref}]" if ref else "]")
        out.messages.append(InboundMessage(
            connector=NAME, platform_message_id=f"referral:{page_id}:{sender}:{_when(event)}",
            address=address(page_id, sender), sender_name=neutral_name(sender), text=text,
            platform_time=at, platform_ref=f"ref:{ref}" if ref else None, handoff_code=ref,
            inbox=page_id))
    elif isinstance(event.get("delivery"), dict) or isinstance(event.get("read"), dict):
        read = isinstance(event.get("read"), dict)
        data = event["read" if read else "delivery"]
        mark = _seconds(data.get("watermark"), "a watermark")
        mids = data.get("mids") if isinstance(data.get("mids"), list) else []
        if mark is None:
            raise Malformed("a delivery or read event without a watermark")
        out.watermarks.append(Watermark(
            page_id=page_id, psid=sender,
            state=DeliveryState.READ if read else DeliveryState.DELIVERED,
            watermark=mark, mids=tuple(str(m) for m in mids)))
    # anything else (reactions, optins, handover notices...) is acknowledged and ignored


def parse_body(data: Mapping[str, Any], app_id: str = "") -> Parsed:
    """Every event of an authentic body; raise `Malformed` (400) on a broken envelope.
    A body for another object than `page` gives nothing (acknowledged, ignored)."""
    out = Parsed()
    if data.get("object") != "page":
        return out
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise Malformed("entry is not a list")
    for entry in entries:
        if not isinstance(entry, dict):
            raise Malformed("an entry is not an object")
        page_id = _str_id(entry)
        if page_id is None:
            raise Malformed("an entry without a page id")
        for key in ("messaging", "standby"):
            events = entry.get(key)
            if events is None:
                continue
            if not isinstance(events, list):
                raise Malformed(f"{key} is not a list")
            for event in events:
                _event(event, page_id, app_id, out)
    return out
