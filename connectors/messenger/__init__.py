"""Facebook Messenger customer connector."""

from connectors.messenger.connector import MessengerConnector
from connectors.messenger.settings import MessengerSettings

__all__ = ["MessengerConnector", "MessengerSettings"]
