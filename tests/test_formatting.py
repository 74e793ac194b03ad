"""Slack mrkdwn to Telegram HTML and plain text, Telegram entities to mrkdwn, and splitting."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocab.mrkdwn import mention_ids, mrkdwn_escape, mrkdwn_to_plain, mrkdwn_to_telegram_html
from vocab.split import split_plain, split_telegram_html, visible_text
from vocab.telegram_text import telegram_to_mrkdwn, utf16_len

NAMES = {"U1": "Ann Lee", "U2": "Bo <&>"}
FAST = settings(max_examples=150, deadline=None)
MARKUP = st.text(alphabet="*_~`<>&|@!#:/ \nabcU1")
FRAGMENTS = st.lists(st.sampled_from([
    "*", "_", "~", "`", "```", "<", ">", "&gt; ", "&amp;", "&lt;", "|", "<@U1>", "<@U9|x>",
    "<!here>", "<#C1|g>", "<https://x.y/?a=1&amp;b=2|l>", "<mailto:a@b.c>", " ", "\n", "a", "b2",
    "😀", "e\u0301",
])).map("".join)
SPACE = "[ \t\n\r\f\v]"  # what the splitters cut at: not NBSP, not \x1f
WS = SPACE + "*"


class TagChecker(HTMLParser):
    """Telegram's rules as the bridge uses them: known tags, balanced, properly nested."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.data: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in {"b", "i", "s", "code", "pre", "a", "blockquote"}:
            self.errors.append(f"unknown <{tag}>")
        if [name for name, _ in attrs] != (["href"] if tag == "a" else []):
            self.errors.append(f"attributes {attrs} on <{tag}>")
        if any(t in ("code", "pre", "a") for t in self.stack) or (
                tag in ("pre", "blockquote") and self.stack):
            self.errors.append(f"<{tag}> inside {self.stack}")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing <{tag}/>")

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def well_formed(html_text: str) -> str:
    """Assert `html_text` is valid Telegram HTML; return its text as HTMLParser reads it."""
    checker = TagChecker()
    checker.feed(html_text)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (html_text, checker.errors)
    text = "".join(checker.data)
    assert text == visible_text(html_text)  # an independent parser agrees
    return text


def is_subsequence(short: str, long: str) -> bool:
    chars = iter(long)
    return all(c in chars for c in short)


def words(text: str) -> list[str]:
    return [w for w in re.split(SPACE + "+", text) if w]


def rejoins(original: str, parts: list[str]) -> bool:
    """`original` is the parts in order, with only whitespace between them (at the cuts)."""
    pattern = WS + WS.join(re.escape(p) for p in parts) + WS
    return re.fullmatch(pattern, original) is not None


@pytest.mark.parametrize(("mrkdwn", "expected"), [
    ("*bold* _it_ ~gone~", "<b>bold</b> <i>it</i> <s>gone</s>"),
    ("`a *b* <@U1>` and ```x _y_\n  z```", "<code>a *b* @Ann Lee</code> and <pre>x _y_\n  z</pre>"),
    ("*_both_*", "<b><i>both</i></b>"),
    ("2*3*4, a * b * c, x*y*, snake_case_words_", "2*3*4, a * b * c, x*y*, snake_case_words_"),
    ("*not closed, *x*y", "*not closed, *x*y"),
    ("&gt; quoted *b*\n&gt; more\nafter", "<blockquote>quoted <b>b</b>\nmore</blockquote>\nafter"),
    ("a &gt; b", "a &gt; b"),
    ("&amp;lt; is &amp;amp; &lt;b&gt;", "&amp;lt; is &amp;amp; &lt;b&gt;"),
    ("<https://x.y/?a=1&amp;b=\"2\"|the *site*>",
     '<a href="https://x.y/?a=1&amp;b=&quot;2&quot;">the *site*</a>'),
    ("<https://x.y> <https://x.y|https://x.y>", "https://x.y https://x.y"),
    ("*<https://x.y|go>*", '<b><a href="https://x.y">go</a></b>'),
    ("<mailto:a@b.c|a@b.c> <mailto:a@b.c|write> <ftp://f|f>", "a@b.c write (a@b.c) f (ftp://f)"),
    ("<@U1> <@U2> <@U3> <@U4|dana>", "@Ann Lee @Bo &lt;&amp;&gt; @U3 @dana"),
    ("<#C1|general> <#C2> <!here> <!channel> <!everyone|@everyone>",
     "#general #C2 @here @channel @everyone"),
    ("<!subteam^S1|@team> <!date^1700000000^{date}|Nov 14>", "@team Nov 14"),
    ("*<|>*", ""),
])
def test_mrkdwn_to_telegram_html(mrkdwn: str, expected: str) -> None:
    out = mrkdwn_to_telegram_html(mrkdwn, NAMES)
    assert out == expected
    well_formed(out)


