"""BRIDGE_FAKE_NOW: honoured only with [server] allow_fake_clock = true; refused (naming the
variable) otherwise; the business clock starts at the given instant and runs on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bridge.clock import FAKE_NOW, FakeClockRefused, StartedAt, business_clock, parse_instant
from tests.helpers_proc import run_cli
from tests.test_cli import plain_config


def test_unset_is_real_time() -> None:
    assert business_clock({}, allowed=False) is time.time


def test_refused_unless_allowed_naming_the_variable_and_the_fix() -> None:
    with pytest.raises(FakeClockRefused, match=f"{FAKE_NOW}.*allow_fake_clock"):
        business_clock({FAKE_NOW: "2026-12-07T09:00:00+01:00"}, allowed=False,
                       config_path="bridge.toml")


def test_starts_at_the_instant_and_runs() -> None:
    ticks = iter([100.0, 100.0, 105.5])
    clock = StartedAt(parse_instant("2026-12-07T09:00:00+01:00"), monotonic=lambda: next(ticks))
    assert clock() == parse_instant("2026-12-07T08:00:00Z")
    assert clock() == parse_instant("2026-12-07T08:00:05.5Z")


def test_an_instant_without_offset_is_utc_and_garbage_is_refused() -> None:
    assert parse_instant("2026-12-07T08:00:00") == parse_instant("2026-12-07T08:00:00+00:00")
    with pytest.raises(FakeClockRefused, match="ISO 8601"):
        business_clock({FAKE_NOW: "tomorrow"}, allowed=True)


@pytest.mark.backends("sqlite")
async def test_run_and_commands_refuse_a_fake_clock_that_is_not_allowed(tmp_path: Path) -> None:
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{tmp_path / 'b.db'}")
    env = {FAKE_NOW: "2026-12-07T09:00:00+01:00"}
    for args in (["run"], ["queue", "--format", "json"]):
        result = await run_cli([*args, "--config", str(config)], env=env)
        assert result.code == 1, result
        assert FAKE_NOW in result.stderr and "allow_fake_clock" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "b.db").exists()  # refused before anything was created


async def test_queue_reads_the_fake_clock_when_allowed(tmp_path: Path) -> None:
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{tmp_path / 'b.db'}")
    text = config.read_text(encoding="utf-8")
    text = text.replace("[server]", "[server]\nallow_fake_clock = true")
    config.write_text(text, encoding="utf-8")
    assert (await run_cli(["migrate", "--config", str(config)], env={})).code == 0
    result = await run_cli(["queue", "--format", "json", "--config", str(config)],
                           env={FAKE_NOW: "2026-12-07T09:00:00+01:00"})
    assert result.code == 0, result
