"""WhatsApp Cloud's pure parser on recorded webhook bodies (tests/fixtures/whatsapp/*.json),
and a property test: any body is parsed or rejected as `Malformed`, never another exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import Malformed
from connectors.whatsapp.parse import Parsed, load, parse_body, template_names
from vocab.models import DeliveryState, InboundMessage

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
PN, WA = "106540352242922", "16315551181"


def parsed(name: str) -> Parsed:
    return parse_body(load((FIXTURES / f"{name}.json").read_bytes()))


def one(name: str) -> InboundMessage:
    [msg] = parsed(name).messages
    assert msg.address == f"{PN}:{WA}" and msg.connector == "whatsapp"
    assert msg.verified_phone == f"+{WA}" and msg.inbox == PN
    assert msg.sender_name == "Kerry Fisher"  # the profile name
    return msg


def test_text_keeps_the_profile_name_the_wamid_and_the_time() -> None:
    msg = one("text")
    assert msg.text == "Où est ma commande ? 📦"
    assert msg.platform_message_id.startswith("wamid.HBgL")
    assert msg.platform_time == 1764590100.0 and msg.choice is None


@pytest.mark.parametrize(("name", "kind", "mime", "text"), [
    ("image", "photo", "image/jpeg", "the damage"),
    ("audio", "audio", "audio/ogg", ""),
    ("video", "video", "video/mp4", ""),
    ("document", "document", "application/pdf", "my invoice"),
    ("sticker", "sticker", "image/webp", ""),
])
def test_media_carries_the_media_id_to_fetch_later(name: str, kind: str, mime: str,
                                                    text: str) -> None:
    msg = one(name)
    [attachment] = msg.attachments
    assert (attachment.kind, attachment.mime_type) == (kind, mime)
    assert attachment.platform_file_id and attachment.platform_file_id.isdigit()
    assert attachment.url is None  # the URL is asked for with the token, when fetched
    assert msg.text == text
    if name == "document":
        assert attachment.filename == "invoice.pdf"


def test_location_is_a_map_link() -> None:
    text = one("location").text
    assert "Pickup point — Marszałkowska 1, Warszawa" in text
    assert "https://maps.google.com/?q=52.2297,21.0122" in text


def test_a_contact_card_is_shown_and_never_identity_evidence() -> None:
    msg = one("contacts")
    assert msg.text == "👤 Contact card: Jan Nowak (+48 600 100 200)"
    assert msg.verified_phone == f"+{WA}"  # the sender's own number, not the card's


@pytest.mark.parametrize(("name", "text", "choice"), [
    ("button_reply", "Talk to a person", "handoff:person"),
    ("list_reply", "5 Excellent", "csat:5"),
    ("template_button", "Yes, continue", "resume-chat"),
])
def test_interactive_replies_carry_the_chosen_id(name: str, text: str, choice: str) -> None:
    msg = one(name)
    assert msg.text.endswith(text) and msg.choice == choice


def test_a_reaction_and_a_quoted_reply_are_shown() -> None:
    assert one("reaction").text == "reacted 👍 to a message"
    assert one("quoted_reply").text == "> (replying to an earlier message)\nthis one"


def test_an_unsupported_message_is_shown_not_lost() -> None:
    assert "cannot show" in one("unsupported").text


def test_statuses_with_metas_error_code_and_title() -> None:
    out = parsed("statuses")
    assert out.messages == []
    assert [(s.wamid, s.state, s.code) for s in out.statuses] == [
        ("wamid.ours1", DeliveryState.SENT, None), ("wamid.ours1", DeliveryState.DELIVERED, None),
        ("wamid.ours1", DeliveryState.READ, None), ("wamid.ours2", DeliveryState.FAILED, 131047),
        ("wamid.ours3", DeliveryState.FAILED, 131026)]
    assert out.statuses[3].error is not None and out.statuses[3].error.startswith(
        "Re-engagement message (131047): Message failed to send because more than 24 hours")
    assert out.statuses[4].error == "Message undeliverable (131026): Message Undeliverable."
    assert all(s.phone_number_id == PN and s.recipient == WA for s in out.statuses)


def test_a_batch_for_two_numbers() -> None:
    out = parsed("batch")
    assert [(m.address, m.text, m.sender_name) for m in out.messages] == [
        (f"{PN}:{WA}", "first", "Kerry Fisher"), (f"{PN}:{WA}", "second", "Kerry Fisher"),
        ("106540352242923:447700900123", "other number", "Olu Ade")]


def test_other_objects_and_fields_are_ignored_bad_shapes_rejected() -> None:
    assert parse_body({"object": "page", "entry": []}) == Parsed()
    body = {"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "message_template_status_update", "value": {"event": "APPROVED"}}]}]}
    assert parse_body(body) == Parsed()
    with pytest.raises(Malformed):
        load(b"[1, 2]")
    with pytest.raises(Malformed):
        parse_body({"object": "whatsapp_business_account", "entry": [{"changes": [
            {"field": "messages", "value": {"messages": [{"type": "text"}],
                                            "metadata": {"phone_number_id": PN}}}]}]})


def test_only_approved_templates_with_their_parameter_count() -> None:
    data = {"data": [
        {"name": "order_update", "language": "en_US", "status": "APPROVED",
         "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} is {{1}}'s"}]},
        {"name": "pending_one", "language": "en_US", "status": "PENDING", "components": []},
        {"name": "hello", "language": "pl", "status": "APPROVED", "components": []}]}
    assert template_names(data) == [("order_update", "en_US", 2), ("hello", "pl", 0)]


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=20)


def shaped(values: Any) -> bytes:
    return json.dumps(values).encode()


MESSAGE = st.fixed_dictionaries(
    {"from": ANY_TEXT | st.just(WA), "id": ANY_TEXT | st.just("wamid.x"),
     "type": st.sampled_from(["text", "image", "interactive", "location", "contacts",
                              "reaction", "button", "system", "document"])},
    optional={"text": JSON_VALUES, "image": JSON_VALUES, "interactive": JSON_VALUES,
              "location": JSON_VALUES, "contacts": JSON_VALUES, "reaction": JSON_VALUES,
              "context": JSON_VALUES, "timestamp": JSON_VALUES, "document": JSON_VALUES})
BODY = st.builds(lambda messages, statuses, contacts: {
    "object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": PN}, "messages": messages, "statuses": statuses,
        "contacts": contacts}}]}]},
    st.lists(MESSAGE, max_size=3) | JSON_VALUES, st.lists(JSON_VALUES, max_size=3) | JSON_VALUES,
    JSON_VALUES)


@given(st.binary(max_size=300) | JSON_VALUES.map(shaped) | BODY.map(shaped))
def test_whatsapp_parse_is_total(body: bytes) -> None:
    try:
        out = parse_body(load(body))
    except Malformed:
        return
    for item in out.messages:
        assert "\x00" not in item.text + item.sender_name + item.address
