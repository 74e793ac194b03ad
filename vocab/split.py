"""Splitting text at a platform's limit: plain text, and Telegram HTML with its tags kept
balanced in every part.  Pure and stdlib only."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


TELEGRAM_LIMIT = 4096
MESSENGER_LIMIT = 2000
SMS_LIMIT = 1600


# -- splitting at a platform's limit ------------------------------------------------------------

_WS = " \t\n\r\f\v"
_WS_RUN = re.compile(r"[ \t\n\r\f\v]+")


def _fit(text: str, start: int, limit: int, length: Callable[[str], int]) -> int:
    """The most characters from `start` whose length is within `limit` (length is monotone)."""
    if length is len:
        return min(limit, len(text) - start)
    lo, hi = 0, len(text) - start
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if length(text[start : start + mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _joins(prev: str, char: str) -> bool:
    """True when a cut between prev and char would split a user-perceived character."""
    return (unicodedata.category(char) in ("Mn", "Mc", "Me") or char == "\u200d"
            or prev == "\u200d" or "\ufe00" <= char <= "\ufe0f"
            or "\U0001f3fb" <= char <= "\U0001f3ff")


def _spans(text: str, limit: int, length: Callable[[str], int]) -> list[tuple[int, int]]:
    """Where the parts of `text` start and end; only whitespace around cuts is dropped."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if length(text) <= limit:
        return [(0, len(text))] if text else []
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        start += len(text[start:]) - len(text[start:].lstrip(_WS))  # at a cut (or the start)
        rest = text[start:]
        if length(rest) <= limit:
            if rest:
                spans.append((start, len(text)))
            return spans
        k = _fit(text, start, limit, length)
        if k == 0:
            raise ValueError(f"a single character is longer than the limit {limit}")
        window = text[start : start + k + 1]
        # Prefer a cut late in the window, then paragraphs over lines over spaces.
        best = max(((2 * run.start() >= k, min(run[0].count("\n"), 2), run.start())
                    for run in _WS_RUN.finditer(window)), default=None)
        if best is not None:
            spans.append((start, start + best[2]))
            start += best[2]
            continue
        cut = k  # one word longer than the limit: hard cut, not inside a grapheme if possible
        while cut > 1 and _joins(window[cut - 1], window[cut]):
            cut -= 1
        if _joins(window[cut - 1], window[cut]):
            cut = k
        spans.append((start, start + cut))
        start += cut


def split_plain(text: str, limit: int, length: Callable[[str], int] = len) -> list[str]:
    """Parts of at most `limit` (by `length`), cut at paragraphs, then lines, then spaces,
    inside a word only when one word is longer than the limit.  Text that fits comes back
    whole; otherwise the whitespace at each cut (and at the start) is dropped.  No part is
    empty; blank text longer than the limit gives no parts."""
    return [text[a:b] for a, b in _spans(text, limit, length)]


# -- Telegram HTML: visible text and splitting --------------------------------------------

_HTML_TOKEN = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:[^<>\"']|\"[^\"]*\"|'[^']*')*)>"
    r"|&(?:amp|lt|gt|quot|#[0-9]{1,8}|#[xX][0-9A-Fa-f]{1,8});"
)


@dataclass(frozen=True, slots=True)
class _Open:
    serial: int  # two sibling <b> elements stay two elements
    name: str
    raw: str


_Unit = tuple[str, str, tuple[_Open, ...]]  # visible character, its HTML, enclosing tags


def _units(html_text: str) -> list[_Unit]:
    units: list[_Unit] = []
    stack: list[_Open] = []
    current: tuple[_Open, ...] = ()
    pos = 0
    for match in _HTML_TOKEN.finditer(html_text):
        units += [(c, _esc(c), current) for c in html_text[pos : match.start()]]
        pos = match.end()
        if match[2] is None:  # an entity counts as one character
            units.append((html.unescape(match[0])[:1] or "\ufffd", match[0], current))
            continue
        name = match[2].lower()
        if match[1]:
            if any(open_.name == name for open_ in stack):
                while stack.pop().name != name:
                    pass
        elif not match[3].rstrip().endswith("/"):
            stack.append(_Open(match.start(), name, match[0]))
        current = tuple(stack)
    units += [(c, _esc(c), current) for c in html_text[pos:]]
    return units


def _render_units(units: Sequence[_Unit]) -> str:
    out: list[str] = []
    opened: tuple[_Open, ...] = ()
    for _, raw, stack in units:
        if stack is not opened:
            same = 0
            while same < min(len(opened), len(stack)) and opened[same] == stack[same]:
                same += 1
            out += [f"</{o.name}>" for o in reversed(opened[same:])]
            out += [o.raw for o in stack[same:]]
            opened = stack
        out.append(raw)
    out += [f"</{o.name}>" for o in reversed(opened)]
    return "".join(out)


def visible_text(html_text: str) -> str:
    """The text Telegram shows for `html_text`: tags removed, entities unescaped."""
    return "".join(unit[0] for unit in _units(html_text))


def split_telegram_html(html_text: str, limit: int,
                        length: Callable[[str], int] = len) -> list[str]:
    """Parts whose visible text is at most `limit`, cut as `split_plain` cuts the visible
    text; tags open at a cut are closed and reopened (same attributes) in the next part."""
    units = _units(html_text)
    visible = "".join(unit[0] for unit in units)
    return [_render_units(units[a:b]) for a, b in _spans(visible, limit, length)]
