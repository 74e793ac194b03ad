"""Customer connectors: one package per platform.  `REGISTRY` maps config names to classes."""

from __future__ import annotations

from connectors.base import Connector
from connectors.telegram import TelegramConnector

REGISTRY: dict[str, type[Connector]] = {
    TelegramConnector.name: TelegramConnector,
}

__all__ = ["REGISTRY", "Connector"]
