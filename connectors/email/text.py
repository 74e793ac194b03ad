"""Readable text from mail bodies: HTML to text, quoted history and signatures cut off.

All pure functions of strings.  What they cut is only left out of what Slack shows: the full
original stays available (the connector attaches the `.eml`).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Our own outbound mails start with this line; a reply quoting us is cut there for sure.
REPLY_MARKER = "-- Please reply above this line --"

_BLOCK = frozenset({"p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4",
                    "h5", "h6", "pre", "hr", "section", "article", "header", "footer", "dl",
                    "dt", "dd", "blockquote", "address", "center"})
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr",
                   "source", "embed", "param", "track"})
# Containers mail clients put quoted history in (Gmail, Apple Mail, Thunderbird, Yahoo).
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_extra", "moz-cite-prefix", "yahoo_quoted",
                            "protonmail_quote", "zmail_extra"})
_QUOTE_IDS = frozenset({"divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-"
                        "container", "ymail_android_signature"})


class _TextMaker(HTMLParser):
    def __init__(self, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.out: list[str] = []
        self.skip_depth = 0  # inside <script>, <style>...
        self.quote_depth = 0  # inside a quoted-history container
        self.stack: list[str] = []
        self.done = False  # after Outlook's reply header: everything else is history
        self.links: list[tuple[str | None, int]] = []  # (href, where its text starts in out)

    def _is_quote(self, tag: str, attrs: dict[str, str | None]) -> bool:
        if not self.drop_quotes:
            return False
        classes = set((attrs.get("class") or "").lower().split())
        ident = (attrs.get("id") or "").lower()
        return (tag == "blockquote" or bool(classes & _QUOTE_CLASSES)
                or ident in _QUOTE_IDS)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        named = dict(attrs)
        if self.drop_quotes and (named.get("id") or "").lower() in ("divrplyfwdmsg",
                                                                    "appendonsend"):
            self.done = True
            return
        if tag in _VOID:
            if tag in ("br", "hr") and not self.skip_depth and not self.quote_depth:
                self.out.append("\n")
            return
        self.stack.append(tag)
        if tag in _SKIP:
            self.skip_depth += 1
        elif self.quote_depth or self._is_quote(tag, named):
            self.quote_depth += 1
        if tag in _BLOCK:
            self.out.append("\n")
        if tag == "li":
            self.out.append("• ")
        if tag == "a":
            self.links.append((named.get("href"), len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if self.done or tag in _VOID or tag not in self.stack:
            return
        while self.stack:  # close whatever was left open inside
            top = self.stack.pop()
            if top in _SKIP:
                self.skip_depth -= 1
            elif self.quote_depth:
                self.quote_depth -= 1
            if top == "a" and self.links:
                self._close_link(*self.links.pop())
            if top in _BLOCK:
                self.out.append("\n")
            if top == tag:
                break

    def _close_link(self, href: str | None, start: int) -> None:
        label = "".join(self.out[start:]).strip()
        href = (href or "").strip()
        if label and href.startswith(("http://", "https://")) and \
                href.rstrip("/") != label.rstrip("/"):
            self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if self.done or self.skip_depth or self.quote_depth:
            return
        if "pre" in self.stack:
            self.out.append(data)
        else:
            self.out.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        raw = "".join(self.out).replace("\xa0", " ")
        lines = [line.strip() for line in raw.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str, *, drop_quotes: bool = False) -> str:
    """Readable plain text; `drop_quotes` leaves out quoted history containers."""
    maker = _TextMaker(drop_quotes)
    try:
        maker.feed(html)
        maker.close()
    except Exception:  # HTMLParser is lenient; never let odd markup lose the mail
        return re.sub(r"<[^>]*>", " ", html).strip()
    return maker.text()


_WROTE = re.compile(
    r"^(On\s.{0,300}\bwrote|Le\s.{0,300}\ba écrit|Am\s.{0,300}\bschrieb|El\s.{0,300}\bescribió"
    r"|Il\s.{0,300}\bha scritto|Op\s.{0,300}\bschreef)\s*:?\s*$", re.IGNORECASE | re.DOTALL)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine"
                       r"|Forwarded message)\s*-{2,}\s*$", re.IGNORECASE)
_HEADER = re.compile(r"^\s*\*?(From|De|Von|Van|Da)\s*:\*?\s", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*\*?(Sent|Date|Envoyé|Gesendet|To|Subject|Objet|Betreff)\s*:",
                          re.IGNORECASE)
_SIGNATURE = re.compile(r"^(-- ?|Sent from my \w[\w ]*|Get Outlook for \w+.*|Sent from (Mail|"
                        r"Outlook|Yahoo Mail) for \w+.*)$", re.IGNORECASE)


def _cut_at(lines: list[str]) -> int:
    """The index of the first line of quoted history or signature, or len(lines)."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == REPLY_MARKER or _ORIGINAL.match(stripped) or _SIGNATURE.match(stripped):
            return i
        if _WROTE.match(stripped):
            return i
        if i + 1 < len(lines) and stripped[:3].lower() in ("on ", "le ", "am ", "el ") and \
                _WROTE.match(f"{stripped} {lines[i + 1].strip()}"):
            return i
        if re.fullmatch(r"_{8,}", stripped) and any(_HEADER.match(x) for x in lines[i + 1:i + 3]):
            return i
        if _HEADER.match(line) and any(_HEADER_NEXT.match(x) for x in lines[i + 1:i + 5]) and \
                i > 0:
            return i
        if stripped.startswith(">") and all(not x.strip() or x.lstrip().startswith(">")
                                            for x in lines[i:]):
            return i
    return len(lines)


def strip_reply(text: str) -> str:
    """The new part of a reply: quoted history and the signature cut off.

    Falls back to the whole text when cutting would leave nothing (a mail that is all quote,
    or one written below the quote)."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept = "\n".join(lines[:_cut_at(lines)]).strip()
    return kept or text.strip()
