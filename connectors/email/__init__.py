"""Email: a support mailbox over IMAP (in) and SMTP (out)."""
