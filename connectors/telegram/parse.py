"""Telegram `Update` JSON -> `InboundMessage`: a pure function, tested on recorded payloads."""

from __future__ import annotations

import re
from typing import Any

from connectors.base import Malformed
from vocab.models import Attachment, InboundMessage
from vocab.mrkdwn import mrkdwn_escape
from vocab.telegram_text import telegram_to_mrkdwn
from vocab.untrusted import load_json

NAME = "telegram"
# The update kinds the bridge relays: `allowed_updates` for setWebhook and getUpdates.
HANDLED_UPDATES = ("message", "edited_message", "callback_query")
# A deep link `t.me/<bot>?start=<payload>` arrives as the text "/start <payload>".
_START = re.compile(r"/start(?:@[A-Za-z0-9_]+)?\s+(\S+)\s*", re.ASCII)
# A message with any of these was forwarded: a contact in it is someone's card, not a share.
_FORWARD_KEYS = ("forward_origin", "forward_from", "forward_from_chat", "forward_sender_name",
                 "forward_date")
_MEDIA_KINDS = ("photo", "document", "video", "voice", "audio", "sticker", "animation",
                "video_note", "contact", "location")


def _attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    photo = message.get("photo")
    if isinstance(photo, list) and photo and isinstance(photo[-1], dict):
        largest = photo[-1]  # the last size is the largest
        found.append(Attachment(kind="photo", platform_file_id=largest.get("file_id"),
                                size=largest.get("file_size"), mime_type="image/jpeg"))
    for kind in ("document", "video", "voice", "audio", "animation"):
        item = message.get(kind)
        if isinstance(item, dict):
            found.append(Attachment(kind=kind, platform_file_id=item.get("file_id"),
                                    filename=item.get("file_name"),
                                    mime_type=item.get("mime_type"), size=item.get("file_size")))
    return tuple(found)


def _text(message: dict[str, Any]) -> str:
    text = message.get("text")
    if isinstance(text, str):
        return text
    caption = message.get("caption")
    kinds = [k for k in _MEDIA_KINDS if k in message]
    label = f"[{kinds[0]}]" if kinds else "[unsupported message]"
    if isinstance(caption, str) and caption:
        return f"{label} {caption}"
    return label


def _start_payload(message: dict[str, Any]) -> str | None:
    """The payload of a deep link's "/start <payload>", passed on as it is (the core checks
    whether it is a handoff code)."""
    text = message.get("text")
    found = _START.fullmatch(text) if isinstance(text, str) else None
    return found.group(1) if found is not None else None


def _verified_phone(message: dict[str, Any], sender: dict[str, Any]) -> str | None:
    """The number of a contact the sender shared of themselves (Telegram's "share my phone
    number" button): its `user_id` is the sender's own id.  Someone else's contact, a card
    without a user id, or a forwarded contact proves nothing."""
    contact = message.get("contact")
    if not isinstance(contact, dict) or any(k in message for k in _FORWARD_KEYS):
        return None
    user_id, sender_id = contact.get("user_id"), sender.get("id")
    phone = contact.get("phone_number")
    if (not isinstance(user_id, int) or isinstance(user_id, bool) or user_id != sender_id
            or not isinstance(phone, str) or not phone.strip()):
        return None
    return phone.strip()


def _markup(message: dict[str, Any]) -> str | None:
    """The text as Slack mrkdwn when the customer used formatting (entities), else None."""
    for key, entities_key in (("text", "entities"), ("caption", "caption_entities")):
        raw, entities = message.get(key), message.get(entities_key)
        if isinstance(raw, str) and isinstance(entities, list) and entities:
            converted = telegram_to_mrkdwn(raw, [e for e in entities if isinstance(e, dict)])
            if key == "text":
                return converted
            label = _text(message)[: -len(raw)]  # "[photo] "
            return mrkdwn_escape(label) + converted
    return None


def parse_update(body: bytes) -> list[InboundMessage]:
    """Parse one webhook body.  Raises `Malformed`; returns [] for updates we do not handle."""
    try:
        update = load_json(body)
    except ValueError as exc:  # UnicodeDecodeError and a too-deep body are ValueErrors
        raise Malformed(f"body is not JSON: {exc}") from exc
    return parse_update_data(update)