@pytest.mark.parametrize(("mrkdwn", "expected"), [
    ("*bold* _it_ ~s~ `c*d*` ```p``` snake_case", "bold it s c*d* p snake_case"),
    ("<https://x.y|site> <https://x.y> <mailto:a@b.c|a@b.c>",
     "site (https://x.y) https://x.y a@b.c"),
    ("&gt; quote *b*\n&gt; two", "> quote b\n> two"),
    ("<@U1> <@U3> <!here> &amp;lt;", "@Ann Lee @U3 @here &lt;"),
])
def test_mrkdwn_to_plain(mrkdwn: str, expected: str) -> None:
    assert mrkdwn_to_plain(mrkdwn, NAMES) == expected


def test_escape_and_mention_ids() -> None:
    assert mrkdwn_escape("a<b>&c <@U1>") == "a&lt;b&gt;&amp;c &lt;@U1&gt;"
    assert mention_ids("<@U1> <@U2|bo> &lt;@U3&gt; <#C1> <!here> `<@W4>`") == {"U1", "U2", "W4"}


def entity(kind: str, offset: int, length: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "offset": offset, "length": length, **extra}


@pytest.mark.parametrize(("text", "entities", "expected"), [
    ("😀 bold 👍🏽 it", [entity("bold", 3, 4), entity("italic", 13, 2)], "😀 *bold* 👍🏽 _it_"),
    ("bold ", [entity("bold", 0, 5)], "*bold* "),
    ("x<y & bold", [entity("bold", 6, 4)], "x&lt;y &amp; *bold*"),
    ("hello world", [entity("bold", 0, 11), entity("italic", 6, 5)], "*hello _world_*"),
    ("hello world", [entity("bold", 0, 6), entity("italic", 3, 5)], "*hello* world"),  # crossing
    ("unbelievable", [entity("bold", 2, 3)], "unbelievable"),  # mid-word: Slack would not
    ("one\ntwo", [entity("strikethrough", 0, 7)], "~one~\n~two~"),
    ("x = 1 < 2", [entity("code", 0, 9)], "`x = 1 &lt; 2`"),
    ("def f():\n  pass", [entity("pre", 0, 15, language="python")], "```def f():\n  pass```"),
    ("see docs", [entity("text_link", 4, 4, url="https://d.io/?a&b")], "see <https://d.io/?a&amp;b|docs>"),
    ("see docs", [entity("text_link", 4, 4, url="!here")], "see docs"),
    ("go x.io or https://y.io", [entity("url", 3, 4), entity("url", 11, 12)],
     "go <http://x.io|x.io> or <https://y.io>"),
    ("<!here> <@U1> & *", None, "&lt;!here&gt; &lt;@U1&gt; &amp; *"),
    ("😀x", [entity("bold", 1, 2), entity("bold", 0, 99), entity("bold", -1, 2),
             entity("bold", 2, 0), {"type": "bold", "offset": "0", "length": 1},
             {"type": ["bold"], "offset": 0, "length": 2}, entity("nope", 0, 1)], "😀x"),
])
def test_telegram_to_mrkdwn(text: str, entities: list[dict[str, Any]] | None,
                            expected: str) -> None:
    assert telegram_to_mrkdwn(text, entities) == expected


@pytest.mark.parametrize("limit", [4096, 2000, 1600])
def test_split_plain_at_platform_limits(limit: int) -> None:
    expected = [f"word{i}" + "x" * (i % 13) for i in range(3000)]
    text = " ".join(expected[:1000]) + "\n\n" + "\n".join(expected[1000:])
    parts = split_plain(text, limit)
    assert len(parts) > 1 and all(0 < len(p) <= limit for p in parts)
    assert words(" ".join(parts)) == expected and rejoins(text, parts)
    assert len(parts[0]) >= limit // 2  # a cut late in the window, not at the first break


def test_split_plain_cuts_long_words_and_counts_utf16() -> None:
    assert split_plain("ab " + "x" * 7 + " cd", 4) == ["ab", "xxxx", "xxx", "cd"]
    assert split_plain("😀😀😀 a", 4, utf16_len) == ["😀😀", "😀 a"]
    assert split_plain("ae\u0301bc", 2) == ["a", "e\u0301", "bc"]  # not before the accent
    assert split_plain(" a ", 5) == [" a "] and split_plain(" ab cd", 3) == ["ab", "cd"]
    assert split_plain("   ", 2) == [] and split_plain("", 5) == []
    with pytest.raises(ValueError):
        split_plain("😀😀", 1, utf16_len)


