"""The connector registry: config names to connector classes, and to their settings models.

The composition root is the only place that names the concrete connectors.  Each is imported
only when it is enabled (`connector_class`), so a bridge that runs Telegram alone never loads
twilio, aioimaplib or aiosmtplib; validating a config imports only the light settings modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from pydantic import BaseModel

from bridge.settings import StorageSettings
from connectors.base import Connector
from storage.base import StoreError
from storage.postgres import PostgresStore, is_postgres_url
from storage.sqlite import SQLiteStore
from storage.sqlstore import SQLStore


@dataclass(frozen=True, slots=True)
class Entry:
    package: str  # connectors.<platform>
    connector: str  # the class in <package>.connector
    settings: str  # the model in <package>.settings


REGISTRY: dict[str, Entry] = {
    "messenger": Entry("connectors.messenger", "MessengerConnector", "MessengerSettings"),
    "telegram": Entry("connectors.telegram", "TelegramConnector", "TelegramSettings"),
    "email": Entry("connectors.email", "EmailConnector", "EmailSettings"),
    "twilio": Entry("connectors.twilio", "TwilioConnector", "TwilioSettings"),
    "whatsapp": Entry("connectors.whatsapp", "WhatsAppConnector", "WhatsAppSettings"),
    "webchat": Entry("connectors.webchat", "WebchatConnector", "WebchatSettings"),
}


def connector_class(name: str) -> type[Connector]:
    """The connector class for a config name (KeyError for an unknown one); imported now."""
    entry = REGISTRY[name]
    cls = getattr(import_module(f"{entry.package}.connector"), entry.connector)
    if not (isinstance(cls, type) and issubclass(cls, Connector)) or cls.name != name:
        raise TypeError(f"{entry.package}.connector.{entry.connector} is not the {name} connector")
    return cls


def settings_registry() -> dict[str, type[BaseModel]]:
    """Each connector's settings model, by config name: what `load_settings` validates with."""
    out: dict[str, type[BaseModel]] = {}
    for name, entry in REGISTRY.items():
        model = getattr(import_module(f"{entry.package}.settings"), entry.settings)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{entry.package}.settings.{entry.settings} is not a settings model")
        out[name] = model
    return out


def create_store(settings: StorageSettings) -> SQLStore:
    """Pick the store from the URL scheme: sqlite:///... or postgresql://..."""
    if is_postgres_url(settings.url):
        return PostgresStore(settings.url, schema=settings.schema_,
                             pool_size=settings.pool_size)
    if settings.schema_ is not None:
        raise StoreError("storage.schema is for PostgreSQL only; remove it for SQLite")
    return SQLiteStore(settings.url, synchronous=settings.sqlite_synchronous,
                       batch_max=settings.batch_max)
