"""What the WhatsApp connector sends, built pure: interactive choices, file messages,
template parameters, Meta's limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import SendError
from vocab.models import Choices, OutboundFile

TEXT_LIMIT = 4096  # a text message's body
INTERACTIVE_BODY = 1024  # an interactive message's body
BUTTONS, ROWS = 3, 10  # reply buttons; rows of a list
BUTTON_TITLE, ROW_TITLE, ROW_DESCRIPTION, LIST_BUTTON = 20, 24, 72, 20
HOUR = 3600.0
WINDOW = 24 * HOUR  # the customer service window, from the customer's last message
MB = 1024 * 1024
# (kind, size limit) by MIME type, as Meta's Cloud API documents its supported media.
IMAGES = ("image/jpeg", "image/png")
VIDEOS = ("video/mp4", "video/3gpp")
AUDIO = ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg")


def media_kind(mime: str) -> tuple[str, int]:
    if mime in IMAGES:
        return "image", 5 * MB
    if mime in VIDEOS:
        return "video", 16 * MB
    if mime in AUDIO:
        return "audio", 16 * MB
    return "document", 100 * MB


def file_message(kind: str, media_id: str, file: OutboundFile) -> dict[str, Any]:
    media: dict[str, Any] = {"id": media_id}
    if kind == "document":
        media["filename"] = file.filename[:240]
    return {"type": kind, kind: media}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def interactive(parts: list[str], choices: Choices) -> tuple[list[str], dict[str, Any]]:
    """The text parts sent as plain text first, and the interactive message that carries the
    last part and the choices: up to 3 reply buttons, else a list of up to 10 rows."""
    head = parts[:-1] if parts else []
    body = parts[-1] if parts else ""
    if len(body) > INTERACTIVE_BODY:
        head.append(body)
        body = "👇"
    items = choices.items
    if len(items) > ROWS:
        raise SendError(f"WhatsApp lists carry up to {ROWS} choices, not {len(items)}",
                        code="too_many_choices", retryable=False)
    action: dict[str, Any]
    if len(items) <= BUTTONS:
        action = {"buttons": [{"type": "reply", "reply": {
            "id": item.id[:256], "title": _cut(item.title, BUTTON_TITLE)}} for item in items]}
        kind = "button"
    else:
        rows = []
        for item in items:
            row = {"id": item.id[:200], "title": _cut(item.title, ROW_TITLE)}
            if item.description:
                row["description"] = _cut(item.description, ROW_DESCRIPTION)
            rows.append(row)
        action = {"button": _cut(choices.button or "Choose", LIST_BUTTON),
                  "sections": [{"rows": rows}]}
        kind = "list"
    return head, {"type": "interactive", "interactive": {
        "type": kind, "body": {"text": body or "👇"}, "action": action}}


def template_components(count: int, variables: Mapping[str, str]) -> list[dict[str, Any]]:
    """`1=value 2=value` -> the body's parameters, in order; each one the template has must
    be given (Meta refuses a template with a missing parameter: error 132000)."""
    if count == 0:
        return []
    missing = [str(n) for n in range(1, count + 1) if not str(variables.get(str(n), ""))]
    if missing:
        raise SendError(f"the template needs {count} parameter(s); missing "
                        f"{', '.join(missing)} (write them as 1=value 2=value)",
                        code="template_parameters", retryable=False)
    return [{"type": "body", "parameters": [
        {"type": "text", "text": str(variables[str(n)])} for n in range(1, count + 1)]}]
