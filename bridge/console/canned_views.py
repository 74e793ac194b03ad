"""The Block Kit of canned replies: the ephemeral preview and the three modals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bridge.canned import MAX_BODY, CannedReply

EDIT_VIEW, PICK_VIEW, SAVE_VIEW = "canned_edit_view", "canned_pick_view", "canned_save_view"
SEARCH_ACTION = "canned_search"
SEND_ACTION, EDIT_ACTION, CANCEL_ACTION = "canned_send", "canned_edit", "canned_cancel"
SECTION_MAX = 2900  # a section's text takes 3,000 characters
OPTION_MAX = 75  # an option's text and description


def _plain(text: str, limit: int = OPTION_MAX) -> dict[str, Any]:
    text = " ".join(text.split()) or " "
    return {"type": "plain_text", "text": text if len(text) <= limit else text[:limit - 1] + "…",
            "emoji": True}


def quoted(text: str) -> str:
    shown = text if len(text) <= SECTION_MAX else text[:SECTION_MAX] + "…"
    return "\n".join(f">{line}" for line in shown.splitlines()) or ">"


def preview_blocks(reply: CannedReply, text: str, token: str) -> list[dict[str, Any]]:
    """What only the agent sees: the filled text, its files, and Send / Edit / Cancel."""
    files = "".join(f"\n:paperclip: {p.name}" for p in reply.attachments)
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": quoted(text) + files}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"Canned reply `{reply.name}` ({reply.where}), filled. Only you see this; "
            "nothing reaches the customer before *Send*."}]},
        {"type": "actions", "block_id": "canned", "elements": [
            {"type": "button", "action_id": SEND_ACTION, "style": "primary", "value": token,
             "text": {"type": "plain_text", "text": "Send"}},
            {"type": "button", "action_id": EDIT_ACTION, "value": token,
             "text": {"type": "plain_text", "text": "Edit"}},
            {"type": "button", "action_id": CANCEL_ACTION, "value": token,
             "text": {"type": "plain_text", "text": "Cancel"}},
        ]},
    ]


def _text_input(block_id: str, label: str, initial: str, multiline: bool = True,
                optional: bool = False, max_length: int = MAX_BODY) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id,
                               "multiline": multiline, "max_length": max_length}
    if initial:
        element["initial_value"] = initial[:max_length]
    return {"type": "input", "block_id": block_id, "optional": optional,
            "label": {"type": "plain_text", "text": label}, "element": element}


def edit_view(meta: str, name: str, text: str) -> dict[str, Any]:
    return {"type": "modal", "callback_id": EDIT_VIEW, "private_metadata": meta,
            "title": {"type": "plain_text", "text": "Canned reply"},
            "submit": {"type": "plain_text", "text": "Send"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [_text_input("text", f"Reply ({name[:40]})", text)]}


def pick_view(meta: str, query: str,
              found: Sequence[tuple[CannedReply, str]]) -> dict[str, Any]:
    """Search (fuzzy, redrawn as the agent searches), pick, and see the first one filled."""
    search: dict[str, Any] = {
        "type": "input", "block_id": "query", "dispatch_action": True, "optional": True,
        "label": {"type": "plain_text", "text": "Search names, titles and text"},
        "element": {"type": "plain_text_input", "action_id": SEARCH_ACTION,
                    "max_length": 200, **({"initial_value": query} if query else {})}}
    blocks: list[dict[str, Any]] = [search]
    if found:
        options = [{"text": _plain(f"{r.name}: {r.title}"), "value": r.name,
                    "description": _plain(text)} for r, text in found[:10]]
        blocks.append({"type": "input", "block_id": "choice",
                       "label": {"type": "plain_text", "text": "Reply"},
                       "element": {"type": "radio_buttons", "action_id": "choice",
                                   "options": options, "initial_option": options[0]}})
        first, text = found[0]
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"*{first.name}*, filled:\n{quoted(text)}"}})
    else:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": "No canned reply matches."}})
    return {"type": "modal", "callback_id": PICK_VIEW, "private_metadata": meta,
            "title": {"type": "plain_text", "text": "Canned reply"},
            "submit": {"type": "plain_text", "text": "Preview"},
            "close": {"type": "plain_text", "text": "Cancel"}, "blocks": blocks}


def save_view(meta: str, text: str, team: str | None) -> dict[str, Any]:
    scopes = [{"text": {"type": "plain_text", "text": "Only me"}, "value": "personal"}]
    if team:
        scopes.append({"text": _plain(f"Team {team}"), "value": "team"})
    return {"type": "modal", "callback_id": SAVE_VIEW, "private_metadata": meta,
            "title": {"type": "plain_text", "text": "Save canned reply"},
            "submit": {"type": "plain_text", "text": "Save"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [
                _text_input("name", "Name (lowercase, no spaces)", "", multiline=False,
                            max_length=64),
                _text_input("title", "Title", "", multiline=False, optional=True,
                            max_length=150),
                _text_input("text", "Text ({{ customer.first_name }} and other variables)",
                            text),
                {"type": "input", "block_id": "scope",
                 "label": {"type": "plain_text", "text": "Who may use it"},
                 "element": {"type": "radio_buttons", "action_id": "scope",
                             "options": scopes, "initial_option": scopes[0]}},
            ]}


def submitted(view: dict[str, Any], block_id: str) -> str:
    """A modal's submitted value for one input block ("" when absent or of another shape)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    block = values.get(block_id) if isinstance(values, dict) else None
    if not isinstance(block, dict):
        return ""
    for element in block.values():
        if not isinstance(element, dict):
            continue
        value = element.get("value")
        if isinstance(value, str):
            return value
        option = element.get("selected_option")
        if isinstance(option, dict) and isinstance(option.get("value"), str):
            return str(option["value"])
    return ""
