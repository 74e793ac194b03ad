"""Files both ways: customers' photos into the thread, agents' files to the customer, links."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.waiting import poll

# SQLite only: file transfer and links; media rows are a store contract test (test_store).
pytestmark = pytest.mark.backends("sqlite")

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(3000)
PDF = b"%PDF-1.4\n" + os.urandom(2000)


def photo_update(h: Harness, chat: int, file_id: str, content: bytes,
                 caption: str = "") -> dict[str, Any]:
    h.telegram.add_file(file_id, content, f"photos/{file_id}.jpg")
    update = h.telegram.text_update(chat_id=chat, text="x")
    message = update["message"]
    del message["text"]
    if caption:
        message["caption"] = caption
    message["photo"] = [
        {"file_id": file_id + "-small", "file_unique_id": "s" + file_id, "file_size": 90,
         "width": 90, "height": 67},
        {"file_id": file_id, "file_unique_id": "l" + file_id, "file_size": len(content),
         "width": 1280, "height": 960},
    ]
    return update


async def agent_sends_file(h: Harness, thread: str, content: bytes, name: str,
                           mimetype: str, text: str = "") -> None:
    file = h.slack.add_file(content, name=name, mimetype=mimetype)
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text=text, thread_ts=thread,
                                  files=[file])
    status, _ = await h.agent.post(event)
    assert status == 200


async def test_customer_photo_is_uploaded_into_the_thread(harness: Harness) -> None:
    h = harness
    update = photo_update(h, 31, "PHOTO1", JPEG, caption="Damaged box")
    status, _ = await h.telegram.deliver(update, h.session)
    assert status == 200
    thread = await h.thread_of(31)
    [complete] = await h.slack.wait_for("files.completeUploadExternal", 1)
    assert complete.params["channel_id"] == CHANNEL and complete.params["thread_ts"] == thread
    [uploaded] = [f for f in h.slack.files.values() if f.get("completed")]
    assert uploaded["content"] == JPEG and uploaded["name"].endswith(".jpg")
    # The largest size was fetched, through getFile and the file endpoint.
    assert [c.params["file_id"] for c in h.telegram.calls_to("getFile")] == ["PHOTO1"]
    assert "Damaged box" in h.slack.parents(CHANNEL)[0]["text"]


async def test_customer_file_over_the_cap_becomes_a_notice(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"media": {"max_bytes": 2048}})
    status, _ = await h.telegram.deliver(photo_update(h, 32, "BIG1", JPEG), h.session)
    assert status == 200
    thread = await h.thread_of(32)
    await h.slack.wait_for("chat.postMessage", 2)
    notice = h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert "could not be copied" in notice and "too large" in notice
    assert h.slack.calls_to("files.completeUploadExternal") == []
    assert h.rows("SELECT status FROM outbox WHERE kind = 'slack_file'") == [("failed",)]


async def test_agent_photo_and_document_reach_the_customer(harness: Harness) -> None:
    h = harness
    await h.customer_says(33, "send me the label")
    thread = await h.thread_of(33)
    await agent_sends_file(h, thread, JPEG, "label.jpg", "image/jpeg", text="Here it is")
    await agent_sends_file(h, thread, PDF, "invoice.pdf", "application/pdf")
    [text] = await h.telegram.wait_for("sendMessage", 1)
    assert text.params["text"].endswith("Here it is")
    [photo] = await h.telegram.wait_for("sendPhoto", 1)
    [doc] = await h.telegram.wait_for("sendDocument", 1)
    assert photo.params["chat_id"] == "33" and photo.params["photo"]["content"] == JPEG
    assert doc.params["document"]["content"] == PDF
    assert doc.params["document"]["filename"] == "invoice.pdf"
    assert text.at < photo.at < doc.at  # order kept within the conversation
    rows = await h.wait_rows("SELECT state FROM messages WHERE direction = 'out' ORDER BY id",
                             [("sent",), ("sent",)])
    assert rows == [("sent",), ("sent",)]


async def test_a_file_the_channel_cannot_carry_goes_as_a_link(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"connectors.telegram": {"max_upload_bytes": 1024}})
    await h.customer_says(34, "the manual please")
    thread = await h.thread_of(34)
    await agent_sends_file(h, thread, PDF, "manual.pdf", "application/pdf")
    [link] = await h.telegram.wait_for("sendMessage", 1)
    assert h.telegram.calls_to("sendDocument") == []
    url = link.params["text"].split("manual.pdf: ", 1)[1]
    assert url.startswith(f"{h.url}/media/") and len(url.rsplit("/", 1)[1]) >= 40
    async with h.session.get(url) as resp:
        assert resp.status == 200 and await resp.read() == PDF
        assert resp.headers["Content-Type"] == "application/pdf"
    async with h.session.get(f"{h.url}/media/{'x' * 43}") as resp:
        assert resp.status == 404
    await h.slack.wait_for("chat.postMessage", 2)
    note = h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert "got a link" in note and "manual.pdf" in note


async def test_agent_file_over_the_cap_is_reported_without_retry(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"media": {"max_bytes": 1024}})
    await h.customer_says(35, "hi")
    thread = await h.thread_of(35)
    await agent_sends_file(h, thread, PDF, "big.pdf", "application/pdf")
    await h.wait_rows("SELECT status FROM outbox WHERE kind = 'customer_file'", [("failed",)])
    await h.slack.wait_for("chat.postMessage", 2)
    notice = h.slack.thread(CHANNEL, thread)[-1]
    assert "too large" in notice["text"] and not notice.get("blocks")
    await h.drained()
    assert h.telegram.calls_to("sendDocument") == [] and h.telegram.calls_to("sendMessage") == []


async def test_media_links_expire(make_harness: HarnessFactory) -> None:
    h = await make_harness({"connectors.telegram": {"max_upload_bytes": 1024},
                            "media": {"link_ttl_hours": 0.0002}})  # 0.72 s
    await h.customer_says(36, "the manual please")
    thread = await h.thread_of(36)
    await agent_sends_file(h, thread, PDF, "manual.pdf", "application/pdf")
    [link] = await h.telegram.wait_for("sendMessage", 1)
    url = link.params["text"].split("manual.pdf: ", 1)[1]
    async with h.session.get(url) as resp:
        assert resp.status == 200

    async def status() -> int:
        async with h.session.get(url) as resp:
            return resp.status
    # Served until it expires, then gone (the media route reads the wall clock).
    await poll(status, lambda got: got == 404, "the link to answer 404", timeout=5)
