"""Telegram customer connector."""

from connectors.telegram.connector import TelegramConnector
from connectors.telegram.settings import TelegramSettings

__all__ = ["TelegramConnector", "TelegramSettings"]
