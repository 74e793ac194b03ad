"""Agents' replies as mail: headers that thread, and the SMTP send (aiosmtplib)."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from connectors.base import SendError
from connectors.email.settings import EmailSettings
from connectors.email.threads import Thread
from vocab.models import OutboundFile

_RE = re.compile(r"^\s*(re|aw|sv|antw|vs|ref)\s*(\[\d+\])?\s*:\s*", re.IGNORECASE)


def one_line(text: str) -> str:
    """A name or subject as a header value: line breaks and other controls become spaces
    (the email package refuses CR and LF in headers; nothing may start a new header)."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())


def reply_subject(subject: str) -> str:
    """`Re: <subject>`, without piling up prefixes."""
    subject = one_line(subject)
    if not subject:
        return "Re: your message"
    return subject if _RE.match(subject) else f"Re: {subject}"


@dataclass(frozen=True)
class Reply:
    to: str
    author: str
    text: str
    token: str
    thread: Thread
    files: tuple[OutboundFile, ...] = ()
    automatic: bool = False  # a bot's own message: marked Auto-Submitted (RFC 3834)


def compose(settings: EmailSettings, reply: Reply, now: float) -> EmailMessage:
    msg = EmailMessage()
    brand, author = one_line(settings.display_name), one_line(reply.author)
    sender = f"{author} ({brand})" if brand and author else (author or brand)
    msg["From"] = Address(display_name=sender, addr_spec=settings.address)
    msg["To"] = reply.to
    msg["Reply-To"] = Address(display_name=brand or sender,
                              addr_spec=f"{settings.local_part}+{reply.token}@{settings.domain}")
    msg["Subject"] = reply_subject(reply.thread.subject)
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = make_msgid(domain=settings.domain)
    if reply.thread.parent:
        msg["In-Reply-To"] = f"<{reply.thread.parent}>"
        msg["References"] = " ".join(f"<{r}>" for r in reply.thread.references)
    # Exchange: no out-of-office replies to us, please (a request, not a mark of automation).
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    if reply.automatic:
        msg["Auto-Submitted"] = "auto-replied"
    signature = "\n".join(x for x in (author, brand) if x)
    body = reply.text.rstrip() + (f"\n\n-- \n{signature}\n" if signature else "\n")
    msg.set_content(body, cte="quoted-printable")
    for file in reply.files:
        maintype, _, subtype = file.mime_type.partition("/")
        msg.add_attachment(file.data, maintype=maintype or "application",
                           subtype=subtype or "octet-stream", filename=file.filename)
    return msg


def message_id_of(msg: EmailMessage) -> str:
    return str(msg["Message-ID"]).strip().strip("<>")


async def deliver(settings: EmailSettings, msg: EmailMessage) -> None:
    """Hand the mail to the SMTP server; raise `SendError` (4xx and network: retryable)."""
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    try:
        await aiosmtplib.send(
            msg, hostname=settings.smtp_host, port=settings.smtp_port,
            username=settings.smtp_user or None, password=settings.smtp_password or None,
            use_tls=settings.smtp_security == "ssl",
            start_tls=settings.smtp_security == "starttls",
            tls_context=context if settings.smtp_security != "none" else None,
            timeout=settings.smtp_timeout, local_hostname=settings.domain)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        retryable = all(400 <= c < 500 for c in codes)
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        raise SendError(f"the mail server refused the recipient ({detail})",
                        code=str(codes[0]) if codes else "smtp", retryable=retryable) from exc
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise SendError(f"the mail server refused smtp_user/smtp_password: {exc.message}",
                        code=str(exc.code), retryable=False) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise SendError(f"the mail server answered {exc.code} {exc.message}",
                        code=str(exc.code), retryable=not 500 <= exc.code < 600) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise SendError(f"the mail server is unreachable: {exc!r}", code="network",
                        retryable=True) from exc
