"""Text between Slack mrkdwn and customers' plain text.  The full conversion (bold, italic,
code, per-platform escaping) grows in "The agent console grows up"; this keeps text intact."""

from __future__ import annotations

import re

_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")


def mrkdwn_escape(text: str) -> str:
    """Escape customer text for Slack: only &, < and > (never HTML-escape everything)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_to_plain(text: str) -> str:
    """An agent's Slack text as the customer should read it."""

    def link(match: re.Match[str]) -> str:
        url, label = match.group(1), match.group(2)
        if not label or label == url:
            return url.removeprefix("mailto:")
        return f"{label} ({url.removeprefix('mailto:')})"

    text = _LINK.sub(link, text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def is_note(text: str, prefix: str) -> bool:
    """Internal notes start with the prefix, in any case, after optional spaces."""
    return text.lstrip().lower().startswith(prefix.lower())
