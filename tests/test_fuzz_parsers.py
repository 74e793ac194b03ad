"""Property-based tests of every parser of outside input: any bytes in, a parsed value or a
typed rejection out, never another exception (issue 16).  CI runs a fixed seed (the `ci`
profile in conftest); `HYPOTHESIS_PROFILE=long` runs many more examples."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bridge.console.events import parse_slack_body
from connectors.base import Malformed
from connectors.messenger.parse import load, parse_body
from connectors.telegram.parse import parse_update
from connectors.twilio.parse import parse_form, parse_message, parse_status
from vocab.untrusted import MAX_ID, HostRule, clean_text, load_json, parse_id

# Text with everything JSON can carry: lone surrogates and control characters included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=20)


def telegram_like() -> st.SearchStrategy[dict[str, Any]]:
    """Updates shaped like Telegram's, often valid, with any text and odd values."""
    odd = st.none() | ANY_TEXT | JSON_VALUES
    number = st.integers(1, 10**12) | st.integers() | odd
    chat = st.fixed_dictionaries({"id": number, "type": st.sampled_from(["private", "group"])})
    sender = st.fixed_dictionaries({"id": number, "is_bot": st.just(False),
                                    "first_name": ANY_TEXT}, optional={"username": ANY_TEXT})
    message = st.fixed_dictionaries({"message_id": number, "date": number, "chat": chat},
                                    optional={"text": ANY_TEXT | odd, "from": sender | odd,
                                              "caption": ANY_TEXT, "photo": JSON_VALUES,
                                              "entities": JSON_VALUES, "contact": JSON_VALUES})
    kind = st.sampled_from(["message", "edited_message", "callback_query"])
    return st.builds(lambda k, m, u: {"update_id": u, k: m}, kind, message, number)


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


@given(st.binary(max_size=300) | JSON_VALUES.map(encoded) | telegram_like().map(encoded))
def test_telegram_parse_is_total(body: bytes) -> None:
    try:
        parsed = parse_update(body)
    except Malformed:
        return
    for item in parsed:
        item.text.encode("utf-8")
        assert "\x00" not in item.text + item.sender_name + item.address


@given(st.binary(max_size=300) | JSON_VALUES.map(encoded)
       | st.builds(lambda e: {"object": "page", "entry": e}, JSON_VALUES).map(encoded))
def test_messenger_parse_is_total(body: bytes) -> None:
    try:
        parse_body(load(body))
    except Malformed:
        return


@given(st.binary(max_size=300)
       | st.dictionaries(st.sampled_from(["MessageSid", "From", "To", "Body", "NumMedia",
                                          "MediaUrl0", "MediaContentType0", "MessageStatus",
                                          "ErrorCode", "ProfileName", "WaId"]),
                         ANY_TEXT).map(lambda d: json.dumps(d).encode()))
def test_twilio_parse_is_total(body: bytes) -> None:
    try:
        form = parse_form(body)
        parse_message(form)
        parse_status(form)
    except Malformed:
        return


@given(st.binary(max_size=300) | JSON_VALUES.map(encoded),
       st.sampled_from(["application/json", "application/x-www-form-urlencoded", ""]))
def test_slack_parse_is_total(body: bytes, content_type: str) -> None:
    try:
        parse_slack_body(body, content_type)
    except (ValueError, UnicodeDecodeError):
        return


@given(st.binary(max_size=200) | st.builds(lambda n: b"[" * n + b"]" * n,
                                           st.integers(0, 5000)))
def test_json_loading_is_total_and_depth_limited(body: bytes) -> None:
    try:
        load_json(body)
    except ValueError:
        return


@given(ANY_TEXT)
def test_cleaned_text_is_storable_anywhere(text: str) -> None:
    clean = clean_text(text)
    clean.encode("utf-8")
    assert "\x00" not in clean and clean_text(clean) == clean


@given(st.one_of(ANY_TEXT, st.integers(), st.none(), st.booleans(), st.floats()))
def test_ids_are_in_range_or_none(value: object) -> None:
    found = parse_id(value)
    assert found is None or 1 <= found <= MAX_ID


@given(ANY_TEXT | st.builds(lambda h, p: f"https://{h}:{p}/x", ANY_TEXT, st.integers()))
def test_host_rules_never_raise(url: str) -> None:
    rule = HostRule.of(["files.slack.com", ".fbcdn.net"], ["http://127.0.0.1:8080"])
    rule.allows(url)
    rule.with_credentials(url)
