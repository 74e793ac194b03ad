"""Privacy (issue 28) over the channels that came after it: a WhatsApp Cloud customer (profile
name, wamid-keyed messages, a photo) and a verified web chat visitor (their identity, the
transcript the connector keeps for reconnecting pages, an uploaded file, a file an agent sent
them, a canned reply previewed for them) are found, exported
with their messages, and erased so that no table holds their words, names, addresses or files."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.config import TomlValue
from bridge.standins.messenger import DEFAULT_APP_SECRET
from bridge.standins.whatsapp import DEFAULT_TOKEN, WhatsAppStandin
from storage.copy import TABLES
from tests.conftest import Harness, HarnessFactory, bridge_env
from tests.helpers_canned import REFUND, preview, write_replies
from tests.helpers_webchat import png, user_hash, webchat_thread
from tests.helpers_whatsapp import (
    KERRY,
    NUMBER_A,
    VERIFY_TOKEN,
    customer_writes,
    sender,
    whatsapp_harness,
)
from tests.test_files import agent_sends_file
from tests.test_privacy import cli, customer_of, everything
from tests.waiting import until

ORIGIN = "https://shop.example"
SECRET = "s3cret-for-hmac-0123456789"
USER = "ann.visitor@example.org"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"kerry-receipt-bytes" * 20
UPLOAD = png(9, (17, 99, 201))
LABEL = b"%PDF-1.4 annabel shipping label"


@pytest.fixture
async def h(make_harness: HarnessFactory, wa: WhatsAppStandin, clock: OffsetClock,
            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Harness:
    site: dict[str, TomlValue] = {"id": "shop", "allowed_origins": [ORIGIN], "title": "Acme",
                                  "identity_secret": SECRET}
    webchat: dict[str, TomlValue] = {"enabled": True, "sites": [site]}
    write_replies(tmp_path, refund=REFUND)
    h = await whatsapp_harness(make_harness, wa, clock, {"connectors.webchat": webchat,
                                                         "canned": {"dir": "canned"}})
    for key, value in bridge_env(h.slack).items():
        monkeypatch.setenv(key, value)
    for key, value in {"WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET,
                       "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
                       "WHATSAPP_ACCESS_TOKEN": DEFAULT_TOKEN}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BRIDGE_CONFIG", str(tmp_path / "bridge.toml"))
    return h


async def whatsapp_customer(h: Harness, wa: WhatsAppStandin, clock: OffsetClock) -> int:
    s = sender(h, wa, clock)
    thread = await customer_writes(h, s, "kerry order 5521 is late")
    media_id = wa.add_media(PHOTO, "image/png")
    photo = {"id": media_id, "mime_type": "image/png", "caption": "kerry receipt photo"}
    assert await s.send(NUMBER_A, s.message(KERRY, "image", photo)) == 200
    await h.slack.wait_for("files.completeUploadExternal", 1)
    assert await h.agent_says(thread, "Kerry, it ships today") == 200
    await h.drained()
    return customer_of(h, f"{NUMBER_A}:{KERRY}")


async def webchat_visitor(h: Harness, uploads_before: int = 1) -> int:
    query = f"&user_id={USER}&user_hash={user_hash(USER, SECRET)}&name=Annabel%20Visitor"
    ws = await h.session.ws_connect(f"ws://127.0.0.1:{h.port}/webchat/ws?site=shop{query}",
                                    headers={"Origin": ORIGIN})
    assert (await ws.receive_json(timeout=5))["verified"] is True
    await ws.send_json({"type": "message", "client_id": "c-1", "text": "annabel invoice 7788",
                        "page": {"url": "https://shop.example/orders/7788"}})
    assert (await ws.receive_json(timeout=5))["type"] == "ack"
    url = f"{h.url}/webchat/upload?site=shop{query}&client_id=f-1&name=annabel-id.png"
    async with h.session.post(url, data=io.BytesIO(UPLOAD), headers={
            "Content-Type": "image/png", "Origin": ORIGIN}) as r:
        assert r.status == 200
    thread = await webchat_thread(h)
    await h.slack.wait_for("files.completeUploadExternal", uploads_before + 1)
    assert await h.agent_says(thread, "Annabel, refund sent") == 200
    await agent_sends_file(h, thread, LABEL, "label.pdf", "application/pdf")
    shown = await preview(h, thread, "!canned refund")  # filled with her name, not sent
    assert "Annabel" in str(shown["blocks"][0]["text"]["text"])
    await until(lambda: len(h.rows("SELECT key FROM connector_state WHERE value LIKE"
                                   " '%label.pdf%'")) == 2, lambda: "the agent's file kept")
    await h.drained()
    await ws.close()
    return customer_of(h, f"shop:u-{USER}")


async def test_whatsapp_cloud_and_web_chat_customers_are_exported_and_erased(
        h: Harness, wa: WhatsAppStandin, clock: OffsetClock,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kerry = await whatsapp_customer(h, wa, clock)
    ann = await webchat_visitor(h)
    for query, who in (("Kerry Fisher", kerry), (KERRY, kerry), (USER, ann),
                       ("Annabel Visitor", ann)):
        code, out, err = await cli(capsys, "customer", "find", query, "--format", "json")
        assert code == 0, err
        assert [p["customer_id"] for p in json.loads(out)] == [who], query

    for who, words in ((kerry, {"kerry order 5521 is late", "kerry receipt photo",
                                "Kerry, it ships today"}),
                       (ann, {"annabel invoice 7788", "Annabel, refund sent"})):
        path = tmp_path / f"{who}.json"
        code, out, _ = await cli(capsys, "customer", "export", str(who), "--out", str(path))
        assert code == 0, out
        doc = json.loads(path.read_text())
        texts = {m["text"] for c in doc["conversations"] for m in c["messages"]}
        assert words <= texts, texts
    secrets = ("kerry", "Kerry", KERRY, "5521", "annabel", "Annabel", USER, "7788",
               "ann.visitor", base64.b64encode(UPLOAD).decode()[:40],
               base64.b64encode(PHOTO).decode()[:40], base64.b64encode(LABEL).decode()[:30])
    assert all(s in everything(h) for s in ("kerry order", USER, "annabel invoice"))

    for who in (kerry, ann):
        code, out, _ = await cli(capsys, "customer", "erase", str(who), "--yes")
        assert code == 0, out
    await h.drained(timeout=10)
    leaks = [(s, table) for s in secrets for table, _ in TABLES
             if s in repr(h.rows(f"SELECT * FROM {table}"))]
    assert not leaks, leaks
    assert h.rows("SELECT COUNT(*) FROM messages WHERE platform_message_id LIKE 'wamid.%'"
                  " AND direction = 'in'") == [(0,)]
    assert h.rows("SELECT key FROM connector_state WHERE connector = 'webchat'"
                  " AND key <> 'token_secret'") == []


async def test_retention_drops_an_old_web_chat_transcript_and_its_files(
        h: Harness, wa: WhatsAppStandin, clock: OffsetClock) -> None:
    ann = await webchat_visitor(h, uploads_before=0)
    web = "connector = 'webchat' AND key <> 'token_secret'"
    assert len(h.rows(f"SELECT key FROM connector_state WHERE {web}")) == 3  # log, two files
    thread = await webchat_thread(h)
    assert await h.agent_says(thread, "!close") == 200
    await h.drained()
    store = h.bridge.store
    closed = float(h.rows("SELECT closed_at FROM conversations WHERE customer_id = ?",
                          (ann,))[0][0])
    assert not (await store.retention(closed + 10, closed - 1, None, "retention", 0)).messages
    assert len(h.rows(f"SELECT key FROM connector_state WHERE {web}")) == 3  # not old yet
    done = await store.retention(closed + 10, closed + 1, None, "retention", 0)
    assert done.messages > 0
    assert h.rows(f"SELECT key FROM connector_state WHERE {web}") == []
