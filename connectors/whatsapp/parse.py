"""Meta's WhatsApp Cloud webhook body -> messages and statuses: pure, tested on recorded
payloads.

One body may batch several entries (several business accounts), each several changes (several
phone numbers), each with `messages[]`, `statuses[]` and the senders' `contacts[]` (profile
names).  A conversation's address is `<phone_number_id>:<wa_id>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Malformed
from vocab.models import Attachment, DeliveryState, InboundMessage
from vocab.untrusted import clean_text, load_json

NAME = "whatsapp"
MEDIA = {"image": "photo", "audio": "audio", "video": "video", "document": "document",
         "sticker": "sticker"}
STATES = {"sent": DeliveryState.SENT, "delivered": DeliveryState.DELIVERED,
          "read": DeliveryState.READ, "failed": DeliveryState.FAILED}
WINDOW_CLOSED = 131047  # re-engagement: more than 24 hours since the customer's last message
LATEST = 1e11  # a time in seconds past the year 5138 is not one


def address(phone_number_id: str, wa_id: str) -> str:
    return f"{phone_number_id}:{wa_id}"


def split_address(value: str) -> tuple[str, str]:
    phone_number_id, _, wa_id = value.partition(":")
    return phone_number_id, wa_id


def neutral_name(wa_id: str) -> str:
    return f"WhatsApp +{wa_id}"


@dataclass(frozen=True)
class Status:
    """What Meta says became of a message we sent."""

    wamid: str
    state: DeliveryState
    phone_number_id: str
    recipient: str
    error: str | None = None  # "Re-engagement message (131047)" for a failed one
    code: int | None = None


@dataclass
class Parsed:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    read: list[tuple[str, str]] = field(default_factory=list)  # (phone_number_id, wamid)


def load(body: bytes) -> dict[str, Any]:
    try:
        data = load_json(body)  # depth-limited, strings cleaned
    except ValueError as exc:
        raise Malformed(f"not JSON: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise Malformed("the body is not a JSON object")
    return data


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{what} is not a list")
    return value


def _str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return ""
    return clean_text(str(value)).strip()


def _seconds(value: Any) -> float | None:
    """Meta's WhatsApp times are seconds since the epoch, as a string."""
    try:
        at = float(value)
    except (TypeError, ValueError):
        return None
    return at if 0 <= at < LATEST else None


def _media(kind: str, item: dict[str, Any]) -> tuple[Attachment | None, str]:
    media = _obj(item.get(kind))
    media_id = _str(media.get("id"))
    caption = _str(media.get("caption"))
    if not media_id:
        return None, caption or f"[{kind} without a file]"
    mime = _str(media.get("mime_type")).split(";")[0].strip() or None
    filename = _str(media.get("filename")) or None
    return Attachment(kind=MEDIA[kind], platform_file_id=media_id, mime_type=mime,
                      filename=filename), caption


def _location(item: dict[str, Any]) -> str:
    where = _obj(item.get("location"))
    lat, lon = where.get("latitude"), where.get("longitude")
    label = " — ".join(x for x in (_str(where.get("name")), _str(where.get("address"))) if x)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
        link = f"https://maps.google.com/?q={lat},{lon}"
        return f"📍 {label} {link}".replace("  ", " ") if label else f"📍 {link}"
    return f"📍 {label or 'a location'}"


def _contacts(item: dict[str, Any]) -> str:
    """A shared contact card, shown; never identity evidence (anyone can share any card)."""
    lines = []
    for card in _list(item.get("contacts"), "contacts")[:10]:
        card = _obj(card)
        name = _str(_obj(card.get("name")).get("formatted_name")) or "a contact"
        phones = [_str(_obj(p).get("phone")) for p in _list(card.get("phones"), "phones")[:5]]
        emails = [_str(_obj(e).get("email")) for e in _list(card.get("emails"), "emails")[:5]]
        details = ", ".join(x for x in (*phones, *emails) if x)
        lines.append(f"👤 Contact card: {name}" + (f" ({details})" if details else ""))
    return "\n".join(lines) or "👤 Contact card"


def _interactive(item: dict[str, Any]) -> tuple[str, str | None]:
    """A reply button or list row the customer picked: (what it said, the choice's id)."""
    interactive = _obj(item.get("interactive"))
    kind = _str(interactive.get("type"))
    picked = _obj(interactive.get(kind)) if kind in ("button_reply", "list_reply") else {}
    if not picked:
        return "[an interactive reply]", None
    title = _str(picked.get("title"))
    return title or "[a choice]", _str(picked.get("id")) or None


