"""Modals in the Slack stand-in: views.open and views.update, refusing what Slack refuses
(no trigger_id, a view that is not a modal, a title over 24 characters, over 100 blocks, a
stale hash)."""

from __future__ import annotations

import json
import secrets
from typing import Any, Protocol

from bridge.standins.base import JSONDict

TITLE_MAX = 24
BLOCKS_MAX = 100


class _Views(Protocol):
    views: dict[str, JSONDict]
    _view_seq: Any


def _view(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _check(view: Any) -> str | None:
    if not isinstance(view, dict) or view.get("type") != "modal":
        return "invalid_arguments"
    title = view.get("title")
    if not isinstance(title, dict) or not 0 < len(str(title.get("text") or "")) <= TITLE_MAX:
        return "invalid_arguments"
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > BLOCKS_MAX:
        return "invalid_blocks"
    if len(str(view.get("private_metadata") or "")) > 3000:
        return "invalid_arguments"
    return None


def modal_open(standin: _Views, p: JSONDict) -> JSONDict:
    if not p.get("trigger_id"):
        return {"ok": False, "error": "invalid_trigger_id"}
    view = _view(p.get("view"))
    error = _check(view)
    if error:
        return {"ok": False, "error": error}
    view_id = f"V{next(standin._view_seq):08d}"
    shown = {**view, "id": view_id, "hash": secrets.token_hex(6), "state": {"values": {}},
             "trigger_id": p["trigger_id"]}
    standin.views[view_id] = shown
    return {"ok": True, "view": shown}


def modal_update(standin: _Views, p: JSONDict) -> JSONDict:
    shown = standin.views.get(str(p.get("view_id") or ""))
    if shown is None:
        return {"ok": False, "error": "not_found"}
    if p.get("hash") and p["hash"] != shown["hash"]:
        return {"ok": False, "error": "hash_conflict"}
    view = _view(p.get("view"))
    error = _check(view)
    if error:
        return {"ok": False, "error": error}
    shown.clear()
    shown.update({**view, "id": str(p["view_id"]), "hash": secrets.token_hex(6),
                  "state": {"values": {}}})
    return {"ok": True, "view": shown}
