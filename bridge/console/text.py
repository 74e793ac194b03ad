"""Slack-side text rules of the console (conversion itself is in `bridge/formatting.py`)."""

from __future__ import annotations


def is_note(text: str, prefix: str) -> bool:
    """Internal notes start with the prefix, in any case, after optional spaces."""
    return text.lstrip().lower().startswith(prefix.lower())
