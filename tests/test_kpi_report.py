"""`bridge report` as an admin runs it (a subprocess, a moved clock) against the hand-built
history of tests/helpers_kpi.py, on SQLite and PostgreSQL; and `bridge dashboard-link`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.postgres import PostgresStore
from storage.sqlite import SQLiteStore
from storage.sqlstore import SQLStore
from tests.helpers_kpi import load_history
from tests.helpers_pg import PG_URL, fresh_schema

ROOT = Path(__file__).resolve().parent.parent


def config_text(storage: str) -> str:
    return f"""
[server]
allow_fake_clock = true
public_url = "https://support.test"
[storage]
{storage}
[slack]
bot_token = "xoxb-test"
signing_secret = "test-secret"
support_channel = "C0SUPPORT1"
[teams.billing]
channel = "C0BILLING1"
[hours.office]
timezone = "UTC"
monday = ["09:00-17:00"]
tuesday = ["09:00-17:00"]
[teams.support]
hours = "office"
[dashboard]
token = "dash-secret-token"
[logging]
level = "WARNING"
"""


@pytest.fixture(params=["sqlite", "postgres"])
async def config(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "bridge.toml"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/kpi.db"
        store: SQLStore = SQLiteStore(url)
        path.write_text(config_text(f'url = "{url}"'), encoding="utf-8")
        await store.open()
        await store.migrate()
        await load_history(store)
        await store.close()
        yield path
        return
    async with fresh_schema() as schema:
        store = PostgresStore(PG_URL, schema=schema)
        path.write_text(config_text(f'url = "{PG_URL}"\nschema = "{schema}"'),
                        encoding="utf-8")
        await store.open()
        try:
            await store.migrate()
            await load_history(store)
        finally:
            await store.close()
        yield path


def drop_token(config: Path) -> None:
    config.write_text(config.read_text().replace('token = "dash-secret-token"', ""))


async def bridge(config: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BRIDGE_FAKE_NOW": "2026-11-30T18:00:00Z"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", *args, "--config", str(config), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_report_json_names_and_figures(config: Path) -> None:
    code, out, err = await bridge(config, "report", "--from", "2026-11-30", "--to",
                                  "2026-11-30", "--by", "channel", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["from"] == "2026-11-30T00:00:00+00:00"
    assert data["to"] == "2026-12-01T00:00:00+00:00"
    totals = data["totals"]
    assert set(totals) == {
        "conversations_opened", "conversations_closed", "conversations_reopened",
        "customer_messages", "agent_messages", "first_response_seconds",
        "first_response_business_seconds", "next_response_seconds", "resolution_seconds",
        "targets_met_percent", "csat", "nps", "backlog", "failed_deliveries",
        "automatic_answers", "faq_handoffs", "invitations_converted"}
    assert totals["conversations_opened"] == 4
    assert totals["invitations_converted"] == 1
    assert totals["first_response_seconds"] == {"median": 600.0, "p90": 4440.0, "count": 3}
    # Support keeps office hours (conversations 1 and 4 were asked inside them); billing has
    # none, so its 08:00 question counts from 08:00.
    assert totals["first_response_business_seconds"]["count"] == 3
    assert totals["first_response_business_seconds"]["median"] == 600.0
    assert totals["backlog"]["oldest_wait_seconds"] == pytest.approx(7200.0, abs=30)
    keys = [g["key"] for g in data["groups"]]
    assert {"channel": "telegram"} in keys and {"channel": "twilio"} in keys
    [telegram] = [g for g in data["groups"] if g["key"] == {"channel": "telegram"}]
    assert telegram["conversations_opened"] == 2


async def test_report_team_day_csv_and_table(config: Path) -> None:
    code, out, err = await bridge(config, "report", "--from", "2026-11-30T00:00:00Z", "--to",
                                  "2026-12-01T00:00:00Z", "--team", "billing", "--by", "day",
                                  "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["totals"]["conversations_opened"] == 1
    assert [g["key"] for g in data["groups"]] == [{"day": "2026-11-30"}]
    code, out, err = await bridge(config, "report", "--from", "2026-11-30", "--to",
                                  "2026-11-30", "--by", "agent", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["group"] for r in rows][:1] == ["total"]
    assert {r["group"] for r in rows} >= {"U1", "U2"}
    assert rows[0]["conversations_opened"] == "4"
    assert rows[0]["invitations_converted"] == "1"
    code, out, err = await bridge(config, "report", "--from", "2026-11-30", "--to",
                                  "2026-11-30")
    assert code == 0, err
    assert "first resp. median" in out and "10m00s" in out
    assert "invitations converted" in out


async def test_report_refuses_bad_input(config: Path) -> None:
    code, _, err = await bridge(config, "report", "--team", "nobody")
    assert code == 2 and "no team 'nobody'" in err
    code, _, err = await bridge(config, "report", "--from", "yesterday-ish")
    assert code == 2 and "--from/--to" in err
    code, _, err = await bridge(config, "report", "--from", "2026-12-01", "--to", "2026-11-01")
    assert code == 2


@pytest.mark.parametrize("config", ["sqlite"], indirect=True)
async def test_dashboard_link_is_signed(config: Path) -> None:
    code, out, err = await bridge(config, "dashboard-link", "--hours", "2")
    assert code == 0, err
    link = out.strip()
    assert link.startswith("https://support.test/dashboard?exp=")
    assert "&sig=" in link
    await asyncio.to_thread(drop_token, config)
    code, _, err = await bridge(config, "dashboard-link")
    assert code == 2 and "[dashboard] token" in err


BAD_PERIODS = [
    ("--to", "9999-12-31"), ("--from", "２０２６-１１-３０"), ("--from", "9" * 5000),
    ("--to", "2026-02-30"), ("--from", "2026-11-30T00:00:00+99:00"),
]


@pytest.mark.parametrize("config", ["sqlite"], indirect=True)
async def test_report_refuses_hostile_values_in_one_line(config: Path) -> None:
    """Bad --from/--to/--by/--team/--format: exit 2 with one line (argparse's own choices: its
    usage and one error line), never a traceback."""
    for bad in BAD_PERIODS:
        code, out, err = await bridge(config, "report", *bad)
        assert code == 2, (bad, code, err[-300:])
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (bad, err[-300:])
        assert err.startswith("error: "), (bad, err)
        assert out == ""
    code, out, err = await bridge(config, "report", "--team", "é" * 3000)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert out == ""
    code, out, err = await bridge(config, "report", "--by", "é")
    assert code == 2 and "Traceback" not in err and out == ""
    assert "invalid choice" in err.strip().splitlines()[-1]
