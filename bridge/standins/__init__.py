"""Local stand-in servers for Slack and Telegram that the official SDKs can talk to unchanged.

Used by tests, ``bridge demo`` and benchmarks; run one standalone with
``python -m bridge.standins slack|telegram --port N``.
"""

from __future__ import annotations

from bridge.standins.base import RecordedCall, StandinBase
from bridge.standins.signing import slack_signature_headers, telegram_secret_headers
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.telegram import TelegramAPIError, TelegramStandin
from bridge.standins.twilio import TwilioStandin, TwilioWebhookSender

__all__ = [
    "RecordedCall",
    "SlackEventSender",
    "SlackStandin",
    "StandinBase",
    "TelegramAPIError",
    "TelegramStandin",
    "TwilioStandin",
    "TwilioWebhookSender",
    "slack_signature_headers",
    "telegram_secret_headers",
]
