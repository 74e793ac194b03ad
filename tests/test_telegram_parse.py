"""Telegram normalization is a pure function, checked on recorded payloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from telegram import Update

from bridge.models import Attachment
from connectors.base import Malformed
from connectors.telegram.connector import split_text
from connectors.telegram.parse import parse_update

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


@pytest.mark.parametrize("name", ["edited_message", "my_chat_member", "group_message"])
def test_updates_the_bridge_does_not_handle_are_ignored(name: str) -> None:
    assert parse_update(load(name)) == []


@pytest.mark.parametrize("body", [b"", b"null", b"{}", b'{"update_id": true}',
                                  b'{"update_id": 1, "message": []}',
                                  b'{"update_id": 1, "message": {"chat": {"id": "x"}}}'])
def test_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse_update(body)


@pytest.mark.parametrize("text,limit", [("a" * 10, 4), ("hello world again", 11),
                                        ("line one\nline two\nline three", 12), ("", 5)])
def test_split_text_keeps_every_word(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == \
        text.replace(" ", "").replace("\n", "")
