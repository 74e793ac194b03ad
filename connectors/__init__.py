"""Customer connectors: one package per platform.  `REGISTRY` maps config names to classes."""

from __future__ import annotations

from pydantic import BaseModel

from connectors.base import Connector
from connectors.email import EmailConnector
from connectors.messenger import MessengerConnector
from connectors.telegram import TelegramConnector
from connectors.twilio import TwilioConnector

REGISTRY: dict[str, type[Connector]] = {
    MessengerConnector.name: MessengerConnector,
    TelegramConnector.name: TelegramConnector,
    EmailConnector.name: EmailConnector,
    TwilioConnector.name: TwilioConnector,
}


def settings_registry() -> dict[str, type[BaseModel]]:
    """Each connector's settings model, by config name: what `load_settings` validates with."""
    return {name: cls.Settings for name, cls in REGISTRY.items()}


__all__ = ["REGISTRY", "Connector", "settings_registry"]
