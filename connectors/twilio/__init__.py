"""Twilio customer connector: SMS and WhatsApp."""
