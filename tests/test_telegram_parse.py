"""Telegram normalization is a pure function, checked on recorded payloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from telegram import Update

from connectors.base import Malformed
from connectors.telegram.parse import parse_update, parse_update_data
from vocab.models import Attachment
from vocab.split import split_plain

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_fixtures_are_real_updates(name: str) -> None:
    """Each recorded payload is something python-telegram-bot itself accepts."""
    assert Update.de_json(json.loads(load(name)), None) is not None


def test_text_message() -> None:
    [msg] = parse_update(load("text"))
    assert msg.connector == "telegram"
    assert msg.platform_message_id == "100000001"  # deduplicated on update_id
    assert msg.platform_ref == "17"
    assert msg.address == "424242"
    assert msg.sender_name == "Ann Lee" and msg.username == "ann_l"
    assert msg.text == "My order #123 hasn't arrived"
    assert msg.platform_time == 1717000000.0 and msg.attachments == ()


def test_photo_keeps_caption_and_largest_size() -> None:
    [msg] = parse_update(load("photo_caption"))
    assert msg.text == "[photo] Damaged box"
    assert msg.attachments == (Attachment(kind="photo", platform_file_id="AgACl", size=61234,
                                          mime_type="image/jpeg"),)


def test_document_without_caption() -> None:
    [msg] = parse_update(load("document"))
    assert msg.text == "[document]"
    assert msg.attachments[0].filename == "invoice.pdf"
    assert msg.attachments[0].mime_type == "application/pdf"


def test_sticker_is_labelled_not_lost() -> None:
    [msg] = parse_update(load("sticker"))
    assert msg.text == "[sticker]" and msg.username == "ann_l"


def test_text_edit_names_the_message_it_changes() -> None:
    [msg] = parse_update(load("edited_text"))
    assert msg.platform_message_id == "100000005"  # the edit's own update_id: its dedupe key
    assert msg.platform_ref == msg.edit_of == "17"  # the message the customer edited
    assert msg.text == "My order #124 hasn't arrived, it's urgent"
    assert msg.platform_time == 1717000300.0  # when the edit happened (edit_date)
    assert msg.sender_name == "Ann Lee" and msg.address == "424242"
    assert msg.markup == "My order #124 hasn't arrived, it's *urgent*" and msg.attachments == ()


def test_caption_edit_keeps_the_label_and_does_not_resend_the_photo() -> None:
    [msg] = parse_update(load("edited_caption"))
    assert (msg.platform_message_id, msg.edit_of) == ("100000006", "18")
    assert msg.text == "[photo] Damaged box, corner crushed"
    assert msg.attachments == ()  # the photo went to Slack with the original message


def test_a_new_message_is_not_an_edit() -> None:
    [msg] = parse_update(load("photo_caption"))
    assert msg.edit_of is None and msg.markup is None


def test_older_edit_fixture_without_names_still_parses() -> None:
    [msg] = parse_update(load("edited_message"))
    assert msg.edit_of == "17" and msg.sender_name == "Ann"


@pytest.mark.parametrize("name", ["text", "photo_caption", "edited_text", "edited_caption"])
def test_decoded_and_raw_bodies_parse_alike(name: str) -> None:
    """The poller hands `getUpdates` items over already decoded."""
    assert parse_update_data(json.loads(load(name))) == parse_update(load(name))


@pytest.mark.parametrize("name", ["my_chat_member", "group_message"])
def test_updates_the_bridge_does_not_handle_are_ignored(name: str) -> None:
    assert parse_update(load(name)) == []


def test_edits_from_groups_and_bots_are_ignored() -> None:
    update = json.loads(load("edited_text"))
    group = {**update["edited_message"], "chat": {"id": -100, "type": "group", "title": "G"}}
    assert parse_update_data({**update, "edited_message": group}) == []
    bot = {**update["edited_message"], "from": {"id": 9, "is_bot": True, "first_name": "B"}}
    assert parse_update_data({**update, "edited_message": bot}) == []


@pytest.mark.parametrize("body", [b"", b"null", b"{}", b'{"update_id": true}',
                                  b'{"update_id": 1, "message": []}',
                                  b'{"update_id": 1, "message": {"chat": {"id": "x"}}}',
                                  b'{"update_id": 1, "edited_message": "x"}',
                                  b'{"update_id": 1, "edited_message": {"chat": {"id": 5}}}'])
def test_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse_update(body)


@pytest.mark.parametrize("data", [None, [], "x", {"message": {}}])
def test_malformed_decoded(data: object) -> None:
    with pytest.raises(Malformed):
        parse_update_data(data)


@pytest.mark.parametrize("text,limit", [("a" * 10, 4), ("hello world again", 11),
                                        ("line one\nline two\nline three", 12), ("", 5)])
def test_split_keeps_every_word(text: str, limit: int) -> None:
    parts = split_plain(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == \
        text.replace(" ", "").replace("\n", "")


def test_customer_formatting_becomes_slack_mrkdwn() -> None:
    [msg] = parse_update((FIXTURES / "formatted.json").read_bytes())
    # The raw text stays as the customer wrote it; the markup is escaped mrkdwn with the
    # entities (UTF-16 offsets, after an emoji) mapped to bold and a link.
    assert msg.text.startswith("😀 Order <b>#123</b>")
    assert msg.markup == ("😀 *Order* &lt;b&gt;#123&lt;/b&gt; is late, see "
                          "<https://track.example.com/123|tracking> &amp; reply")


def test_caption_formatting_keeps_the_media_label() -> None:
    [msg] = parse_update((FIXTURES / "edited_caption.json").read_bytes())
    assert msg.markup == "[photo] Damaged box, _corner_ crushed"
