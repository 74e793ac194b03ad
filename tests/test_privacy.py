"""A customer known on three channels is found, exported and erased end to end, on both
stores: the export holds what they sent and nothing of another customer with the same name;
after the erasure no table holds their number, address or words, their Slack threads were
emptied through the outbox, the KPIs still count the conversations, and the audit log says
who did it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import main
from bridge.standins import slack_privacy
from bridge.standins.messenger import MessengerStandin
from bridge.standins.twilio import TwilioStandin
from storage.copy import TABLES
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory, bridge_env
from tests.helpers_continuity import channels_config
from tests.helpers_twilio import CUSTOMER, customer
from tests.test_files import photo_update
from vocab.models import ConversationId, CustomerId, InboundMessage

EMAIL = "ann.lee@example.com"
TG_CHAT = 4242
OTHER_CHAT = 777
WORDS = ("telegram words", "sms words", "email words", "my card ends 4417", "my receipt")


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def customer_of(h: Harness, address: str) -> int:
    return int(h.rows("SELECT customer_id FROM identities WHERE address = ?", (address,))[0][0])


async def three_channels(h: Harness) -> tuple[int, str]:
    """Ann Lee on Telegram, SMS and email, linked into one customer; her Telegram thread."""
    assert await h.customer_says(TG_CHAT, "telegram words", first_name="Ann",
                                 last_name="Lee") == 200
    tg = await h.thread_of(TG_CHAT)
    photo = photo_update(h, TG_CHAT, "PHOTO1", b"\xff\xd8\xff\xe0ann", caption="my receipt")
    assert (await h.telegram.deliver(photo, h.session))[0] == 200
    await h.slack.wait_for("files.completeUploadExternal", 1)
    await customer(h, "sms words", address=CUSTOMER)
    router = h.bridge.router
    await router.ingest([InboundMessage(connector="email", platform_message_id="<m1@example.com>",
                                        address=EMAIL, sender_name="Ann Lee",
                                        text="email words")])
    await h.thread_at(EMAIL)
    assert await h.customer_says(OTHER_CHAT, "the other Ann", first_name="Ann",
                                 last_name="Lee") == 200
    await h.thread_of(OTHER_CHAT)
    # An agent's reply (in Slack, which the bridge cannot delete).
    status = await h.agent_says(tg, "my card ends 4417, noted", ts="1800000000.000001")
    assert status == 200
    slack_privacy.human_message(h.slack, CHANNEL, AGENT, "my card ends 4417, noted",
                                "1800000000.000001", tg)
    await h.drained()
    store = h.bridge.store
    ann = customer_of(h, str(TG_CHAT))
    conv = int(h.rows("SELECT id FROM conversations WHERE customer_id = ?", (ann,))[0][0])
    for address in (CUSTOMER, EMAIL):
        other = CustomerId(customer_of(h, address))
        linked = await store.link_customers(ConversationId(conv), other, f"<@{AGENT}>",
                                            address, time.time())
        assert linked.found
    await store.put_media("tok" * 11, "invoice.pdf", "application/pdf", b"%PDF-ann", time.time(),
                          time.time() + 3600, conv)
    await store.set_state("email", "mid:abc", EMAIL, time.time())
    await store.set_state("email", f"thread:{EMAIL}", "{}", time.time())
    await store.set_state("email", f"sent:page:{EMAIL}", "1", time.time())  # keyed by it
    await store.set_state("telegram", "offset", "4242", time.time())  # not theirs: stays
    await h.bridge.store._write(lambda: _extras(ann, conv))
    await h.drained()
    return ann, tg


def _extras(ann: int, conv: int) -> Any:
    from storage.query import execute
    yield from execute("INSERT INTO customer_fields (customer_id, name, value, set_by,"
                       " updated_at) VALUES (?, 'plan', 'gold, card 4417', 'U1', 1)", ann)
    yield from execute(
        "INSERT INTO surveys (conversation_id, customer_id, kind, connector, token, state,"
        " scale, score, comment, created_at) VALUES (?, ?, 'csat', 'telegram', 'tk1',"
        " 'answered', '1-5', 5, 'my card ends 4417 was fine', 1)", conv, ann)


def everything(h: Harness) -> str:
    return "\n".join(repr(h.rows(f"SELECT * FROM {table}")) for table, _ in TABLES)


@pytest.fixture
async def hp(make_harness: HarnessFactory, twilio: TwilioStandin, meta: MessengerStandin,
             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Harness:
    h = await make_harness(channels_config(twilio, meta))
    for key, value in bridge_env(h.slack).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BRIDGE_CONFIG", str(tmp_path / "bridge.toml"))
    return h


async def test_find_export_erase_on_three_channels(
        hp: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ann, tg = await three_channels(hp)

    code, out, _ = await cli(capsys, "customer", "find", "Ann Lee", "--format", "json")
    assert code == 0
    found = {p["customer_id"]: p for p in json.loads(out)}
    assert len(found) == 2 and ann in found  # two people, one name
    assert {i["channel"] for i in found[ann]["identities"]} == {"telegram", "sms", "email"}
    for query in (CUSTOMER, EMAIL.upper(), str(TG_CHAT)):
        code, out, _ = await cli(capsys, "customer", "find", query, "--format", "json")
        assert [p["customer_id"] for p in json.loads(out)] == [ann], query
    # A conversation id as the bridge shows it (#12); a number too long for an id is no error.
    first = int(hp.rows("SELECT MIN(id) FROM conversations WHERE customer_id = ?", (ann,))[0][0])
    code, out, _ = await cli(capsys, "customer", "find", f"#{first}", "--format", "json")
    assert [p["customer_id"] for p in json.loads(out)] == [ann]
    code, out, _ = await cli(capsys, "customer", "find", "9" * 25, "--format", "json")
    assert (code, json.loads(out)) == (0, [])

    code, out, _ = await cli(capsys, "customer", "export", str(ann),
                             "--out", str(tmp_path / "ann.json"))
    assert code == 0, out
    doc = json.loads((tmp_path / "ann.json").read_text())
    assert doc["schema"] == "support-bridge/customer-export/1"
    texts = [m["text"] for c in doc["conversations"] for m in c["messages"]]
    assert {"telegram words", "sms words", "email words"} <= set(texts)
    assert "the other Ann" not in json.dumps(doc)
    assert {m["channel"] for c in doc["conversations"] for m in c["messages"]
            if m["direction"] == "in"} == {"telegram", "sms", "email"}
    assert [a["kind"] for c in doc["conversations"] for m in c["messages"]
            for a in m["attachments"]] == ["photo"]
    assert [f["name"] for f in doc["custom_fields"]] == ["plan"]
    assert doc["surveys"][0]["comment"] == "my card ends 4417 was fine"
    assert {link["method"] for link in doc["links"]} == {"agent"}
    assert doc["files"][0]["filename"] == "invoice.pdf"
    code, _, err = await cli(capsys, "customer", "export", str(ann), "--out",
                             str(tmp_path / "ann.json"))
    assert code == 1 and "exists already" in err  # never overwritten

    kpi_before = hp.rows("SELECT COUNT(*), MIN(created_at) FROM conversations"
                         " WHERE customer_id = ?", (ann,))
    code, out, _ = await cli(capsys, "customer", "erase", str(ann), "--yes", "--actor", "dpo")
    assert code == 0, out
    assert "/archives/" + CHANNEL + "/p1800000000000001" in out  # the agent's reply, to remove
    await hp.drained(timeout=10)

    stored = everything(hp)
    for secret in (CUSTOMER, EMAIL, *WORDS, "gold, card"):
        assert secret not in stored, secret
    assert hp.rows("SELECT COUNT(*) FROM identities i JOIN conversations c ON c.identity_id ="
                   " i.id WHERE i.address = ? OR c.address = ?",
                   (str(TG_CHAT), str(TG_CHAT))) == [(0,)]
    assert hp.rows("SELECT DISTINCT display_name, username FROM identities WHERE customer_id"
                   " = ?", (ann,)) == [("", None)]  # the other Ann Lee keeps her name
    assert hp.rows("SELECT COUNT(*) FROM customers WHERE display_name = 'Ann Lee'") == [(1,)]
    assert "the other Ann" in stored  # the other customer is untouched
    assert hp.rows("SELECT connector, key FROM connector_state WHERE key <> 'offset' AND"
                   " connector = 'email'") == []
    assert hp.rows("SELECT value FROM connector_state WHERE key = 'offset'") == [("4242",)]
    assert hp.rows("SELECT COUNT(*), MIN(created_at) FROM conversations WHERE customer_id = ?",
                   (ann,)) == kpi_before
    assert hp.rows("SELECT score FROM surveys") == [(5,)]
    assert hp.rows("SELECT DISTINCT status, address FROM conversations WHERE customer_id = ?",
                   (ann,)) == [("closed", "erased")]

    # Slack: the bridge's posts are gone, the parent is one line, the agent's reply stays.
    thread = hp.slack.thread(CHANNEL, tg)
    assert thread[0]["text"].startswith("erased on ") and thread[0]["blocks"] == []
    assert [m["user"] for m in thread[1:]] == [AGENT]
    assert not [f for f in hp.slack.files.values() if f.get("completed")]  # the photo too
    assert hp.slack.calls and any(c.method == "chat.delete" for c in hp.slack.calls)
    assert not any(c.method == "chat.delete" and not c.ok for c in hp.slack.calls)

    # The same Telegram chat writing again is a new customer.
    assert await hp.customer_says(TG_CHAT, "hello again", first_name="Ann") == 200
    await hp.thread_of(TG_CHAT)
    assert customer_of(hp, str(TG_CHAT)) != ann

    code, out, _ = await cli(capsys, "audit", "--format", "json")
    actions = [(e["action"], e["actor"], e["customer_id"]) for e in json.loads(out)]
    assert ("export", "cli:" + actions[-2][1].removeprefix("cli:"), ann) in actions
    assert actions[-1] == ("erase", "dpo", ann)
    assert [a for a, _, _ in actions].count("link") == 2
    code, out, _ = await cli(capsys, "customer", "erase", str(ann), "--yes")
    assert code == 0 and "erased before" in out
