"""Logs: never a configured secret (whatever library wrote the line), JSON on request, and the
secrets the config knows."""

from __future__ import annotations

import io
import json
import logging
import signal
from pathlib import Path

import pytest

from bridge.logs import REDACTED, Redactor, setup_logging
from bridge.settings import secret_values
from bridge.standins import SlackStandin, TelegramStandin
from tests.conftest import TG_TOKEN, SecretWatch, bridge_env, write_config
from tests.helpers_proc import BridgeProcess, free_port


def test_the_redactor_replaces_each_secret_and_its_url_forms() -> None:
    redact = Redactor(["123456:AAsecret/token", "hunter2hunter2", ""])
    text = ("GET https://api.telegram.org/bot123456%3AAAsecret%2Ftoken/getMe token "
            "123456:AAsecret/token pw=hunter2hunter2")
    assert redact(text) == f"GET https://api.telegram.org/bot{REDACTED}/getMe token {REDACTED} " \
                           f"pw={REDACTED}"
    assert redact("nothing secret") == "nothing secret"


def test_a_secret_inside_another_goes_whole() -> None:
    redact = Redactor(["abcdef", "abcdefghij"])
    assert redact("x abcdefghij y") == f"x {REDACTED} y"


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("style", ["text", "json"])
def test_no_secret_reaches_a_log_line_not_even_in_a_traceback(style: str) -> None:
    out = io.StringIO()
    secret = "-".join(("xoxb", "sekret", "1234"))  # not in this file's source lines either
    setup_logging("INFO", style="json" if style == "json" else "text", secrets=[secret],
                  stream=out)
    log = logging.getLogger("telegram.ext")
    try:
        raise ValueError(f"The token {secret} was rejected")
    except ValueError:
        logging.getLogger("bridge.x").exception("start failed with %s", secret)
    log.warning("url https://x/bot%s/getMe", secret)
    text = out.getvalue()
    assert secret not in text and text.count(REDACTED) == 3
    if style == "json":
        entries = [json.loads(line) for line in text.splitlines()]
        assert [(e["level"], e["logger"]) for e in entries] == [
            ("ERROR", "bridge.x"), ("WARNING", "telegram.ext")]
        assert entries[0]["message"] == f"start failed with {REDACTED}"
        assert "ValueError: The token [redacted] was rejected" in entries[0]["exception"]
        assert entries[0]["time"].endswith("+00:00")


def test_the_secrets_a_config_knows() -> None:
    data = {"slack": {"bot_token": "xoxb-literal-token", "support_channel": "C0SUPPORT1"},
            "storage": {"url": "postgresql://bridge:db-pass-123@db:5432/x"},
            "connectors": {"email": {"imap_password": "short", "smtp_host": "mail.acme.test"},
                           "messenger": {"pages": [{"access_token": "EAAB-page-token"}]}}}
    assert secret_values(data, {"from-an-env-var"}) == {
        "xoxb-literal-token", "db-pass-123", "EAAB-page-token", "from-an-env-var"}


async def test_json_logs_one_object_per_line_with_a_shutdown_line(
        tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin) -> None:
    port = free_port()
    config = write_config(tmp_path / "bridge.toml", port=port, db=tmp_path / "b.db",
                          slack=slack, telegram=telegram,
                          overrides={"logging": {"format": "json", "level": "INFO"}})
    proc = BridgeProcess(config, bridge_env(slack), tmp_path, port)
    proc.start()
    try:
        await proc.wait_healthy()
        assert await proc.signal(signal.SIGTERM, timeout=10) == 0
    finally:
        proc.cleanup()
    entries = [json.loads(line) for line in proc.stderr().splitlines()]
    messages = [e["message"] for e in entries]
    assert any(m.startswith("bridge ready on") for m in messages)
    assert messages[-1] == "bridge stopped"
    assert any(m.startswith("stopping:") for m in messages)
    assert TG_TOKEN not in proc.stderr()


@pytest.mark.logs_secrets
def test_the_suite_wide_secret_watch_catches_a_leak() -> None:
    """The autouse `no_secret_in_logs` fixture fails every test whose records carry a test
    secret; its handler, fed one such record, says so."""
    watch = SecretWatch()
    logger = logging.getLogger("bridge.leaky")
    logger.addHandler(watch)
    try:
        logger.warning("sending with %s", TG_TOKEN)
        logger.warning("nothing secret here")
    finally:
        logger.removeHandler(watch)
    assert watch.leaks == [f"bridge.leaky WARNING: sending with {TG_TOKEN}"]