def parse_update_data(update: object) -> list[InboundMessage]:
    """Parse one decoded `Update` (a webhook body, or one item of a `getUpdates` result).

    Raises `Malformed`; returns [] for updates we do not handle.  A customer's edit
    (`edited_message`) becomes a message of its own: deduplicated on its own `update_id`,
    with `edit_of` naming the message it changes.
    """
    if not isinstance(update, dict):
        raise Malformed("an Update must be a JSON object")
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise Malformed("update_id is missing or not an integer")

    kind = next((k for k in HANDLED_UPDATES if update.get(k) is not None), None)
    if kind is None:
        return []  # my_chat_member, inline queries...: acknowledged, ignored
    if kind == "callback_query":
        return _callback(update_id, update[kind])
    message = update[kind]
    if not isinstance(message, dict):
        raise Malformed(f"{kind} must be an object")
    chat = message.get("chat")
    sender = message.get("from")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        raise Malformed(f"{kind}.chat.id is missing")
    if not isinstance(message.get("message_id"), int):
        raise Malformed(f"{kind}.message_id is missing")
    if chat.get("type") != "private":
        return []  # the bridge serves one-to-one chats; groups and channels are ignored
    if not isinstance(sender, dict) or sender.get("is_bot"):
        return []  # anonymous or bot senders are never relayed

    first = sender.get("first_name") or chat.get("first_name") or ""
    last = sender.get("last_name") or chat.get("last_name") or ""
    name = f"{first} {last}".strip() or str(sender.get("username") or chat["id"])
    ref = str(message["message_id"])
    edit = kind == "edited_message"
    # An edit happens at `edit_date`; the message keeps its original `date`.
    date = message.get("edit_date") if edit else message.get("date")
    if edit and not isinstance(date, int):
        date = message.get("date")
    return [InboundMessage(
        connector=NAME,
        platform_message_id=str(update_id),
        address=str(chat["id"]),
        sender_name=name,
        username=sender.get("username") if isinstance(sender.get("username"), str) else None,
        text=_text(message),
        # An edit changes text or caption; its media were relayed with the original message.
        attachments=() if edit else _attachments(message),
        platform_time=float(date) if isinstance(date, int) else None,
        platform_ref=ref,
        markup=_markup(message),
        edit_of=ref if edit else None,
        # An edit neither follows a deep link nor shares a contact.
        handoff_code=None if edit else _start_payload(message),
        verified_phone=None if edit else _verified_phone(message, sender),
        language=_language(sender),
    )]


def _callback(update_id: int, query: object) -> list[InboundMessage]:
    """A press on an inline keyboard button: the pick (`callback_data`, verified by the core)
    and the query id to answer.  Only a press in a private chat with the bot counts."""
    if not isinstance(query, dict) or not isinstance(query.get("id"), str):
        raise Malformed("callback_query.id is missing")
    sender, message = query.get("from"), query.get("message")
    data = query.get("data")
    if not isinstance(sender, dict) or not isinstance(sender.get("id"), int) or \
            sender.get("is_bot") or not isinstance(data, str) or not isinstance(message, dict):
        return []
    chat = message.get("chat")
    if not isinstance(chat, dict) or chat.get("id") != sender["id"] or \
            chat.get("type") != "private" or not isinstance(message.get("message_id"), int):
        return []
    first = sender.get("first_name") or ""
    last = sender.get("last_name") or ""
    return [InboundMessage(
        connector=NAME, platform_message_id=str(update_id), address=str(chat["id"]),
        sender_name=f"{first} {last}".strip() or str(chat["id"]), text="",
        platform_ref=str(message["message_id"]), choice=data[:64], choice_ack=query["id"],
    )]


def _language(sender: dict[str, Any]) -> str | None:
    """The sender's app language (`language_code`, an IETF tag such as "sr-Latn" or "en"):
    its two-letter primary subtag, the hint routing rules prefer over a guess."""
    code = sender.get("language_code")
    if not isinstance(code, str):
        return None
    primary = code.split("-")[0].strip().lower()
    return primary if len(primary) == 2 and primary.isascii() and primary.isalpha() else None
