"""Property tests: no bytes crash the email parser or the text functions."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.email.parse import find_part, parse_mail
from connectors.email.text import html_to_text, strip_reply

SUPPORT = "support@example.com"
SAMPLES = [p.read_bytes() for p in sorted((Path(__file__).parent / "fixtures" / "email")
                                           .glob("*.eml"))]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    got = parse_mail(data, SUPPORT)
    assert got.message_id
    for file in got.files:
        find_part(data, file.index)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 5000), st.binary(max_size=8)),
                                          max_size=6))
def test_damaged_real_mail_never_crashes_the_parser(
    sample: bytes, edits: list[tuple[int, bytes]],
) -> None:
    data = bytearray(sample)
    for at, junk in edits:
        at %= len(data)
        data[at:at + len(junk)] = junk
    got = parse_mail(bytes(data), SUPPORT)
    for file in got.files:
        find_part(bytes(data), file.index)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_text_functions_take_any_text(text: str) -> None:
    assert isinstance(html_to_text(text), str)
    assert isinstance(html_to_text(text, drop_quotes=True), str)
    kept = strip_reply(text)
    assert kept == text.strip() or len(kept) <= len(text)
