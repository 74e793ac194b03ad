"""`bridge run` that cannot start says so in one line, exits 3, and shows no secret and no
traceback: run as an admin runs it (a subprocess), against the stand-ins."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from bridge.standins import SlackStandin, TelegramStandin
from tests.conftest import CHANNEL, write_config
from tests.helpers_proc import BridgeProcess, free_port, run_cli

# Distinctive secrets: any of them in the output is a leak.
SLACK_TOKEN = "xoxb-distinctive-slack-4f1c9a"
SIGNING = "signing-distinctive-8d2e71"
TG_TOKEN = "987654321:AAdistinctive_telegram_token_3b9f0"
HOOK = "hook-distinctive-c47a"
SECRETS = (SLACK_TOKEN, SIGNING, TG_TOKEN, HOOK, "987654321%3AAAdistinctive")
ENV = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SIGNING,
       "TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": HOOK}


async def run_failing(config: Path, cwd: Path, *, debug: bool = False, code: int = 3) -> str:
    """Run `bridge run`; it must exit 3 with one `error: … (fix: …)` line and nothing secret
    (and no traceback, unless the log level is DEBUG, which logs it, redacted)."""
    done = await run_cli(["run", "--config", str(config)], env=ENV, cwd=cwd, timeout=60)
    output = done.stdout + done.stderr
    assert done.code == code, output
    assert ("Traceback" in output) == debug, output
    assert [s for s in SECRETS if s in output] == []
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "(fix: " in errors[0], done.stderr
    return errors[0]


@pytest.fixture
async def standins() -> tuple[SlackStandin, TelegramStandin]:  # type: ignore[misc]
    async with SlackStandin(bot_token=SLACK_TOKEN) as slack, \
            TelegramStandin(token=TG_TOKEN) as telegram:
        yield slack, telegram


def config_for(tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
               port: int = 0, level: str = "INFO",
               **tables: dict[str, str | int | bool]) -> Path:
    return write_config(tmp_path / "bridge.toml", port=port, db=tmp_path / "bridge.db",
                        slack=slack, telegram=telegram,
                        overrides={"logging": {"level": level}, **tables})


async def test_a_port_in_use(tmp_path: Path,
                             standins: tuple[SlackStandin, TelegramStandin]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = await run_failing(config_for(tmp_path, *standins, port=port), tmp_path)
    assert line.startswith(f"error: port {port} on 127.0.0.1 is already in use")


async def test_a_slack_token_slack_refuses(
        tmp_path: Path, standins: tuple[SlackStandin, TelegramStandin]) -> None:
    slack, telegram = standins
    slack.fail_next("auth.test", status=200, error="invalid_auth")
    line = await run_failing(config_for(tmp_path, slack, telegram), tmp_path)
    assert line.startswith("error: Slack refused the bot token (invalid_auth)")
    assert "SLACK_BOT_TOKEN" in line
    assert [c.method for c in telegram.calls] == []  # nothing started after the console


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_a_telegram_token_telegram_refuses(tmp_path: Path, level: str) -> None:
    """python-telegram-bot puts the token into InvalidToken's message and request URLs: at
    DEBUG the traceback is logged, and still carries no token."""
    async with SlackStandin(bot_token=SLACK_TOKEN) as slack, \
            TelegramStandin(token="111:other") as telegram:
        line = await run_failing(config_for(tmp_path, slack, telegram, level=level), tmp_path,
                                 debug=level == "DEBUG")
        assert line == ("error: Telegram refused the bot token (fix: copy the token "
                        "@BotFather gave you into TELEGRAM_BOT_TOKEN)")
        assert telegram.calls and not any(c.ok for c in telegram.calls)


async def test_an_unreachable_database_names_no_password(
        tmp_path: Path, standins: tuple[SlackStandin, TelegramStandin]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        url = f"postgresql://bridge:{SIGNING}@127.0.0.1:{port}/test"
        line = await run_failing(config_for(tmp_path, *standins, storage={"url": url}),
                                 tmp_path, code=1)  # a store error, as documented
    assert line.startswith(f"error: cannot open PostgreSQL store postgresql://bridge:***@127.0.0.1:"
                           f"{port}/test")
    assert "correct [storage] url" in line


@pytest.mark.parametrize(("info", "code", "fix"), [
    (None, "channel_not_found", "into [slack] support_channel"),
    ({"is_member": False}, "not_in_channel", "/invite @Support Bridge"),
    ({"is_archived": True}, "is_archived", "unarchive the channel"),
])
async def test_a_support_channel_the_bridge_cannot_use(
        tmp_path: Path, standins: tuple[SlackStandin, TelegramStandin],
        info: dict[str, bool] | None, code: str, fix: str) -> None:
    slack, telegram = standins
    slack.channel_info[CHANNEL] = info
    line = await run_failing(config_for(tmp_path, slack, telegram), tmp_path)
    assert line.startswith(f"error: Slack cannot be used in {CHANNEL} ({code}) (fix: ")
    assert fix in line
    assert [c.method for c in telegram.calls] == []  # nothing started after the console


async def test_without_channels_read_the_check_only_warns(
        tmp_path: Path, standins: tuple[SlackStandin, TelegramStandin]) -> None:
    """An app installed from an older manifest: the bridge starts, and says what to add."""
    slack, telegram = standins
    slack.scopes = slack.scopes - {"channels:read"}
    port = free_port()
    proc = BridgeProcess(config_for(tmp_path, slack, telegram, port=port), ENV, tmp_path, port)
    proc.start()
    try:
        health = await proc.wait_healthy()
        assert health["status"] == "ok"
        assert await proc.signal(signal.SIGTERM) == 0
    finally:
        proc.cleanup()
    assert [(c.method, c.ok) for c in slack.calls[:2]] == [
        ("auth.test", True), ("conversations.info", False)]
