"""The README's "Connect a real workspace in 10 minutes", followed on the shipped files: the
example config and .env.example, edited as the steps say, pass `bridge check-config`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.cli import main

ROOT = Path(__file__).resolve().parents[1]
# What the admin pastes in: realistic shapes, not the example's placeholders.
ENV = {"SLACK_BOT_TOKEN": "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
       "SLACK_APP_TOKEN": "xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef0123456789",
       "TELEGRAM_BOT_TOKEN": "7012345678:AAH3kq9V0dZ-mP1sW2xY3zA4bC5dE6fG7hI"}


def edit(text: str, table: str, key: str, value: str | None) -> str:
    """Set (or delete, with None) `key` in `[table]` of a TOML text, as an admin would."""
    start = text.index(f"[{table}]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end
    section = text[start:end]
    line = re.compile(rf"^{re.escape(key)} = .*\n(?:^ {{20,}}#.*\n)*", re.M)
    if value is None:
        section = line.sub("", section, count=1)
    else:
        section = line.sub(f"{key} = {value}\n", section, count=1)
    return text[:start] + section + text[end:]


def test_the_ten_minute_setup_passes_check_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in (*ENV, "SLACK_SIGNING_SECRET", "TELEGRAM_WEBHOOK_SECRET", "BRIDGE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    config = (ROOT / "config" / "bridge.example.toml").read_text(encoding="utf-8")
    config = edit(config, "server", "public_url", None)
    config = edit(config, "slack", "support_channel", '"C07SUPPORT1"')
    config = edit(config, "slack", "mode", '"socket"')
    config = edit(config, "slack", "app_token", '"${SLACK_APP_TOKEN}"')
    config = edit(config, "slack", "signing_secret", None)
    config = edit(config, "connectors.telegram", "mode", '"polling"')
    config = edit(config, "connectors.telegram", "webhook_secret", None)
    (tmp_path / "bridge.toml").write_text(config, encoding="utf-8")
    dotenv = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name, value in ENV.items():
        dotenv, n = re.subn(rf"^{name}=.*$", f"{name}={value}", dotenv, flags=re.M)
        if n == 0:
            dotenv += f"{name}={value}\n"
    (tmp_path / ".env").write_text(dotenv, encoding="utf-8")

    code = main(["check-config"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "bridge.toml: OK (5 warning(s)); connectors enabled: telegram"
    # one line for each connector the example leaves disabled, nothing about public_url:
    # with Socket Mode and polling nothing calls the bridge
    assert [line.split(": ")[2] for line in err.splitlines()] == [
        "connectors.email", "connectors.messenger", "connectors.twilio", "connectors.webchat",
        "connectors.whatsapp"]
