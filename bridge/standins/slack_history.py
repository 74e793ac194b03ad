"""How the Slack stand-in lists messages (conversations.history, conversations.replies): message
metadata only when asked for, oldest/latest bounds, and Slack's cursor pagination."""

from __future__ import annotations

import base64
import binascii

from bridge.standins.base import JSONDict

MAX_LIMIT = 999  # Slack's ceiling for `limit` (it advises 200 or fewer)


def _truthy(value: object) -> bool:
    return str(value).lower() in ("true", "1")


def listed(message: JSONDict, p: JSONDict) -> JSONDict:
    """A stored message as a listing shows it: metadata only with `include_all_metadata`."""
    out = {k: v for k, v in message.items()
           if v is not None and k not in ("channel", "metadata")}
    if message.get("metadata") and _truthy(p.get("include_all_metadata")):
        out["metadata"] = message["metadata"]
    return out


def history_page(found: list[JSONDict], p: JSONDict) -> JSONDict:
    """One page of `found` (already in Slack's order), kept within oldest/latest (exclusive
    unless `inclusive`), cut at `limit` (default 100) with a `next_cursor` when more follow."""
    try:
        limit = min(MAX_LIMIT, max(1, int(p.get("limit") or 100)))
        oldest, latest = float(p.get("oldest") or 0), float(p.get("latest") or 1e12)
        start = int(base64.b64decode(p["cursor"]).decode()[5:]) if p.get("cursor") else 0
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        return {"ok": False, "error": "invalid_cursor" if p.get("cursor") else
                "invalid_arguments"}
    inclusive = _truthy(p.get("inclusive"))
    kept = [m for m in found if (oldest <= float(m["ts"]) <= latest if inclusive
                                 else oldest < float(m["ts"]) < latest)]
    page = kept[start:start + limit]
    more = start + limit < len(kept)
    cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
    return {"ok": True, "messages": [listed(m, p) for m in page], "has_more": more,
            "response_metadata": {"next_cursor": cursor}}
