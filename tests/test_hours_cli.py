"""`bridge hours [team] [--format text|json]` as a black box, at a moved clock."""

from __future__ import annotations

import json
from pathlib import Path

from bridge.clock import FAKE_NOW
from tests.helpers_proc import run_cli
from tests.test_cli import plain_config

CALENDAR = """
[teams.billing]
channel = "C0BILLING1"
hours = "office"
[hours.office]
timezone = "Europe/Paris"
monday = ["09:00-12:00", "13:00-17:00"]
tuesday = ["09:00-17:00"]
holidays = ["2026-12-08"]
"""


def config(tmp_path: Path, extra: str = CALENDAR) -> Path:
    path = plain_config(tmp_path / "bridge.toml", f"sqlite:///{tmp_path / 'b.db'}")
    text = path.read_text(encoding="utf-8").replace("[server]",
                                                    "[server]\nallow_fake_clock = true")
    path.write_text(text + extra, encoding="utf-8")
    return path


async def hours(path: Path, now: str, *args: str) -> tuple[int, str, str]:
    result = await run_cli(["hours", *args, "--config", str(path)], env={FAKE_NOW: now})
    return result.code, result.stdout, result.stderr


async def test_json_at_lunch_and_over_a_holiday(tmp_path: Path) -> None:
    path = config(tmp_path)
    code, out, err = await hours(path, "2026-12-07T12:30:00+01:00", "billing",
                                 "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["team"] == "billing" and got["open"] is False
    assert got["next_open"] == "2026-12-07T13:00:00+01:00"
    assert got["next_close"] == "2026-12-07T17:00:00+01:00"
    # Open at 16:00 on Monday; Tuesday is a holiday, so it opens again next Monday.
    code, out, _ = await hours(path, "2026-12-07T15:00:00Z", "billing", "--format", "json")
    got = json.loads(out)
    assert got["open"] is True and got["next_close"] == "2026-12-07T17:00:00+01:00"
    assert got["next_open"] == "2026-12-14T09:00:00+01:00"


async def test_text_default_team_always_open_and_unknown_team(tmp_path: Path) -> None:
    path = config(tmp_path)
    code, out, _ = await hours(path, "2026-12-07T03:00:00Z")
    assert code == 0 and out.startswith("support: open")
    code, out, _ = await hours(path, "2026-12-07T03:00:00Z", "support", "--format", "json")
    assert json.loads(out) == {**json.loads(out), "team": "support", "open": True,
                               "next_open": None, "next_close": None}
    code, out, _ = await hours(path, "2026-12-07T03:00:00Z", "billing")
    assert code == 0 and out.startswith("billing: closed") and "2026-12-07T09:00:00+01:00" in out
    code, _, err = await hours(path, "2026-12-07T03:00:00Z", "nobody")
    assert code == 2 and "nobody" in err and "billing" in err


async def test_unknown_hours_name_is_a_config_error(tmp_path: Path) -> None:
    path = config(tmp_path, '[teams.billing]\nchannel = "C0BILLING1"\nhours = "ofice"\n')
    code, _, err = await hours(path, "2026-12-07T03:00:00Z", "billing")
    assert code == 1
    assert "bridge.toml: teams.billing.hours:" in err and "[hours.ofice]" in err
    assert "Traceback" not in err


async def test_junk_team_names_exit_2_naming_the_teams(tmp_path: Path) -> None:
    """Control characters, bidi marks, emoji and a 5,000-character name: exit 2, one line that
    shows the name escaped and lists the teams; never a traceback."""
    path = config(tmp_path)
    for junk in ("\x01bad\nline", "\u202eevil", "ž🙂", "x" * 5000):
        code, out, err = await hours(path, "2026-12-07T03:00:00Z", junk)
        assert code == 2 and out == "", err
        assert len(err.strip().splitlines()) == 1 and "billing, support" in err
        assert "Traceback" not in err
