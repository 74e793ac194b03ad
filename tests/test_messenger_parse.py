"""Messenger's pure parser on recorded webhook bodies (tests/fixtures/messenger/*.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Malformed
from connectors.messenger.parse import PAGE_INBOX, Parsed, load, parse_body
from vocab.models import DeliveryState

FIXTURES = Path(__file__).parent / "fixtures" / "messenger"
APP_ID = "900000000000001"
PAGE, PSID = "1111111111", "6001234567890123"


def parsed(name: str) -> Parsed:
    return parse_body(load((FIXTURES / f"{name}.json").read_bytes()), APP_ID)


def test_text_with_escaped_non_ascii() -> None:
    [msg] = parsed("text").messages
    assert msg.text == "Bonjour, ma commande n°123 est arrivée abîmée 😞"
    assert msg.address == f"{PAGE}:{PSID}" and msg.platform_message_id == "m_AbCdEf0123456789-text"
    assert msg.platform_time == 1764590000.001 and msg.echo_author is None
    assert msg.sender_name == "Messenger user …0123"  # until the Graph API names them


def test_attachments_keep_their_cdn_urls_for_the_download() -> None:
    [msg] = parsed("image").messages
    assert [(a.kind, a.filename, a.mime_type) for a in msg.attachments] == [
        ("photo", "450001_n.jpg", "image/jpeg"), ("document", "invoice.pdf", "application/pdf")]
    assert msg.attachments[0].url == (
        "https://scontent.xx.fbcdn.net/v/t1.15752-9/450001_n.jpg?_nc_cat=1&oh=00_AfA&oe=6750")
    assert msg.text == ""


def test_a_batch_of_entries_for_two_pages() -> None:
    out = parsed("batched")
    assert [(m.address, m.text) for m in out.messages] == [
        ("1111111111:6001234567890123", "first page"), ("2222222222:7009876543210987",
                                                         "second page")]
    assert [(w.page_id, w.psid, w.state, w.watermark, w.mids) for w in out.watermarks] == [
        (PAGE, PSID, DeliveryState.DELIVERED, 1764590199.0, ("m_ours-1",)),
        ("2222222222", "7009876543210987", DeliveryState.READ, 1764590199.7, ())]


def test_our_echoes_are_dropped_and_page_inbox_echoes_mirrored() -> None:
    assert parsed("echo_ours").messages == []
    [msg] = parsed("echo_page_inbox").messages
    assert msg.echo_author == PAGE_INBOX and msg.address == f"{PAGE}:{PSID}"
    assert msg.text == "Hi, Sam from the shop here — refund done."
    # Without our app id configured, the metadata of our sends still recognises them.
    assert parse_body(load((FIXTURES / "echo_ours.json").read_bytes()), "").messages == []


def test_postbacks_referrals_and_quick_replies_become_text_with_the_ref_kept() -> None:
    [postback] = parsed("postback").messages
    assert postback.text == "[button] Get Started (payload: GET_STARTED)"
    assert postback.platform_ref == "ref:handoff-abc123"
    [referral] = parsed("referral").messages
    assert referral.text == "[opened the conversation from shortlink, ref: handoff-xyz789]"
    assert referral.platform_ref == "ref:handoff-xyz789"
    assert referral.platform_message_id == f"referral:{PAGE}:{PSID}:1764590599000"
    [quick] = parsed("quick_reply").messages
    assert quick.text == "(reply to an earlier message) Yes please\n(quick reply: CONFIRM_REFUND)"


def test_standby_events_are_handled_and_other_objects_ignored() -> None:
    assert [m.text for m in parsed("standby").messages] == ["still there?"]
    assert parsed("not_page") == Parsed()


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b'{"object": "page", "entry": {}}',
    b'{"object": "page", "entry": [{"messaging": []}]}',
    b'{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"},'
    b' "recipient": {"id": "1"}, "message": {"text": "no mid"}}]}]}',
    b'{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"},'
    b' "recipient": {"id": "1"}, "read": {}}]}]}',
])
def test_broken_envelopes_are_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse_body(load(body), APP_ID)


EVENT = b'{"object": "page", "entry": [{"id": "1", "messaging": [%s]}]}'


@pytest.mark.parametrize("event", [
    b'{"recipient": {"id": "1"}, "message": {"mid": "m_1", "text": "no sender"}}',
    b'{"sender": {}, "recipient": {"id": "1"}, "message": {"mid": "m_1", "text": "hi"}}',
    b'{"sender": {"id": "2"}, "message": {"mid": "m_1", "text": "no recipient"}}',
    b'{"sender": {"id": true}, "recipient": {"id": "1"}, "postback": {"title": "t"}}',
    b'{"sender": [2], "recipient": {"id": "1"}, "read": {"watermark": 1}}',
    b'{"sender": {"id": "2"}, "recipient": {"id": "1"}, "message": "hello"}',
    b'{"sender": {"id": "2"}, "recipient": {"id": "1"}, "delivery": []}',
])
def test_events_without_ids_or_with_broken_parts_are_malformed(event: bytes) -> None:
    with pytest.raises(Malformed):
        parse_body(load(EVENT % event), APP_ID)


@pytest.mark.parametrize("entry", [b'"messaging": {}', b'"messaging": ""', b'"standby": 0'])
def test_event_lists_that_are_not_lists_are_malformed(entry: bytes) -> None:
    with pytest.raises(Malformed):
        parse_body(load(b'{"object": "page", "entry": [{"id": "1", %s}]}' % entry), APP_ID)


def test_events_the_bridge_does_not_act_on_need_no_ids() -> None:
    optin = b'{"sender": {"user_ref": "r"}, "recipient": {"id": "1"}, "optin": {"ref": "x"}}'
    assert parse_body(load(EVENT % optin), APP_ID) == Parsed()
    guest = (b'{"sender": {"user_ref": "r"}, "recipient": {"id": "1"},'
             b' "message": {"mid": "m_1", "text": "from the chat plugin"}}')
    assert parse_body(load(EVENT % guest), APP_ID) == Parsed()


def _body(message: str, timestamp: str = "1764590000001") -> bytes:
    return (b'{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},'
            b'"recipient":{"id":"1"},"timestamp":' + timestamp.encode() + b',"message":'
            + message.encode() + b"}]}]}")


def test_text_no_store_takes_is_cleaned_not_fatal() -> None:
    """NUL (PostgreSQL refuses it) and a lone surrogate (no UTF-8 encodes it) are dropped."""
    raw = _body(r'{"mid":"m_\u0000x","text":"a\u0000b\ud800c\u0007d\n"}')
    [msg] = parse_body(load(raw)).messages
    assert (msg.platform_message_id, msg.text) == ("m_x", "ab?cd\n")
    [msg] = parse_body(load(_body('{"mid":"m_1","attachments":[{"type":"image","payload":'
                                  '{"url":"http://[::1"}}]}'))).messages
    assert msg.attachments[0].filename is None  # a URL urlsplit refuses names no file


@pytest.mark.parametrize("timestamp", ["1" + "0" * 400, "true", '"1764590000001"', "NaN",
                                       "-1", "Infinity"])
def test_times_that_are_not_times_are_malformed(timestamp: str) -> None:
    with pytest.raises(Malformed):
        parse_body(load(_body('{"mid":"m_1","text":"hi"}', timestamp)))


def test_deeply_nested_json_is_malformed() -> None:
    with pytest.raises(Malformed):
        load(b'{"object":"page","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_referrals_and_postbacks_without_a_time_or_mid_keep_distinct_keys() -> None:
    events = b",".join(
        b'{"sender": {"id": "2"}, "recipient": {"id": "1"}, %s}' % part for part in (
            b'"referral": {"ref": "a", "source": "SHORTLINK"}',
            b'"referral": {"ref": "b", "source": "SHORTLINK"}',
            b'"postback": {"title": "Yes", "payload": "Y"}',
            b'"postback": {"title": "No", "payload": "N"}'))
    first = parse_body(load(EVENT % events), APP_ID).messages
    assert len({m.platform_message_id for m in first}) == 4
    again = parse_body(load(EVENT % events), APP_ID).messages  # a redelivery: the same keys
    assert [m.platform_message_id for m in again] == [m.platform_message_id for m in first]


def test_a_shared_location_keeps_its_coordinates() -> None:
    located = (b'{"sender": {"id": "2"}, "recipient": {"id": "1"}, "message": {"mid": "m_1",'
               b' "attachments": [{"type": "location", "title": "Pinned Location",'
               b' "payload": {"coordinates": {"lat": 48.8584, "long": 2.2945}}}]}}')
    [msg] = parse_body(load(EVENT % located), APP_ID).messages
    assert msg.text == "[location: 48.8584, 2.2945]" and msg.attachments == ()
