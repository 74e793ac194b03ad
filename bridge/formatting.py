"""Text between Slack mrkdwn and each customer platform's format, and splitting at limits.

Slack text arrives escaped (`&amp;`, `&lt;`, `&gt;`), so a raw `<` always opens Slack markup
(`<url|label>`, `<@U1>`, `<!here>`).  A message is parsed once into spans, then rendered as
Telegram HTML (escaped last, only from Telegram's tag set) or as plain text.  Formatting
markers count only where Slack applies them: `*` opens after a line start, space or
punctuation and before a non-space; it closes after a non-space and before a non-word
character, on the same line.  Telegram's entities (UTF-16 offsets) go the other way.

Pure and stdlib only: nothing here imports the rest of the bridge.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TELEGRAM_LIMIT = 4096
MESSENGER_LIMIT = 2000
SMS_LIMIT = 1600

_SLACK_CHARS = {"amp": "&", "lt": "<", "gt": ">"}
_SLACK_ENTITY = re.compile(r"&(amp|lt|gt);")
_TOKEN = re.compile(r"<([^<>\n]+)>")
_TOKEN_OR_ENTITY = re.compile(r"<([^<>\n]+)>|&(amp|lt|gt);")
_INLINE = re.compile(r"`([^`\n]+)`|<([^<>\n]+)>|&(amp|lt|gt);")
_PRE = re.compile(r"```(.+?)```", re.DOTALL)
_QUOTE = "&gt; "
_MARKERS = {"*": "b", "_": "i", "~": "s"}
_HTTP_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def mrkdwn_escape(text: str) -> str:
    """Customer text for Slack: only `&`, `<` and `>` escaped (never the whole HTML set)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescape(text: str) -> str:
    """Slack's three entities, in one pass (so `&amp;lt;` becomes `&lt;`, not `<`)."""
    return _SLACK_ENTITY.sub(lambda m: _SLACK_CHARS[m[1]], text)


def mention_ids(mrkdwn: str) -> set[str]:
    """The user ids of `<@U1>` and `<@U1|name>` mentions, to look their names up first."""
    ids = set()
    for match in _TOKEN.finditer(mrkdwn):
        target = match[1].partition("|")[0]
        if target.startswith("@") and len(target) > 1:
            ids.add(_unescape(target[1:]))
    return ids


# -- Slack mrkdwn: parse into spans ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Span:
    kind: str  # "text", "code", "pre", "a" (text=label), "b", "i", "s", "blockquote"
    text: str = ""
    children: tuple[_Span, ...] = ()
    href: str = ""


_Cell = str | _Span  # one character of a line, or an atom (code span, Slack token)


def _angle(body: str, names: Mapping[str, str]) -> _Span:
    """One Slack token, `<...>` without the brackets."""
    target, _, label = body.partition("|")
    target, label = _unescape(target), _unescape(label)
    head, rest = target[:1], target[1:]
    if head == "@":
        return _Span("text", "@" + (names.get(rest) or label.lstrip("@") or rest))
    if head == "#":
        return _Span("text", "#" + (label.lstrip("#") or rest))
    if head == "!":
        command, _, argument = rest.partition("^")
        if command == "date":
            return _Span("text", label or rest)
        if label:
            return _Span("text", "@" + label.lstrip("@"))
        return _Span("text", "@" + (argument if command == "subteam" and argument else command))
    return _Span("a", label, href=target)


def _link_plain(label: str, url: str) -> str:
    shown = url[7:] if url[:7].lower() == "mailto:" else url
    if not label or label in (url, shown):
        return shown
    return f"{label} ({shown})" if shown else label


def _literal(raw: str, names: Mapping[str, str]) -> str:
    """Inside code: no formatting; tokens become their plain text, entities are unescaped."""

    def one(match: re.Match[str]) -> str:
        if match[1] is not None:
            return _to_plain([_angle(match[1], names)])
        return _SLACK_CHARS[match[2]]

    return _TOKEN_OR_ENTITY.sub(one, raw)


def _parse(mrkdwn: str, names: Mapping[str, str]) -> list[_Span]:
    spans: list[_Span] = []
    pos = 0
    for match in _PRE.finditer(mrkdwn):
        at_start = pos == 0 or mrkdwn[pos - 1] == "\n"
        spans += _parse_lines(mrkdwn[pos : match.start()], at_start, names)
        spans.append(_Span("pre", _literal(match[1], names)))
        pos = match.end()
    spans += _parse_lines(mrkdwn[pos:], pos == 0 or mrkdwn[pos - 1] == "\n", names)
    return spans