def _message(item: Any, phone_number_id: str, names: dict[str, str]) -> InboundMessage | None:
    if not isinstance(item, dict):
        raise Malformed("a message is not an object")
    wamid, wa_id, kind = _str(item.get("id")), _str(item.get("from")), _str(item.get("type"))
    if not wamid or not wa_id:
        raise Malformed("a message lacks its id or its sender")
    if kind == "system":  # "the customer changed their number": not the customer's words
        return None
    files: list[Attachment] = []
    choice: str | None = None
    text = ""
    if kind == "text":
        text = _str(_obj(item.get("text")).get("body"))
    elif kind in MEDIA:
        attachment, text = _media(kind, item)
        files.extend([attachment] if attachment else [])
    elif kind == "location":
        text = _location(item)
    elif kind == "contacts":
        text = _contacts(item)
    elif kind == "interactive":
        text, choice = _interactive(item)
    elif kind == "button":  # a template's quick-reply button
        button = _obj(item.get("button"))
        text = _str(button.get("text")) or "[a button]"
        choice = _str(button.get("payload")) or None
    elif kind == "reaction":
        reaction = _obj(item.get("reaction"))
        emoji = _str(reaction.get("emoji"))
        text = f"reacted {emoji} to a message" if emoji else "removed a reaction"
    else:  # unsupported, order, unknown types: shown, not lost
        text = f"[a WhatsApp {kind or 'message'} the bridge cannot show]"
    context = _obj(item.get("context"))
    quoted = _str(context.get("id")) if kind != "reaction" else ""
    if quoted:
        text = f"> (replying to an earlier message)\n{text}"
    if not text and not files:
        text = "[empty message]"
    return InboundMessage(
        connector=NAME, platform_message_id=wamid, address=address(phone_number_id, wa_id),
        sender_name=names.get(wa_id) or neutral_name(wa_id), text=text,
        attachments=tuple(files), platform_time=_seconds(item.get("timestamp")),
        platform_ref=wamid, verified_phone=f"+{wa_id}",
        inbox=phone_number_id, choice=choice,
    )


def _status(item: Any, phone_number_id: str) -> Status | None:
    if not isinstance(item, dict):
        raise Malformed("a status is not an object")
    wamid, state = _str(item.get("id")), STATES.get(_str(item.get("status")))
    if not wamid or state is None:
        return None  # "deleted", "warning" and future states: acknowledged, ignored
    error, code = None, None
    errors = _list(item.get("errors"), "errors")
    if errors:
        first = _obj(errors[0])
        raw = first.get("code")
        code = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        detail = _str(_obj(first.get("error_data")).get("details"))
        title = _str(first.get("title")) or _str(first.get("message")) or "failed"
        error = f"{title} ({code})" if code is not None else title
        if detail and detail != title:
            error = f"{error}: {detail}"
    elif state is DeliveryState.FAILED:
        error = "WhatsApp could not deliver it"
    return Status(wamid=wamid, state=state, phone_number_id=phone_number_id,
                  recipient=_str(item.get("recipient_id")), error=error, code=code)


def parse_body(data: dict[str, Any]) -> Parsed:
    """Every message and status of every change; anything else is acknowledged, ignored."""
    if data.get("object") != "whatsapp_business_account":
        return Parsed()
    out = Parsed()
    for entry in _list(data.get("entry"), "entry"):
        for change in _list(_obj(entry).get("changes"), "changes"):
            change = _obj(change)
            if change.get("field") != "messages":
                continue  # template status updates, account alerts...
            value = _obj(change.get("value"))
            phone_number_id = _str(_obj(value.get("metadata")).get("phone_number_id"))
            if not phone_number_id:
                raise Malformed("a change lacks metadata.phone_number_id")
            names = {_str(_obj(c).get("wa_id")): _str(_obj(_obj(c).get("profile")).get("name"))
                     for c in _list(value.get("contacts"), "contacts")}
            for item in _list(value.get("messages"), "messages"):
                message = _message(item, phone_number_id, names)
                if message is not None:
                    out.messages.append(message)
            for item in _list(value.get("statuses"), "statuses"):
                status = _status(item, phone_number_id)
                if status is not None:
                    out.statuses.append(status)
    return out


def template_names(data: Any) -> list[tuple[str, str, int]]:
    """`GET /{waba}/message_templates` -> (name, language, body parameter count) of each
    APPROVED template."""
    out = []
    for item in _list(_obj(data).get("data"), "data"):
        item = _obj(item)
        if _str(item.get("status")).upper() != "APPROVED" or not _str(item.get("name")):
            continue
        count = 0
        for component in _list(item.get("components"), "components"):
            component = _obj(component)
            if _str(component.get("type")).upper() == "BODY":
                body = _str(component.get("text"))
                count = len({part.split("}}")[0] for part in body.split("{{")[1:]})
        out.append((_str(item["name"]), _str(item.get("language")) or "en_US", count))
    return out


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
