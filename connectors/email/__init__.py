"""Email: a support mailbox over IMAP (in) and SMTP (out)."""

from connectors.email.connector import EmailConnector

__all__ = ["EmailConnector"]
