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
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


_WHATSAPP_MARKS = {"b": "*", "i": "_", "s": "~"}


def _to_whatsapp(spans: Sequence[_Span]) -> str:
    out: list[str] = []
    for span in spans:
        if span.kind == "text":
            out.append(span.text)
        elif span.kind == "a":
            out.append(_link_plain(span.text, span.href))
        elif span.kind == "code":
            out.append(f"`{span.text}`" if span.text else "")
        elif span.kind == "pre":
            out.append(f"```{span.text}```" if span.text else "")
        elif span.kind == "blockquote":
            out.append("> " + _to_whatsapp(span.children).replace("\n", "\n> "))
        else:
            inner, mark = _to_whatsapp(span.children), _WHATSAPP_MARKS.get(span.kind, "")
            out.append(f"{mark}{inner}{mark}" if inner.strip() else inner)
    return "".join(out)


def mrkdwn_to_whatsapp(mrkdwn: str, names: Mapping[str, str] | None = None) -> str:
    """Slack event text to WhatsApp's own formatting: `*bold*`, `_italic_`, `~strike~`,
    `` `code` ``, ```` ```block``` ````, `> ` quotes; links as `label (url)`, mentions as
    @Name, entities unescaped."""
    return _to_whatsapp(_parse(mrkdwn, names or {}))