def _parse_lines(segment: str, at_start: bool, names: Mapping[str, str]) -> list[_Span]:
    """Lines outside pre blocks; consecutive `> ` lines make one blockquote."""
    lines = segment.split("\n")
    quotes = [(n > 0 or at_start) and line.startswith(_QUOTE) for n, line in enumerate(lines)]
    out: list[_Span] = []
    n = 0
    while n < len(lines):
        quoted, first = quotes[n], n
        body: list[_Span] = []
        while n < len(lines) and quotes[n] == quoted:
            if n > first:
                body.append(_Span("text", "\n"))
            body += _inline(lines[n][len(_QUOTE) :] if quoted else lines[n], names)
            n += 1
        if first:
            out.append(_Span("text", "\n"))
        out += [_Span("blockquote", children=tuple(body))] if quoted else body
    return out


def _is_space(cell: _Cell | None) -> bool:
    return isinstance(cell, str) and cell.isspace()


def _is_word(cell: _Cell | None) -> bool:
    return isinstance(cell, str) and cell.isalnum()


def _inline(line: str, names: Mapping[str, str]) -> list[_Span]:
    cells: list[_Cell] = []
    pos = 0
    for match in _INLINE.finditer(line):
        cells.extend(line[pos : match.start()])
        if match[1] is not None:
            cells.append(_Span("code", _literal(match[1], names)))
        elif match[2] is not None:
            cells.append(_angle(match[2], names))
        else:
            cells.append(_SLACK_CHARS[match[3]])
        pos = match.end()
    cells.extend(line[pos:])
    last = len(cells) - 1
    closers = {
        marker: [
            j
            for j, cell in enumerate(cells)
            if cell == marker
            and j > 0
            and not _is_space(cells[j - 1])
            and (j == last or not _is_word(cells[j + 1]))
        ]
        for marker in _MARKERS
    }
    return _format(cells, 0, len(cells), frozenset(), closers)


def _format(cells: list[_Cell], lo: int, hi: int, active: frozenset[str],
            closers: dict[str, list[int]]) -> list[_Span]:
    """Match markers in cells[lo:hi]; each kind at most once on the way down (depth <= 3)."""
    out: list[_Span] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            out.append(_Span("text", "".join(text)))
            text.clear()

    i = lo
    while i < hi:
        cell = cells[i]
        if isinstance(cell, str):
            kind = _MARKERS.get(cell)
            if (kind and kind not in active and i + 1 < hi and not _is_space(cells[i + 1])
                    and (i == 0 or not _is_word(cells[i - 1]))):
                found = closers[cell]
                k = bisect_left(found, i + 2)
                if k < len(found) and found[k] < hi:
                    flush()
                    inner = _format(cells, i + 1, found[k], active | {kind}, closers)
                    out.append(_Span(kind, children=tuple(inner)))
                    i = found[k] + 1
                    continue
            text.append(cell)
        else:
            flush()
            out.append(cell)
        i += 1
    flush()
    return out


# -- rendering -----------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _to_html(spans: Sequence[_Span]) -> str:
    out: list[str] = []
    for span in spans:
        if span.kind == "text":
            out.append(_esc(span.text))
        elif span.kind == "a":
            if span.text and span.text != span.href and _HTTP_URL.fullmatch(span.href):
                out.append(f'<a href="{html.escape(span.href)}">{_esc(span.text)}</a>')
            else:  # bare urls are linked by Telegram itself; other schemes stay text
                out.append(_esc(_link_plain(span.text, span.href)))
        elif span.kind in ("code", "pre"):
            if span.text:
                out.append(f"<{span.kind}>{_esc(span.text)}</{span.kind}>")
        else:
            inner = _to_html(span.children)
            if inner:
                out.append(f"<{span.kind}>{inner}</{span.kind}>")
    return "".join(out)


def _to_plain(spans: Sequence[_Span]) -> str:
    out: list[str] = []
    for span in spans:
        if span.kind in ("text", "code", "pre"):
            out.append(span.text)
        elif span.kind == "a":
            out.append(_link_plain(span.text, span.href))
        elif span.kind == "blockquote":
            out.append("> " + _to_plain(span.children).replace("\n", "\n> "))
        else:
            out.append(_to_plain(span.children))
    return "".join(out)


def mrkdwn_to_telegram_html(mrkdwn: str, names: Mapping[str, str] | None = None) -> str:
    """Slack event text to Telegram `parse_mode=HTML`: balanced tags from Telegram's set."""
    return _to_html(_parse(mrkdwn, names or {}))


def mrkdwn_to_plain(mrkdwn: str, names: Mapping[str, str] | None = None) -> str:
    """Slack event text for plain targets (SMS, Messenger): markers stripped, links as
    `label (url)`, quote lines kept as `> `, entities unescaped, nothing escaped."""
    return _to_plain(_parse(mrkdwn, names or {}))


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
