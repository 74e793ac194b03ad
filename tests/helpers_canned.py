"""What the canned-reply tests share: reply files, the preview an agent was shown, and the
clicks and modal submissions Slack would send."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from bridge.console.canned_views import CANCEL_ACTION, EDIT_ACTION, SEND_ACTION
from bridge.standins.base import JSONDict
from tests.conftest import AGENT, CHANNEL, Harness
from tests.waiting import until

LATE = """---
name: late
title: Parcel running late
tags: [shipping, delay]
---
Hi {{ customer.first_name | default("there") }}, this is {{ agent.name }}. Your order
**{{ customer.fields.order_id }}** is on its way; see [tracking](https://example.com/t).
"""
ESCAPE = """---
name: escape
title: Sneaky
---
{{ customer.__class__.__mro__[1].__subclasses__() }}
"""
REFUND = """---
name: refund
title: Refund policy
team: support
---
Refunds take five working days, {{ customer.first_name }}. Conversation {{ conversation.id }}.
"""


def write_replies(root: Path, **files: str) -> None:
    folder = root / "canned"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.md").write_text(text, encoding="utf-8")


def previews(h: Harness, user: str = AGENT) -> list[JSONDict]:
    """The ephemeral previews `user` was shown (the ones with a Send button)."""
    return [e for e in h.slack.ephemerals if e["user"] == user and _button(e, SEND_ACTION)]


def notes(h: Harness, user: str = AGENT) -> list[str]:
    return [str(e["text"]) for e in h.slack.ephemerals if e["user"] == user]


def _button(ephemeral: JSONDict, action_id: str) -> str | None:
    for block in ephemeral.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return str(element["value"])
    return None


def shown_text(ephemeral: JSONDict) -> str:
    return str(ephemeral["blocks"][0]["text"]["text"])


async def preview(h: Harness, thread: str, command: str, user: str = AGENT) -> JSONDict:
    before = len(previews(h, user))
    assert await h.agent_says(thread, command, user=user) == 200
    await until(lambda: len(previews(h, user)) > before,
                lambda: f"a preview; notes: {notes(h, user)}", timeout=5)
    return copy.deepcopy(previews(h, user)[-1])  # as shown then (Send redraws it)


async def click(h: Harness, ephemeral: JSONDict, action: str, user: str = AGENT) -> int:
    action_id = {"send": SEND_ACTION, "edit": EDIT_ACTION, "cancel": CANCEL_ACTION}[action]
    value = _button(ephemeral, action_id)
    assert value is not None
    status, _ = await h.agent.post_interaction(h.agent.ephemeral_action(
        channel=CHANNEL, user=user, ephemeral=ephemeral, action_id=action_id, value=value,
        response_url=h.slack.response_url(ephemeral)))
    return status


def text_value(text: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": text}


def option_value(value: str) -> dict[str, Any]:
    return {"type": "radio_buttons", "selected_option": {"value": value}}


def customer_texts(h: Harness) -> list[str]:
    return [str(m["text"]) for m in h.telegram.sent if m["method"] == "sendMessage"]
