"""Local stand-in servers for Slack, Telegram, Twilio and Meta (Messenger) that the official
SDKs (or, for Meta, plain HTTP) can talk to unchanged.

Used by tests, ``bridge demo`` and benchmarks; run one standalone with
``python -m bridge.standins slack|telegram|messenger --port N``.
"""

from __future__ import annotations

from bridge.standins.base import RecordedCall, StandinBase
from bridge.standins.messenger import MessengerStandin, MessengerWebhookSender
from bridge.standins.signing import slack_signature_headers, telegram_secret_headers
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.telegram import TelegramAPIError, TelegramStandin
from bridge.standins.twilio import TwilioStandin, TwilioWebhookSender

__all__ = [
    "MessengerStandin",
    "MessengerWebhookSender",
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