def test_split_telegram_html_reopens_tags() -> None:
    html_text = mrkdwn_to_telegram_html("*bold <https://x.y/?a&amp;b|one two>* tail &amp;&amp;")
    parts = split_telegram_html(html_text, 7)
    assert parts == [
        "<b>bold</b>",
        '<b><a href="https://x.y/?a&amp;b">one two</a></b>',
        "tail &amp;&amp;",  # an entity is one character
    ]
    assert split_telegram_html("<pre>aaa\nbbb</pre>", 5) == ["<pre>aaa</pre>", "<pre>bbb</pre>"]
    long = "<b>" + "x" * 5000 + "</b>"
    assert [len(visible_text(p)) for p in split_telegram_html(long, 4096)] == [4096, 904]


@FAST
@given(st.one_of(st.text(), MARKUP, FRAGMENTS))
def test_no_input_crashes_and_html_is_always_well_formed(text: str) -> None:
    well_formed(mrkdwn_to_telegram_html(text, NAMES))
    well_formed(mrkdwn_to_telegram_html(mrkdwn_escape(text)))
    mrkdwn_to_plain(text, NAMES)
    mention_ids(text)
    assert telegram_to_mrkdwn(text, None) == mrkdwn_escape(text)


@FAST
@given(st.one_of(st.text(), MARKUP, FRAGMENTS))
def test_escaped_text_loses_only_markers(text: str) -> None:
    """Customer-typed text: Telegram shows a subsequence of it, missing only formatting
    markers (`*_~` and backticks) and the `> ` of quote lines; plain keeps the quotes."""
    shown = visible_text(mrkdwn_to_telegram_html(mrkdwn_escape(text)))
    plain = mrkdwn_to_plain(mrkdwn_escape(text))
    quote_lines = sum(line.startswith("> ") for line in text.split("\n"))
    for out, removable in ((shown, "*_~`> "), (plain, "*_~`")):
        assert is_subsequence(out, text)
        lost = Counter(text) - Counter(out)
        assert set(lost) <= set(removable), lost
        assert lost[">"] <= quote_lines and lost[" "] <= quote_lines


@FAST
@given(st.text(st.characters(blacklist_characters="*_~`>")))
def test_text_without_markers_is_unchanged(text: str) -> None:
    assert visible_text(mrkdwn_to_telegram_html(mrkdwn_escape(text))) == text
    assert mrkdwn_to_plain(mrkdwn_escape(text)) == text


LENGTHS: list[Callable[[str], int]] = [len, utf16_len]


@FAST
@given(st.one_of(st.text(), FRAGMENTS), st.integers(2, 40), st.sampled_from(LENGTHS))
def test_split_plain_properties(text: str, limit: int, length: Callable[[str], int]) -> None:
    parts = split_plain(text, limit, length)
    assert all(p and length(p) <= limit for p in parts)
    assert rejoins(text, parts)
    if all(length(word) <= limit for word in words(text)):
        assert words(" ".join(parts)) == words(text)  # no word was cut


@FAST
@given(st.one_of(MARKUP, FRAGMENTS), st.integers(2, 40), st.sampled_from(LENGTHS))
def test_split_telegram_html_properties(text: str, limit: int,
                                        length: Callable[[str], int]) -> None:
    html_text = mrkdwn_to_telegram_html(text, NAMES)
    parts = split_telegram_html(html_text, limit, length)
    shown = [well_formed(p) for p in parts]
    assert all(s and length(s) <= limit for s in shown)
    assert rejoins(visible_text(html_text), shown)




@st.composite
def tg_message(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """A text and entities mostly in range (UTF-16 offsets), some out of range or malformed."""
    text = draw(st.one_of(st.text(), MARKUP, FRAGMENTS))
    units = st.integers(-1, utf16_len(text) + 1)
    entities = draw(st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["bold", "italic", "strikethrough", "code", "pre", "text_link",
                                  "url", "mention", "spoiler", "bogus"]),
         "offset": units, "length": units},
        optional={"url": st.sampled_from(["https://e.x/?a=1&b=<2>", "javascript:x", "!here",
                                          "", "tg://user?id=1", "@U1", 7])},
    ), max_size=8))
    return text, entities

LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def unlink(match: re.Match[str]) -> str:
    assert re.match(r"(?:https?|mailto|tg|ftp):", match[1], re.IGNORECASE), match[0]
    return match[2] if match[2] is not None else match[1]


@FAST
@given(tg_message())
def test_telegram_to_mrkdwn_keeps_every_character(
        message: tuple[str, list[dict[str, Any]]]) -> None:
    text, entities = message
    out = telegram_to_mrkdwn(text, entities)
    plain = LINK.sub(unlink, out)  # links only ever point at a URL, never a mention
    assert "<" not in plain and ">" not in plain
    unescaped = re.sub(r"&(amp|lt|gt);", lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m[1]], plain)
    assert re.sub("[*_~`]", "", unescaped) == re.sub("[*_~`]", "", text)
