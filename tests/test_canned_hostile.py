"""Canned replies' thread commands with hostile input (review of issue 22): huge and unicode
names, extra text, saving over or deleting another agent's team reply, `!field` with huge
keys and values, and a click on a preview pruned after a month (a moved clock).  Each
answers the agent with a short private note, writes nothing and sends nothing to the
customer."""

from __future__ import annotations

from pathlib import Path

from bridge.standins.clock import OffsetClock
from storage.canned import KEEP_PREVIEWS
from tests.conftest import AGENT, HarnessFactory
from tests.helpers_canned import (
    click,
    customer_texts,
    notes,
    preview,
    text_value,
    write_replies,
)
from tests.helpers_ownership import OTHER, add_other, started
from tests.waiting import until

HUGE = "ä" * 9_000  # Slack cuts a message at 40,000 characters; the webhook body has a cap
NOTE_MAX = 4000  # Slack's advice for a message's text; a note echoing all of HUGE is refused


async def test_hostile_canned_and_field_commands_write_nothing(
        make_harness: HarnessFactory) -> None:
    h = await make_harness()
    add_other(h)
    thread = await started(h)
    assert await h.agent_says(thread, "Your parcel left today.") == 200
    assert await h.agent_says(thread, "!canned save shared --team") == 200
    await until(lambda: bool(notes(h)), "the save note")
    before = h.rows("SELECT scope, name, body, owner FROM canned_replies")
    assert before == [("team:support", "shared", "Your parcel left today.", AGENT)]

    commands = [
        f"!canned {HUGE}", f"!canned delete {HUGE}", f"!canned save {HUGE}",
        "!canned ｒｅｆｕｎｄ", "!canned save Ｓhared", "!canned save a b c",
        "!canned save --team", "!canned delete ../../etc/passwd", "!canned <!channel> `x`",
        f"!field {HUGE} value", f"!field order_id {HUGE}", "!field ключ value",
        "!field order_id", "!field 1abc v",
    ]
    for n, command in enumerate(commands, 1):
        assert await h.agent_says(thread, command, user=OTHER) == 200, command[:40]
        await until(lambda n=n: len(notes(h, OTHER)) >= n,  # type: ignore[misc]
                    f"a note for {command[:40]!r}")
    # Sam (same team) may neither replace nor delete Dana's team reply.
    assert await h.agent_says(thread, "Something else entirely.", user=OTHER) == 200
    assert await h.agent_says(thread, "!canned save shared --team", user=OTHER) == 200
    assert await h.agent_says(thread, "!canned delete shared", user=OTHER) == 200
    await until(lambda: len(notes(h, OTHER)) >= len(commands) + 2, "the last notes")
    await h.drained()

    said = notes(h, OTHER)
    assert all(len(note) <= NOTE_MAX for note in said), [len(n) for n in said]
    assert "saved by someone else" in said[-2] and "no saved canned reply" in said[-1]
    assert h.rows("SELECT scope, name, body, owner FROM canned_replies") == before
    assert h.rows("SELECT name, value FROM customer_fields") == []
    assert h.count("canned_previews") == 0
    assert customer_texts(h) == ["<b>Dana</b>\nYour parcel left today.",
                                 "<b>Sam</b>\nSomething else entirely."]


async def test_a_preview_older_than_a_month_is_pruned_and_its_click_sends_nothing(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, hi="---\nname: hi\n---\nHi, on it.\n")
    clock = OffsetClock()
    h = await make_harness({"canned": {"dir": "canned"}}, clock=clock)
    thread = await started(h)
    old = await preview(h, thread, "!canned hi")
    clock.offset = KEEP_PREVIEWS - 60  # not yet: still kept
    kept = await preview(h, thread, "!canned hi")
    assert h.count("canned_previews") == 2
    clock.offset = KEEP_PREVIEWS + 60  # the first is past its month, the second is not
    await preview(h, thread, "!canned hi")
    assert h.count("canned_previews") == 2
    assert await click(h, old, "send") == 200
    await until(lambda: "already sent or cancelled" in " ".join(notes(h)), "the refusal")
    await h.drained()
    assert customer_texts(h) == []
    assert await click(h, kept, "send") == 200
    await until(lambda: len(customer_texts(h)) == 1, lambda: str(customer_texts(h)))
    await h.drained()
    assert h.rows("SELECT state FROM canned_previews ORDER BY created_at") == [
        ("sent",), ("ready",)]


async def test_edit_submissions_with_odd_metadata_send_nothing(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, hi="---\nname: hi\n---\nHi, on it.\n")
    h = await make_harness({"canned": {"dir": "canned"}})
    thread = await started(h)
    shown = await preview(h, thread, "!canned hi")
    token = h.rows("SELECT token FROM canned_previews")[0][0]
    for meta in ("[1, 2]", '"a string"', '{"token": 5}', '{"token": null}', "{" * 2000,
                 '{"token": "' + token + 'x"}', '{"token": ["' + token + '"]}'):
        status, _ = await h.agent.post_interaction(h.agent.view_submission(
            user=AGENT, view={"id": "V1", "type": "modal", "callback_id": "canned_edit_view",
                              "private_metadata": meta},
            values={"text": {"text": text_value("hi")}}))
        assert status == 200, meta
    await h.drained()
    assert customer_texts(h) == [] and h.rows("SELECT state FROM canned_previews") == [
        ("ready",)]
    assert await click(h, shown, "send") == 200  # the real preview still sends
    await until(lambda: len(customer_texts(h)) == 1, lambda: str(customer_texts(h)))
