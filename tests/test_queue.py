"""The queue (issue 19, item 4): the Home tab, `!queue` and `bridge queue` show the agent's
assigned conversations and, per team they belong to, the open unassigned ones, the
longest-waiting customer first."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import main
from bridge.standins.clock import OffsetClock
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory, bridge_env
from tests.helpers_ownership import OTHER, add_other, privately
from tests.test_cli import plain_config
from tests.test_teams import BILLING, TEAMS, says
from tests.waiting import until

# OTHER is in billing only; AGENT in every team (support and german list nobody).
QUEUE_TEAMS = {**TEAMS, "teams.billing": {"channel": BILLING, "members": [OTHER]}}


async def agent(h: Harness, channel: str, thread: str, text: str, user: str = AGENT) -> None:
    event = h.agent.message_event(channel=channel, user=user, text=text, thread_ts=thread)
    assert (await h.agent.post(event))[0] == 200


async def home(h: Harness, user: str) -> str:
    body = h.agent.message_event(channel=CHANNEL, user=user, text="")
    body["event"] = {"type": "app_home_opened", "user": user, "channel": "D0HOME",
                     "tab": "home", "event_ts": "1717000000.000400"}
    h.slack.home_views.pop(user, None)
    assert (await h.agent.post(body))[0] == 200
    await until(lambda: user in h.slack.home_views, f"the Home tab of {user}")
    view: dict[str, Any] = h.slack.home_views[user]
    return "\n".join(str(b.get("text", {}).get("text", "")) + "".join(
        str(e.get("text", "")) for e in b.get("elements", [])) for b in view["blocks"])


async def test_home_tab_queue_command_and_cli_show_who_waits_longest(
        make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    h = await make_harness(QUEUE_TEAMS, clock=clock)
    add_other(h)
    assert await says(h, 41, "first, my parcel", language=None) == 200
    clock.offset = 600
    assert await says(h, 42, "an invoice question") == 200
    clock.offset = 1200
    assert await says(h, 43, "second parcel question") == 200
    clock.offset = 1800
    assert await says(h, 44, "Wo ist mein Paket bitte?", language="de") == 200
    first, billing = await h.thread_of(41), await h.thread_of(42)
    await agent(h, CHANNEL, first, "!claim")
    await agent(h, CHANNEL, first, "On it")  # answered: waits on nobody
    await h.drained()
    clock.offset = 3600

    shown = await home(h, AGENT)
    mine, waiting = shown.split("Waiting in german")[0], shown
    assert "Assigned to you* (1)" in mine and "answered" in mine
    assert "Waiting in billing" not in shown  # AGENT is not in billing
    assert "Waiting in german* (1)" in waiting and "waiting 30 min" in waiting
    support = shown.split("Waiting in support")[1]
    assert "(1)" in support and "waiting 40 min" in support  # 43 only: 41 is assigned
    other = await home(h, OTHER)
    assert "Waiting in billing* (1)" in other and "waiting 50 min" in other
    assert "Waiting in support" in other  # support lists no members: everyone's

    await agent(h, BILLING, billing, "!queue", user=OTHER)
    await until(lambda: any("Waiting in billing" in t for t in privately(h, OTHER)),
                "the queue, privately")


async def test_the_queue_cli_prints_a_table_and_json(
        make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    h = await make_harness(QUEUE_TEAMS)
    assert await says(h, 51, "hello") == 200
    assert await says(h, 52, "my invoice") == 200
    await h.drained()
    for name, value in bridge_env(h.slack).items():
        monkeypatch.setenv(name, value)
    config = str(tmp_path / "bridge.toml")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["queue", "--config", config]) == 0
    table = capsys.readouterr().out
    assert "billing (1)" in table and "support (1)" in table and "german (0)" in table
    assert f"/archives/{BILLING}/p" in table
    assert await asyncio.to_thread(
        main, ["queue", "--config", config, "--team", "billing", "--format", "json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["team"] == "billing" and entry["channel"] == "telegram"
    assert entry["customer"] == "Ann" and entry["assignee"] is None
    assert isinstance(entry["waited_seconds"], int)
    assert await asyncio.to_thread(main, ["queue", "--config", config, "--team", "x"]) == 2


def test_the_queue_cli_refuses_an_unknown_team_or_format_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{tmp_path / 'bridge.db'}")
    assert main(["migrate", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["queue", "--config", str(config), "--team", "n\u00f6pe"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip().splitlines() == ["error: there is no team 'n\u00f6pe' "
                                                      "(teams: support)"]
    with pytest.raises(SystemExit) as exited:
        main(["queue", "--config", str(config), "--format", "bogus"])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("bridge queue: error: argument --format")


def test_read_only_commands_leave_no_empty_database_behind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "none.db"
    config = str(plain_config(tmp_path / "bridge.toml", f"sqlite:///{db}"))
    for argv in (["queue", "--config", config], ["outbox", "list", "--config", config],
                 ["outbox", "retry", "--all-failed", "--config", config]):
        capsys.readouterr()
        assert main(argv) == 1, argv
        out, err = capsys.readouterr()
        assert out == "" and err.strip().splitlines() == [
            f"error: no SQLite database at {db} (fix: check [storage] url, or run "
            "`bridge migrate`)"]
        assert not db.exists(), argv
