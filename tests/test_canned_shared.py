"""Canned replies saved from Slack (issue 22): `!canned save`, `--team`, another agent of the
team reusing it (on another instance), `!canned delete`, the two message shortcuts with their
modals, and the config check of reply files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.registry import settings_registry
from bridge.settings import ConfigError, load_settings
from bridge.standins import SlackStandin
from bridge.standins.clock import OffsetClock
from tests.conftest import AGENT, CHANNEL, HarnessFactory
from tests.helpers_canned import (
    LATE,
    click,
    customer_texts,
    notes,
    option_value,
    preview,
    shown_text,
    text_value,
    write_replies,
)
from tests.helpers_ownership import OTHER, add_other, started
from tests.helpers_pg import PG_URL, fresh_schema
from tests.test_auto_hours import HOURS, at
from tests.test_socket_mode import APP_TOKEN, SOCKET_MODE
from tests.test_targets import TARGETS, move, settle
from tests.waiting import until

THANKS = "Thanks for waiting, {{ customer.first_name }}! {{ agent.name }} here."


async def test_a_team_reply_saved_by_one_agent_is_sent_by_another(
        make_harness: HarnessFactory) -> None:
    h = await make_harness()
    add_other(h)
    thread = await started(h)
    assert await h.agent_says(thread, THANKS) == 200  # sent as written ({{ }} and all)
    assert await h.agent_says(thread, "!canned save thanks --team") == 200
    assert await h.agent_says(thread, "!canned save mine") == 200
    assert "`thanks` saved as team support's canned reply." in notes(h)
    assert sorted(h.rows("SELECT scope, name, owner FROM canned_replies")) == [
        ("team:support", "thanks", AGENT), (f"user:{AGENT}", "mine", AGENT)]

    # Sam (same team) sees the team's reply, not Dana's own, and sends it as Sam.
    assert await h.agent_says(thread, "!canned", user=OTHER) == 200
    await until(lambda: bool(notes(h, OTHER)), "Sam's list")
    assert "`thanks`" in notes(h, OTHER)[-1] and "`mine`" not in notes(h, OTHER)[-1]
    shown = await preview(h, thread, "!canned thanks", user=OTHER)
    assert shown_text(shown) == ">Thanks for waiting, Ann! Sam here."
    assert await click(h, shown, "send", user=OTHER) == 200
    await until(lambda: len(customer_texts(h)) == 2, lambda: str(customer_texts(h)))
    assert customer_texts(h)[-1] == "<b>Sam</b>\nThanks for waiting, Ann! Sam here."

    # Only the agent who saved it may delete it.
    assert await h.agent_says(thread, "!canned delete thanks", user=OTHER) == 200
    assert await h.agent_says(thread, "!canned delete thanks") == 200
    await h.drained()
    assert "no saved canned reply `thanks`" in " ".join(notes(h, OTHER))
    assert h.rows("SELECT name FROM canned_replies") == [("mine",)]


@pytest.mark.backends("postgres")  # two instances share one database
async def test_a_preview_shown_by_one_instance_is_sent_once_by_another(
        make_harness: HarnessFactory) -> None:
    async with fresh_schema() as schema:
        storage = {"storage": {"url": PG_URL, "schema": schema}}
        one = await make_harness(storage)
        two = await make_harness(storage)
        thread = await started(one)
        assert await one.agent_says(thread, "Your refund is on its way.") == 200
        assert await one.agent_says(thread, "!canned save refund --team") == 200
        shown = await preview(two, thread, "!canned refund")  # the other instance
        assert await click(one, shown, "send") == 200
        assert await click(two, shown, "send") == 200
        await until(lambda: len(customer_texts(one)) == 2, lambda: str(customer_texts(one)))
        await one.drained()
        await two.drained()
        assert customer_texts(one) == ["<b>Dana</b>\nYour refund is on its way."] * 2
        assert len([m for m in one.slack.thread(CHANNEL, thread) if m.get("username")]) == 1
        for bridge in (one.bridge, two.bridge):
            await bridge.stop()  # before the schema goes


async def test_the_shortcuts_save_search_and_preview(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, late=LATE)
    h = await make_harness({"canned": {"dir": "canned"}})
    thread = await started(h)
    assert await h.agent_says(thread, "!field order_id A-7") == 200
    assert await h.agent_says(thread, "We refund within 5 days, {{ customer.first_name }}.") \
        == 200
    reply = {"type": "message", "user": AGENT, "ts": "1700000000.000100", "thread_ts": thread,
             "text": "We refund within 5 days, {{ customer.first_name }}."}
    status, _ = await h.agent.post_interaction(h.agent.message_shortcut(
        channel=CHANNEL, user=AGENT, message=reply, callback_id="save_canned_reply"))
    assert status == 200
    [save] = h.slack.views.values()
    status, body = await h.agent.post_interaction(h.agent.view_submission(
        user=AGENT, view=save, values={"name": {"name": text_value("Bad Name")},
                                       "text": {"text": text_value(reply["text"])}}))
    assert status == 200 and json.loads(body) == {
        "response_action": "errors",
        "errors": {"name": "Lowercase letters, digits, _ - or . (64 at most)."}}
    status, _ = await h.agent.post_interaction(h.agent.view_submission(
        user=AGENT, view=save, values={"name": {"name": text_value("refund")},
                                       "title": {"title": text_value("Refund time")},
                                       "text": {"text": text_value(reply["text"])},
                                       "scope": {"scope": option_value("personal")}}))
    assert status == 200
    assert h.rows("SELECT scope, name, title FROM canned_replies") == [
        (f"user:{AGENT}", "refund", "Refund time")]

    # *Canned reply…* on the customer's message: the search starts from their words.
    customer = h.slack.thread(CHANNEL, thread)[0]
    status, _ = await h.agent.post_interaction(h.agent.message_shortcut(
        channel=CHANNEL, user=AGENT, message=customer, callback_id="canned_reply"))
    assert status == 200
    pick = list(h.slack.views.values())[-1]
    choice = next(b for b in pick["blocks"] if b.get("block_id") == "choice")
    assert choice["element"]["options"][0]["value"] == "late"  # "My parcel is late"
    status, _ = await h.agent.post_interaction(h.agent.view_action(
        user=AGENT, view=pick, block_id="query", action_id="canned_search", value="refnud"))
    assert status == 200
    redrawn = h.slack.views[pick["id"]]
    choice = next(b for b in redrawn["blocks"] if b.get("block_id") == "choice")
    assert choice["element"]["options"][0]["value"] == "refund"  # fuzzy: a typo is fine
    assert "We refund within 5 days, Ann." in redrawn["blocks"][-1]["text"]["text"]
    status, _ = await h.agent.post_interaction(h.agent.view_submission(
        user=AGENT, view=redrawn, values={"choice": {"choice": option_value("refund")}}))
    assert status == 200
    await until(lambda: any("We refund" in str(e.get("blocks")) for e in h.slack.ephemerals),
                lambda: str(h.slack.ephemerals))
    await h.drained()
    assert customer_texts(h) == ["<b>Dana</b>\nWe refund within 5 days, {{ customer.first_name }}."]


def test_a_broken_reply_file_stops_the_config_naming_file_and_fix(tmp_path: Path) -> None:
    write_replies(tmp_path, bad="no header here\n", late=LATE,
                  team="---\nname: x\nteam: nowhere\n---\nHello\n",
                  syntax="---\nname: s\n---\nHi {{ customer.first_name \n")
    config = tmp_path / "bridge.toml"
    config.write_text('[slack]\nbot_token = "xoxb-1-abc"\nsigning_secret = "s3cret-value"\n'
                      'support_channel = "C0SUPPORT1"\n[canned]\ndir = "canned"\n',
                      encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(config, settings_registry(), environ={}, dotenv_dir=tmp_path)
    problems = [p for p in refused.value.problems if p.key == "canned.dir"]
    assert sorted(Path(str(p.message).split(":")[0]).name for p in problems) == [
        "bad.md", "syntax.md", "team.md"]
    assert all(p.fix for p in problems)


async def test_variables_read_the_team_and_its_business_hours(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, hours="---\nname: hours\n---\n{{ team.name }} of conversation "
                  "{{ conversation.id }} opens {{ hours.next_open }}. {{ extra }}\n")
    clock = OffsetClock()
    at(clock, "2026-12-12 10:00")  # a Saturday in Belgrade: closed until Monday 9:00
    h = await make_harness({"canned": {"dir": "canned"}, **HOURS,
                            "teams.support": {"hours": "office"}}, clock=clock)
    thread = await started(h)
    shown = await preview(h, thread, "!canned hours See you then!")
    assert shown_text(shown) == ">support of conversation 1 opens Monday 9:00. See you then!"


async def test_a_canned_send_meets_the_first_response_target(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, hi="---\nname: hi\n---\nHi {{ customer.first_name }}, on it.\n")
    clock = OffsetClock()
    move(clock, "2026-12-10 10:00")  # a Thursday, open
    h = await make_harness({**TARGETS, "canned": {"dir": "canned"}}, clock=clock)
    thread = await started(h)
    await settle(h)
    move(clock, "2026-12-10 10:20")
    shown = await preview(h, thread, "!canned hi")
    await settle(h)
    assert h.rows("SELECT state FROM response_targets WHERE kind = 'first_response'") == [
        ("running",)]  # a preview is no answer
    assert await click(h, shown, "send") == 200
    await settle(h)
    [(state, took)] = h.rows("SELECT state, business_seconds FROM response_targets"
                             " WHERE kind = 'first_response'")
    assert state == "met" and took == pytest.approx(20 * 60, abs=20)


@pytest.mark.backends("sqlite")  # Socket Mode: nothing store-specific
async def test_in_socket_mode_the_preview_and_its_send_are_acknowledged(
        tmp_path: Path, make_harness: HarnessFactory, slack: SlackStandin) -> None:
    write_replies(tmp_path, hi="---\nname: hi\n---\nHi {{ customer.first_name }}!\n")
    slack.app_token = APP_TOKEN
    h = await make_harness({**SOCKET_MODE, "canned": {"dir": "canned"}},
                           env={"SLACK_APP_TOKEN": APP_TOKEN})
    thread = await started(h)
    command = h.agent.message_event(channel=CHANNEL, user=AGENT, text="!canned hi",
                                    thread_ts=thread)
    await h.slack.wait_ack(await h.slack.socket_push(command))
    [shown] = [e for e in h.slack.ephemerals if e.get("blocks")]
    value = next(e["value"] for b in shown["blocks"] for e in b.get("elements") or []
                 if e.get("action_id") == "canned_send")
    click = h.agent.ephemeral_action(channel=CHANNEL, user=AGENT, ephemeral=shown,
                                     action_id="canned_send", value=value,
                                     response_url=h.slack.response_url(shown))
    await h.slack.wait_ack(await h.slack.socket_push(click, "interactive"))
    await h.drained()
    assert customer_texts(h) == ["<b>Dana</b>\nHi Ann!"]
