"""Telegram's entities (UTF-16 offsets) to Slack mrkdwn.  Pure and stdlib only."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vocab.mrkdwn import mrkdwn_escape

# -- Telegram entities to Slack mrkdwn --------------------------------------------------------

_TG_MARKS = {"bold": "*", "italic": "_", "strikethrough": "~"}
_TG_LEAVES = frozenset({"code", "pre", "text_link", "url"})
_TG_KINDS = _TG_LEAVES | _TG_MARKS.keys()
_LINK_URL = re.compile(r"(?:https?|mailto|tg|ftp):[^\s|<>]+", re.IGNORECASE)


@dataclass(slots=True)
class _Entity:
    kind: str
    start: int  # Python string indices, converted from UTF-16 offsets
    end: int
    url: str = ""
    children: list[_Entity] = field(default_factory=list)


def utf16_len(s: str) -> int:
    """Length in UTF-16 code units, as Telegram (and SMS UCS-2) count it."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def _tg_entities(text: str, entities: Sequence[Mapping[str, Any]]) -> Iterator[_Entity]:
    """The usable entities; out-of-range, empty, mid-surrogate or unknown ones are skipped."""
    index: dict[int, int] = {}
    unit = 0
    for i, char in enumerate(text):
        index[unit] = i
        unit += 2 if ord(char) > 0xFFFF else 1
    index[unit] = len(text)
    for raw in entities:
        if not isinstance(raw, Mapping):
            continue
        kind, offset, length = raw.get("type"), raw.get("offset"), raw.get("length")
        if (not isinstance(kind, str) or kind not in _TG_KINDS or type(offset) is not int
                or type(length) is not int or length <= 0):
            continue
        start, end = index.get(offset), index.get(offset + length)
        if start is None or end is None:
            continue
        if kind != "text_link":
            yield _Entity(kind, start, end)
            continue
        url = raw.get("url")
        if isinstance(url, str) and _LINK_URL.fullmatch(url):
            yield _Entity(kind, start, end, url)


def telegram_to_mrkdwn(text: str, entities: Sequence[Mapping[str, Any]] | None) -> str:
    """A customer's Telegram text (with `entities` or `caption_entities`) as Slack mrkdwn.

    Everything is escaped, so customer text never becomes a Slack mention or link; only
    properly nested entities are kept, none inside code, pre or links."""
    root = _Entity("root", 0, len(text))
    stack = [root]
    for ent in sorted(_tg_entities(text, entities or ()), key=lambda e: (e.start, -e.end)):
        while len(stack) > 1 and stack[-1].end <= ent.start:
            stack.pop()
        parent = stack[-1]
        if (ent.end > parent.end or parent.kind in _TG_LEAVES
                or any(open_.kind == ent.kind for open_ in stack)
                or (ent.kind == "pre" and parent is not root)):
            continue
        parent.children.append(ent)
        stack.append(ent)
    return _tg_render(text, root)


def _tg_render(text: str, node: _Entity) -> str:
    out: list[str] = []
    pos = node.start
    for child in node.children:
        out.append(mrkdwn_escape(text[pos : child.start]))
        out.append(_tg_entity(text, child))
        pos = child.end
    out.append(mrkdwn_escape(text[pos : node.end]))
    return "".join(out)


def _tg_entity(text: str, ent: _Entity) -> str:
    inner = _tg_render(text, ent)
    raw = text[ent.start : ent.end]
    if ent.kind == "text_link":
        return f"<{mrkdwn_escape(ent.url)}|{inner}>"
    if ent.kind == "url":
        if _LINK_URL.fullmatch(raw):
            return f"<{inner}>"
        if "://" not in raw and _LINK_URL.fullmatch("http://" + raw):
            return f"<http://{inner}|{inner}>"
        return inner
    if ent.kind == "pre":
        return inner if "```" in raw else f"```{inner}```"
    if ent.kind == "code":
        return inner if "`" in raw else "\n".join(
            f"`{line}`" if line.strip() else line for line in inner.split("\n"))
    before = text[ent.start - 1] if ent.start else ""
    after = text[ent.end] if ent.end < len(text) else ""
    return _wrap_lines(inner, _TG_MARKS[ent.kind], before, after)


def _wrap_lines(inner: str, mark: str, before: str, after: str) -> str:
    """Slack markers per line, hugging the text, only at word boundaries (else left plain)."""
    lines = inner.split("\n")
    out: list[str] = []
    for n, line in enumerate(lines):
        core = line.strip(" \t")
        if not core:
            out.append(line)
            continue
        lead = line[: line.index(core)]
        trail = line[len(lead) + len(core) :]
        prev = lead[-1:] or (before if n == 0 else "\n")
        nxt = trail[:1] or (after if n == len(lines) - 1 else "\n")
        out.append(line if prev.isalnum() or nxt.isalnum() else f"{lead}{mark}{core}{mark}{trail}")
    return "\n".join(out)
