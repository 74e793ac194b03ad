"""Canned reply files and modal payloads, parsed without trusting them (issue 22): any file
yields a reply or a `CannedFileError` naming a fix; any submitted view yields a string."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.canned import CannedFileError, markdown_to_mrkdwn, parse_file
from bridge.console.canned_views import submitted
from bridge.templates import TemplateError, render_text

HEADER = st.sampled_from(["---\n", "---\nname: x\n---\n", "---\nname: [1, 2]\n---\n",
                          "---\ntags: a b\nattachments: [../../etc/passwd]\n---\n",
                          "---\ntags: 5\nattachments: {a: 1}\n---\n",
                          "---\nattachments: reply.md\nteam: [x]\n---\n", ""])
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=HEADER, body=st.text(max_size=200))
def test_any_file_is_a_reply_or_a_named_problem(tmp_path: Path, head: str, body: str) -> None:
    path = tmp_path / "reply.md"
    path.write_text(head + body, encoding="utf-8")
    try:
        reply = parse_file(path, tmp_path)
    except CannedFileError as exc:
        assert exc.fix and str(path) in str(exc)
    else:
        assert reply.name and reply.source == "file"
        assert all(a.is_relative_to(tmp_path.resolve()) for a in reply.attachments)


@given(view=st.dictionaries(st.sampled_from(["state", "x"]), JSONISH, max_size=2),
       block=st.sampled_from(["name", "text", "choice"]))
def test_any_submitted_view_reads_as_text(view: dict[str, Any], block: str) -> None:
    assert isinstance(submitted(view, block), str)


def test_markdown_becomes_what_an_agent_types_in_slack() -> None:
    assert markdown_to_mrkdwn("**Order** ~~late~~, see [tracking](https://x.example/t)") == \
        "*Order* ~late~, see <https://x.example/t|tracking>"
    assert markdown_to_mrkdwn("{{ customer.__class__ }}") == "{{ customer.__class__ }}"


def test_the_sandbox_refuses_reaching_past_the_variables() -> None:
    variables = {"customer": {"name": "Ann"}}
    for source in ("{{ customer.__class__.__mro__ }}", "{{ customer.items.__globals__ }}",
                   "{% for i in range(10**6) %}x{% endfor %}", "{{ 'x' * 10**6 }}"):
        try:
            render_text(source, variables)
        except TemplateError:
            continue
        raise AssertionError(f"rendered: {source}")
