"""What Meta's two connectors (Messenger, WhatsApp Cloud) share: the webhook signature and
subscription handshake, and the Graph API client."""
