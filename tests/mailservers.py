"""The email tests' SMTP server (aiosmtpd on loopback), their config and their mails."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.dovecot import PASSWORD, USER, Dovecot
from tests.helpers_proc import free_port
from tests.waiting import until


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class SmtpReceiver:
    """An SMTP server on a free loopback port that keeps what it receives."""

    received: list[Received] = field(default_factory=list)
    user: str = "support@example.com"
    password: str = "smtp-test-password"
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.received.append(Received(str(envelope.mail_from),
                                      [str(r) for r in envelope.rcpt_tos], raw))
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                     mechanism: str, auth_data: object) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user.encode()
              and auth_data.password == self.password.encode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

    def start(self, security: str = "none", tls: tuple[Path, Path] | None = None) -> Controller:
        """Serve on a free loopback port, AUTH required: `security` "none" (AUTH in plain
        text: a test), "starttls" or "ssl" (implicit TLS) with `tls` = (cert, key)."""
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
        kwargs: dict[str, Any] = {}
        if security == "starttls":
            kwargs = {"tls_context": context, "require_starttls": True}
        elif security == "ssl":
            kwargs = {"ssl_context": context}
        controller = Controller(self, hostname="127.0.0.1", port=free_port(),
                                authenticator=self.authenticate, auth_required=True,
                                auth_require_tls=security == "starttls", **kwargs)
        controller.start()
        self.port = int(controller.port)
        return controller

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` mails, once received; fail after `timeout` saying how many came."""
        await until(lambda: len(self.received) >= count,
                    lambda: f"{len(self.received)} mail(s) received, not {count}", timeout)
        return self.received[:count]


SECRET = "test-reply-token-secret-0123456789"
EMAIL_ENV = {"EMAIL_IMAP_PASSWORD": PASSWORD, "EMAIL_SMTP_PASSWORD": "smtp-test-password",
             "EMAIL_REPLY_TOKEN_SECRET": SECRET}


def email_config(dovecot: Dovecot, smtp: SmtpReceiver, **extra: str | int | float | bool,
                 ) -> dict[str, str | int | float | bool]:
    """A [connectors.email] table for these servers, secrets from `EMAIL_ENV`."""
    return {"enabled": True, "address": USER, "display_name": "Example Support",
            "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_security": "none",
            "imap_user": dovecot.user, "imap_password": "${EMAIL_IMAP_PASSWORD}",
            "mailbox": "INBOX",
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
            "smtp_user": USER, "smtp_password": "${EMAIL_SMTP_PASSWORD}",
            "reply_token_secret": "${EMAIL_REPLY_TOKEN_SECRET}", "poll_interval": 1,
            "import_existing": True, **extra}


def customer_mail(sender: str, subject: str, text: str, *, message_id: str,
                  to: str = USER, html: str | None = None,
                  files: tuple[tuple[str, str, bytes], ...] = (),
                  **headers: str) -> bytes:
    """A mail as a customer's client sends it; `headers` as In_Reply_To="<...>" etc."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = f"<{message_id}>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    if html is not None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(text)
    for filename, mime, data in files:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
