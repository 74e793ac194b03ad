"""What `bridge run` would refuse or get wrong, found before it starts: the example's
placeholders left in place, tokens of the wrong shape for the platform's real host, a plain-HTTP
address a platform would be told to call.

A token's shape is an error only where the bridge talks to the platform's real host; against a
stand-in or a sandbox (a custom `api_base_url`, as in the tests and the demo) it is a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

if TYPE_CHECKING:
    from bridge.settings import Settings

SLACK_API = "https://slack.com/api"
TELEGRAM_API = "https://api.telegram.org/bot"
_TELEGRAM_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{35}")
_RANDOM = ("a random string of your own: "
           "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
# config/bridge.example.toml and .env.example: values that only mean "put yours here"
PLACEHOLDERS = {
    "xoxb-your-bot-token": "the Bot User OAuth Token (OAuth & Permissions, xoxb-…)",
    "your-signing-secret": "the app's Signing Secret (Basic Information > App Credentials)",
    "123456789:AAyour-telegram-token": "the token @BotFather gave you",
    "a-long-random-string_without-spaces": _RANDOM,
    "a-long-random-string-of-16-or-more-characters": _RANDOM,
    "C0123456789": "your support channel's id (channel details, at the bottom: C…)",
    "https://support.example.com": "the https:// address of your proxy, or remove the key "
                                   "to keep the local default",
}


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{self.severity}: {where}: {self.message} (fix: {self.fix})"


def _leaves(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{key}[{i}]")
    else:
        yield key, node


def placeholder_problems(file: str, data: Any, *, skip: Set[str]) -> list[Problem]:
    """Each key still holding one of the example's placeholders (after `${…}` substitution,
    so a placeholder copied into .env counts too), outside the connectors in `skip`."""
    found = []
    for key, value in _leaves(data):
        parts = key.split(".")
        if len(parts) > 2 and parts[0] == "connectors" and parts[1] in skip:
            continue
        if isinstance(value, str) and value.rstrip("/") in PLACEHOLDERS:
            found.append(Problem(file, key, f"is still the example's placeholder {value!r}",
                                 f"put {PLACEHOLDERS[value.rstrip('/')]}"))
    return found


def _base(settings: BaseModel | None) -> str:
    return str(getattr(settings, "api_base_url", "")).rstrip("/")


def _shape(file: str, key: str, real_host: bool, message: str, fix: str) -> Problem:
    if real_host:
        return Problem(file, key, message, fix)
    return Problem(file, key, f"{message} (only a warning: api_base_url is not the "
                   "platform's own)", fix, "warning")


def first_day_problems(file: str, settings: Settings,
                       connectors: dict[str, BaseModel]) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of a config that validated."""
    out: list[Problem] = []
    slack = settings.slack
    slack_real = slack.api_base_url.rstrip("/") == SLACK_API
    if not slack.bot_token.strip():
        out.append(Problem(file, "slack.bot_token", "is empty",
                           "set bot_token = \"${SLACK_BOT_TOKEN}\" and give SLACK_BOT_TOKEN the "
                           "Bot User OAuth Token (xoxb-…)"))
    elif not slack.bot_token.startswith("xoxb-") and slack.bot_token not in PLACEHOLDERS:
        out.append(_shape(file, "slack.bot_token", slack_real,
                          "is not a bot token (they start with xoxb-)",
                          "use the Bot User OAuth Token from OAuth & Permissions, not a user "
                          "(xoxp-) or app-level (xapp-) token"))
    if slack.mode == "http" and not slack.signing_secret:
        out.append(Problem(
            file, "slack.signing_secret", "is required when slack.mode = \"http\"",
            "set signing_secret = \"${SLACK_SIGNING_SECRET}\" (Basic Information > App "
            "Credentials), or use mode = \"socket\" with an app_token"))
    if slack.mode == "socket":
        if not slack.app_token.strip():
            out.append(Problem(
                file, "slack.app_token",
                "is required when slack.mode = \"socket\" and must start with xapp-",
                "set app_token = \"${SLACK_APP_TOKEN}\" (Basic Information > App-Level "
                "Tokens, scope connections:write)"))
        elif not slack.app_token.startswith("xapp-"):
            out.append(_shape(file, "slack.app_token", slack_real,
                              "is not an app-level token (they start with xapp-)",
                              "create one under Basic Information > App-Level Tokens with the "
                              "scope connections:write"))

    telegram = connectors.get("telegram")
    telegram_real = telegram is not None and _base(telegram) == TELEGRAM_API
    token = str(getattr(telegram, "bot_token", ""))
    if telegram is not None and not _TELEGRAM_TOKEN.fullmatch(token):
        out.append(_shape(file, "connectors.telegram.bot_token", telegram_real,
                          "is not shaped like a bot token (digits, a colon, 35 characters)",
                          "copy the whole token @BotFather gave you"))

    # A platform told to call a plain-HTTP address refuses it (Telegram's setWebhook does).
    registers = (telegram_real and getattr(telegram, "mode", "") == "webhook"
                 and getattr(telegram, "register_webhook", False))
    if urlsplit(settings.server.public_url).scheme != "https":
        if registers:
            out.append(Problem(
                file, "server.public_url",
                "is not HTTPS, and Telegram would be told to send its webhooks there",
                "use the https:// address your proxy exposes, or set "
                "connectors.telegram.register_webhook = false (or mode = \"polling\")"))
        elif slack.mode == "http" or any(
                name in ("twilio", "messenger", "whatsapp")
                or getattr(table, "mode", "") == "webhook"
                for name, table in connectors.items()):  # something is told to call us
            out.append(Problem(
                file, "server.public_url", "is not HTTPS; platforms refuse plain-HTTP webhooks",
                "use the https:// address your proxy exposes (plain http is fine for tests)",
                "warning"))
    if (slack.support_channel not in PLACEHOLDERS
            and not re.fullmatch(r"[CG][A-Z0-9]{2,}", slack.support_channel)):
        out.append(Problem(
            file, "slack.support_channel", "does not look like a Slack channel id (C0123456789)",
            "use the channel id from the channel's details, not its #name", "warning"))
    return ([p for p in out if p.severity == "error"],
            [p for p in out if p.severity == "warning"])
