"""The `bridge` command's contract: migrate, run, outbox list/retry, --help, /healthz."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.cli import build_parser, main
from bridge.registry import settings_registry
from bridge.settings import load_settings
from bridge.standins import SlackStandin, TelegramStandin
from storage.dialect import migrations
from tests.conftest import (
    HarnessFactory,
    bridge_env,
    free_socket,
    write_config,
)
from tests.helpers_proc import BRIDGE, BridgeProcess, child_env, db_rows, free_port, run_cli
from tests.helpers_rows import Rows
from tests.waiting import poll

LATEST = migrations()[-1].version
TABLES = {"bridge_schema", "customers", "identities", "conversations", "messages", "outbox",
          "slack_events", "connector_state"}


def plain_config(path: Path, url: str, port: int = 0) -> Path:
    """A valid config without connectors (a warning, not an error) and without env secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""
[server]
port = {port}
[storage]
url = "{url}"
[slack]
bot_token = "xoxb-test"
signing_secret = "test-secret"
support_channel = "C0SUPPORT1"
[logging]
level = "WARNING"
""", encoding="utf-8")
    return path


def tables(db: Path) -> set[str]:
    return {r[0] for r in db_rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def versions(db: Path) -> list[int]:
    return [r[0] for r in db_rows(db, "SELECT version FROM bridge_schema ORDER BY version")]


def make_too_new(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO bridge_schema (version, name, applied_at)"
                     " VALUES (?, 'from_the_future.sql', 0)", (LATEST + 1,))


def test_migrate_creates_the_schema_and_is_idempotent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bridge.db"
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{db}")
    assert main(["migrate", "--config", str(config)]) == 0
    assert f"schema version {LATEST}" in capsys.readouterr().out
    assert TABLES <= tables(db)
    assert versions(db) == list(range(1, LATEST + 1))

    assert main(["migrate", "--config", str(config)]) == 0
    assert f"up to date (version {LATEST})" in capsys.readouterr().out
    assert versions(db) == list(range(1, LATEST + 1))


def test_migrate_and_outbox_refuse_a_newer_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bridge.db"
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{db}")
    assert main(["migrate", "--config", str(config)]) == 0
    make_too_new(db)
    capsys.readouterr()
    for argv in (["migrate"], ["outbox", "list"]):
        assert main([argv[0], "--config", str(config), *argv[1:]]) == 1, argv
        err = capsys.readouterr().err
        assert f"schema version {LATEST + 1}" in err and f"up to {LATEST}" in err, err
    assert versions(db) == [*range(1, LATEST + 1), LATEST + 1]


def test_outbox_commands_need_a_migrated_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{tmp_path / 'new.db'}")
    assert main(["outbox", "--config", str(config), "list"]) == 1
    assert "bridge migrate" in capsys.readouterr().err


async def test_run_refuses_a_newer_schema(tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    config = plain_config(tmp_path / "bridge.toml", f"sqlite:///{db}", port=free_port())
    assert (await run_cli(["migrate", "--config", str(config)], env={})).code == 0
    make_too_new(db)
    result = await run_cli(["run", "--config", str(config)], env={}, timeout=10)
    assert result.code == 1, result
    assert f"schema version {LATEST + 1}" in result.stderr
    assert f"only knows up to {LATEST}" in result.stderr


def test_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = plain_config(tmp_path / "etc" / "bridge.toml", "sqlite:///data/rel.db")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["migrate", "--config", str(config)]) == 0
    assert TABLES <= tables(work / "data" / "rel.db")
    assert not (tmp_path / "etc" / "data").exists()


def test_absolute_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "abs" / "bridge.db"
    url = f"sqlite:///{db}"
    assert url.startswith("sqlite:////")
    config = plain_config(tmp_path / "bridge.toml", url)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["migrate", "--config", str(config)]) == 0
    assert TABLES <= tables(db)
    assert list((tmp_path / "elsewhere").iterdir()) == []


async def test_healthz_is_503_until_ready_then_200(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
    session: aiohttp.ClientSession,
) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    config = write_config(tmp_path / "bridge.toml", port=port, db=tmp_path / "b.db",
                          slack=slack, telegram=telegram)
    loaded = load_settings(config, settings_registry(),
                           environ=bridge_env(slack), dotenv_dir=tmp_path)
    bridge = Bridge(loaded, sock=sock)
    slack.delay_next("auth.test", 1.0)  # hold start-up after the web server is listening
    starting = asyncio.create_task(bridge.start())
    url = f"http://127.0.0.1:{port}"
    try:
        async def healthz() -> tuple[int, object] | None:
            try:
                async with session.get(f"{url}/healthz") as resp:
                    return resp.status, await resp.json()
            except aiohttp.ClientConnectionError:
                return None  # not listening yet
        early = await poll(healthz, lambda got: got is not None, "/healthz to answer")
        assert not starting.done()
        assert early == (503, {"status": "starting"})
        async with session.post(f"{url}/webhooks/telegram", json={}) as resp:
            assert resp.status == 503
        await starting
        async with session.get(f"{url}/healthz") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["status"] == "ok" and body["schema_version"] == LATEST
        assert body["connectors"] == ["telegram"]
    finally:
        await starting
        await bridge.stop()


async def test_run_exits_zero_on_sigint(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin
) -> None:
    port = free_port()
    config = write_config(tmp_path / "bridge.toml", port=port, db=tmp_path / "b.db",
                          slack=slack, telegram=telegram)
    proc = BridgeProcess(config, bridge_env(slack), tmp_path, port)
    proc.start()
    try:
        health = await proc.wait_healthy()
        assert health["status"] == "ok"
        assert await proc.signal(signal.SIGINT, timeout=10) == 0
    finally:
        proc.cleanup()


def test_help_lists_the_commands() -> None:
    done = subprocess.run([*BRIDGE, "--help"], env=child_env({}), capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: bridge")
    for command in ("run", "check-config", "migrate", "outbox", "demo"):
        assert command in done.stdout


async def test_outbox_list_and_retry_a_failed_send(
    make_harness: HarnessFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    h = await make_harness()
    h.telegram.fail_next("sendMessage", status=403, error="Forbidden: bot was blocked by the user")
    assert await h.customer_says(5150, "Hello?") == 200
    assert await h.agent_says(await h.thread_of(5150), "We are on it") == 200
    failed_sql = "SELECT id, conversation_id FROM outbox WHERE status = 'failed'"

    async def failed() -> Rows:
        return h.rows(failed_sql)
    [(item, conversation)] = await poll(failed, bool, "a failed outbox row")
    await h.bridge.stop()  # nothing may pick the row up behind the CLI's back

    for name, value in bridge_env(h.slack).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    config = str(tmp_path / "bridge.toml")

    capsys.readouterr()
    assert await asyncio.to_thread(main, ["outbox", "--config", config, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(h.rows("SELECT id FROM outbox WHERE status IN ('pending', 'failed')"))
    [line] = [ln for ln in lines if ln.split("\t")[0] == str(item)]
    for part in ("failed", f"conversation={conversation}", "connector=telegram",
                 "customer_send", "attempts=1",
                 "Forbidden: bot was blocked by the user"):
        assert part in line, line

    assert await asyncio.to_thread(main, ["outbox", "--config", config, "retry"]) == 2
    assert await asyncio.to_thread(main, ["outbox", "--config", config, "retry", "99999"]) == 1
    capsys.readouterr()
    assert await asyncio.to_thread(
        main, ["outbox", "--config", config, "retry", "--all-failed"]) == 0
    assert capsys.readouterr().out.strip() == f"queued again: {item}"
    assert h.rows("SELECT status, attempts FROM outbox WHERE id = ?", (item,)) == [("pending", 0)]

    # A bridge started on the same database delivers the requeued reply.
    loaded = load_settings(Path(config), settings_registry())
    again = Bridge(loaded, sock=free_socket())
    await again.start()
    try:
        [call] = await h.telegram.wait_for("sendMessage", 1)
        assert call.params["chat_id"] == "5150" and "We are on it" in call.params["text"]
        await h.wait_rows(f"SELECT status FROM outbox WHERE id = {int(item)}", [("done",)])
    finally:
        await again.stop()


def test_the_readme_commands_table_names_every_subcommand_and_flag() -> None:
    """Each subcommand (and `outbox`'s own) has a row in the README's Commands table, and
    each of its options is named on that row."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = text[text.index("### Commands"):text.index("### HTTP endpoints")]
    rows = [line for line in table.splitlines() if line.startswith("| `bridge ")]
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if name and not subs:
            row = next((r for r in rows if r.startswith(f"| `bridge {name} ")
                        or r.startswith(f"| `bridge {name}`")), None)
            if row is None:
                missing.append(name)
                return
            missing.extend(f"{name} {opt}" for a in parser._actions for opt in a.option_strings
                           if opt.startswith("--") and opt != "--help" and opt not in row)
        for action in subs:
            for sub, subparser in action.choices.items():
                walk(subparser, f"{name} {sub}".strip())

    walk(build_parser(), "")
    assert "`bridge --version`" in table
    assert missing == []
