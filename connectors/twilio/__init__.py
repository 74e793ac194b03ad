"""Twilio customer connector: SMS and WhatsApp."""

from connectors.twilio.connector import TwilioConnector
from connectors.twilio.settings import TwilioSettings

__all__ = ["TwilioConnector", "TwilioSettings"]
