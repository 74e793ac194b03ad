"""The store stores: nothing under `storage/` writes Slack markup or uses the mrkdwn helpers.

What the agents are told is kept as typed events (`vocab/events.py`) and rendered by the
console (`bridge/console/notices.py`).  Every string literal (f-string parts and docstrings
too), import and name of each module under `storage/` is read with `ast`; comments may explain.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# An emoji code (`:warning:`), a mention or special mention (`<@U1>`, `<!here>`, `<#C1>`), a
# date token (`<!date^…>`), a link with a label (`<url|label>`).
MARKUP = re.compile(r"(?<![\w:]):[a-z0-9_+\-]+:(?![\w:])|<[@!#]|<[a-z]+://[^>|]*\|")
HELPERS = re.compile(r"mrkdwn", re.IGNORECASE)
NOT_SLACK = frozenset({":memory:"})  # SQLite's in-memory database


def slack_in(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for each piece of Slack rendering in `source`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for found in MARKUP.finditer(node.value):
                if found[0] not in NOT_SLACK:
                    yield node.lineno, f"Slack markup {found[0]!r}"
        elif isinstance(node, ast.ImportFrom) and HELPERS.search(node.module or ""):
            yield node.lineno, f"import of {node.module}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if HELPERS.search(alias.name):
                    yield node.lineno, f"import of {alias.name}"
        elif isinstance(node, ast.alias) and HELPERS.search(node.name):
            yield getattr(node, "lineno", 0), f"import of {node.name}"
        elif isinstance(node, ast.Name) and HELPERS.search(node.id):
            yield node.lineno, f"use of {node.id}"
        elif isinstance(node, ast.Attribute) and HELPERS.search(node.attr):
            yield node.lineno, f"use of {node.attr}"


def test_no_module_under_storage_writes_slack() -> None:
    modules = sorted((ROOT / "storage").rglob("*.py"))
    assert len(modules) > 10
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in modules
             for line, what in slack_in(path.read_text())]
    assert not found, "storage/ renders for Slack (return an event instead):\n" + "\n".join(found)


@pytest.mark.parametrize("bad", [
    'notice = f":warning: Not delivered to the customer: {why}"',
    'text = ":no_bell: The customer asked"',
    'created_by = f"<@{user}>"',
    'everyone = "<!here> look"',
    'when = f"<!date^{at}^{{date_short}}|{fallback}>"',
    'link = f"<https://example.org/t|its thread>"',
    "from vocab.mrkdwn import mrkdwn_escape",
    "import vocab.mrkdwn",
    "from vocab import mrkdwn",
    "name = escape_mrkdwn(name)",
    "name = text.mrkdwn_escape(name)",
])
def test_the_scanner_flags_slack_rendering(bad: str) -> None:
    assert list(slack_in(bad)), bad


@pytest.mark.parametrize("clean", [
    'sql = "SELECT CAST(? AS {{real}}), a::text FROM t WHERE x = ?"',
    'url = "postgresql://user@host:5432/db"',
    'when = "12:30:00"',
    'path = ":memory:"',
    "# a comment may say :warning: and <@U1>",
    'evidence = f"{issued} code, used on {label}"',
])
def test_the_scanner_leaves_plain_text_alone(clean: str) -> None:
    assert not list(slack_in(clean)), clean
