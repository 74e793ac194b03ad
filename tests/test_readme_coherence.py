"""The README holds together after many hands: its Contents list names every `## ` heading,
in order, with the anchor GitHub makes; and no row of the Configuration reference, Commands
or HTTP endpoints table is there twice (two features describing one key or endpoint)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def text() -> str:
    return README.read_text(encoding="utf-8")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def section(body: str, start: str, end: str) -> str:
    return body[body.index(start):body.index(end, body.index(start) + len(start))]


def test_contents_lists_every_section_in_order() -> None:
    body = text()
    headings = [h for h in re.findall(r"^## (.+)$", body, re.MULTILINE) if h != "Contents"]
    contents = section(body, "## Contents", "\n## ")
    listed = re.findall(r"^- \[(.+)\]\(#([^)]+)\)$", contents, re.MULTILINE)
    assert [name for name, _ in listed] == headings
    assert [(name, link) for name, link in listed if link != anchor(name)] == []


def table_keys(part: str, commands: bool = False) -> list[str]:
    """What each row of the tables in `part` describes: the first code span of its first cell
    (a command without its flags and placeholders: `bridge demo [--serve]` is `bridge demo`)."""
    cells = re.findall(r"^\| ((?:[^|\\]|\\.)+?) \|", part, re.MULTILINE)  # `\|` is in a cell
    keys = []
    for cell in cells:
        code = re.match(r"`([^`]+)`", cell)
        if code is None:
            continue  # a header or rule row
        key = code.group(1)
        if commands:
            words = re.split(r" \[| --", key)[0].split()
            key = " ".join(w for w in words if not (w.strip('"').isupper()))
        keys.append(key)
    return keys


def test_reference_tables_have_no_duplicated_rows() -> None:
    body = text()
    for name, keys in (
            ("Configuration reference",
             table_keys(section(body, "## Configuration reference", "\n## "))),
            ("Commands", table_keys(section(body, "### Commands", "\n### "), commands=True)),
            ("HTTP endpoints", table_keys(section(body, "### HTTP endpoints", "\n### ")))):
        assert len(keys) > 10, name
        twice = sorted(k for k, n in Counter(keys).items() if n > 1)
        assert twice == [], f"README {name}: rows given twice: {twice}; keep one of each"
