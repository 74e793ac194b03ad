"""A bridge config pointed at the stand-ins: used by `bridge demo`, the tests and `bench/`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TomlValue = str | int | float | bool | list["TomlValue"] | dict[str, "TomlValue"]


@dataclass(frozen=True)
class Secrets:
    """The four secrets, written as given: literals, or ``${ENV}`` references."""

    slack_bot_token: str
    slack_signing_secret: str
    telegram_bot_token: str
    telegram_webhook_secret: str

    @classmethod
    def from_env(cls) -> Secrets:
        """References to SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, TELEGRAM_BOT_TOKEN and
        TELEGRAM_WEBHOOK_SECRET, resolved by the bridge when it loads the file."""
        return cls("${SLACK_BOT_TOKEN}", "${SLACK_SIGNING_SECRET}", "${TELEGRAM_BOT_TOKEN}",
                   "${TELEGRAM_WEBHOOK_SECRET}")


def _value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for everything we write
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (arrays of them for [[...]] lists)
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def standin_config(
    *,
    port: int,
    db: Path,
    channel: str,
    slack_api_url: str,
    telegram_api_url: str,
    telegram_file_url: str,
    secrets: Secrets,
    overrides: Mapping[str, Mapping[str, TomlValue]] | None = None,
) -> str:
    """The TOML text; `overrides` adds or replaces keys per table (``{"outbox": {...}}``)."""
    tables: dict[str, dict[str, TomlValue]] = {
        "server": {"host": "127.0.0.1", "port": port,
                   "public_url": f"http://127.0.0.1:{port}"},
        "storage": {"url": f"sqlite:///{db}"},
        "slack": {"bot_token": secrets.slack_bot_token,
                  "signing_secret": secrets.slack_signing_secret,
                  "support_channel": channel, "api_base_url": slack_api_url},
        "outbox": {},
        "logging": {"level": "WARNING"},
        "connectors.telegram": {"enabled": True, "bot_token": secrets.telegram_bot_token,
                                "webhook_secret": secrets.telegram_webhook_secret,
                                "api_base_url": telegram_api_url,
                                "file_base_url": telegram_file_url},
    }
    for table, values in (overrides or {}).items():
        tables.setdefault(table, {}).update(values)
    lines: list[str] = []
    for table, values in tables.items():
        if values:
            lines.append(f"[{table}]")
            lines.extend(f"{key} = {_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"
