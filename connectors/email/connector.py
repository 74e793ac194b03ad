"""Email customer connector: a support mailbox read over IMAP, replies sent over SMTP.

Inbound mail never comes through a webhook: the IMAP loop (`imap.py`, one per deployment via
`ctx.run_once`) hands each new mail to `_handle`, which drops noise (auto-replies, bulk,
bounces), turns a bounce of one of our replies into a failed-delivery receipt, finds the
conversation (`threads.py`) and ingests the mail; the loop moves its cursor after that commit.

Files: a mail with attachments (or whose text was trimmed, see `attach_original`) keeps its
raw bytes in the connector's state (`raw:<sha256>`, base64), so `fetch_file` serves its parts
and the original `.eml` later, whatever happens to the mail in the mailbox (moved, deleted,
a new UIDVALIDITY).  Attachment ids are `raw:<sha256>#<index>` or `raw:<sha256>#eml`.  They
are deleted after `keep_originals_days` (checked at most hourly, as mail arrives).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

from aiohttp import web
from pydantic import BaseModel

from connectors.base import (
    Connector,
    ConnectorContext,
    SendError,
    Unauthorized,
    Unsupported,
    too_large,
)
from connectors.email.imap import ImapPoller
from connectors.email.outbound import Reply, compose, deliver, message_id_of
from connectors.email.parse import NAME, ParsedMail, find_part, parse_mail, unreadable
from connectors.email.settings import EmailSettings
from connectors.email.threads import MAX_ID, Threads, handoff_code_in
from vocab.models import (
    Attachment,
    DeliveryState,
    InboundMessage,
    OutboundFile,
    OutboundMessage,
    SendReceipt,
)
from vocab.untrusted import clean_text

log = logging.getLogger(__name__)


OFF_LOOP_BYTES = 256 * 1024
PRUNE_EVERY = 3600.0  # seconds between deletions of old raw mails
T = TypeVar("T")
_PLUS_PART = re.compile(r"[A-Za-z0-9-]{1,64}")  # a code that fits a plus-address as it is


clean = clean_text  # the shared rule (vocab.untrusted)


def store_id(message_id: str) -> str:
    """A Message-ID as the store's dedupe key: a very long one (PostgreSQL refuses index
    entries over about 2.7 KB, and such a mail would block the mailbox) is hashed."""
    if len(message_id) <= MAX_ID:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()


async def off_loop(size: int, func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` on a worker thread when its input is large (parsing a 25 MB mail takes
    about a second: the event loop, with every webhook and Slack event, must not wait)."""
    if size < OFF_LOOP_BYTES:
        return func(*args)
    return await asyncio.to_thread(func, *args)


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{n / 1024:.0f} KB"


class EmailConnector(Connector):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[BaseModel]] = EmailSettings

    def __init__(self, settings: BaseModel, ctx: ConnectorContext) -> None:
        super().__init__(settings, ctx)
        assert isinstance(settings, EmailSettings)
        self.settings = settings
        self.threads = Threads(ctx.state, settings.reply_token_secret, settings.address)
        self.poller = ImapPoller(settings, ctx.state, self._handle)
        self._pruned_at: float | None = None  # time.monotonic() of the last pruning

    def routes(self) -> list[web.RouteDef]:
        return []  # mail arrives over IMAP, not by webhook

    async def verify(self, request: web.Request, body: bytes) -> None:
        raise Unauthorized("email has no webhook")

    def parse(self, body: bytes) -> list[InboundMessage]:
        return []  # see `_handle`: threading needs the connector's state

    async def start(self) -> None:
        await self.ctx.run_once("email-imap", self.poller.start, self.poller.stop)

    async def stop(self) -> None:
        await self.poller.stop()

    # -- continuity ---------------------------------------------------------------------------
    def handoff_invite(self, channel: str, code: str) -> str | None:
        """Where to write: the support address with the code as its plus part."""
        if channel != self.name or not _PLUS_PART.fullmatch(code):
            return None
        address = f"{self.settings.local_part}+{code}@{self.settings.domain}"
        return (f"To continue by email, write to {address} from the address you want us to "
                "use.")

    # -- inbound -----------------------------------------------------------------------------
    async def _handle(self, uid: int, raw: bytes, headers_only: bool,
                      as_unreadable: bool = False) -> bool:
        """One new mail: returns once it is committed (True), or dropped as noise (False).

        `as_unreadable`: the poller's last resort for a mail that failed again and again (one
        the store refuses): a placeholder with the original attached, so agents see it."""
        try:
            mail = unreadable(raw) if as_unreadable else await off_loop(
                len(raw), parse_mail, raw, self.settings.address)
        except Exception:
            log.exception("email: the parser failed on UID %d; keeping it as unreadable", uid)
            mail = unreadable(raw)
        mail = replace(
            mail, message_id=clean(mail.message_id), sender=clean(mail.sender),
            sender_name=clean(mail.sender_name), subject=clean(mail.subject),
            text=clean(mail.text), references=[clean(r) for r in mail.references],
            thread_refs=[clean(r) for r in mail.thread_refs],
            files=[replace(f, filename=clean(f.filename)) for f in mail.files],
            bounced=[clean(b) for b in mail.bounced], bounce_reason=clean(mail.bounce_reason))
        if mail.bounced:
            for message_id in mail.bounced:  # the core ignores ids that are not our replies
                await self.ctx.receipt(NAME, message_id, DeliveryState.FAILED,
                                       f"the mail bounced: {mail.bounce_reason}"[:500])
            return True
        if mail.noise:
            log.info("email: UID %d not taken up (%s)", uid, mail.noise)
            return False
        address, how = await self.threads.resolve(mail)
        await self.threads.remember(mail.message_id, address)
        thread = await self.threads.thread(address)
        if mail.message_id not in thread.references:  # not a re-read (crash, new UIDVALIDITY)
            await self.threads.save_thread(address, thread.followed_by(
                mail.message_id, mail.thread_refs or mail.references[:1], mail.subject))
        body = mail.text or "(no text)"
        if headers_only:
            body = (f"(This mail is over the {_size(self.settings.max_message_bytes)} import "
                    f"limit: read it in the mailbox.)")
        if how == "sender" and mail.subject:
            body = f"{mail.subject}\n\n{body}"
        item = InboundMessage(
            connector=NAME, platform_message_id=store_id(mail.message_id), address=address,
            sender_name=(f"{mail.sender_name} ({mail.sender})"
                         if mail.sender_name != mail.sender else mail.sender),
            text=body, attachments=await self._keep_files(raw, mail, headers_only,
                                                          force_original=as_unreadable),
            platform_time=mail.date, platform_ref=store_id(mail.message_id),
            # Only ids or a reply token name a closed conversation; a handoff code in the
            # plus part names a customer to link, not a conversation.
            reopen=how != "sender",
            handoff_code=handoff_code_in(mail.recipients, self.settings.address),
            inbox=mail.recipients[0] if mail.recipients else self.settings.address)
        await self.ctx.ingest([item])
        await self._prune()
        return True

    async def _prune(self) -> None:
        """Delete raw mails older than `keep_originals_days` (their files reached Slack long
        ago); at most once per `PRUNE_EVERY`, and never at the cost of the mail at hand."""
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            gone = await self.ctx.state.prune("raw:", self.settings.keep_originals_days * 86400)
        except Exception:
            log.exception("email: deleting old raw mails failed (tried again later)")
            return
        if gone:
            log.info("email: deleted %d raw mails older than %g days", gone,
                     self.settings.keep_originals_days)

    async def _keep_files(self, raw: bytes, mail: ParsedMail, headers_only: bool,
                          force_original: bool = False) -> tuple[Attachment, ...]:
        key = "raw:" + await off_loop(len(raw), lambda: hashlib.sha256(raw).hexdigest())
        files = [] if headers_only else [
            Attachment(kind="photo" if f.mime_type.startswith("image/") else "document",
                       platform_file_id=f"{key}#{f.index}", filename=f.filename,
                       mime_type=f.mime_type, size=f.size) for f in mail.files]
        mode = self.settings.attach_original
        if force_original or (not headers_only and (
                mode == "always" or (mode == "when_trimmed" and mail.trimmed))):
            files.append(Attachment(kind="document", platform_file_id=f"{key}#eml",
                                    filename="original.eml", mime_type="message/rfc822",
                                    size=len(raw)))
        if files and await self.ctx.state.get(key) is None:
            await self.ctx.state.set(key, await off_loop(
                len(raw), lambda: base64.b64encode(raw).decode("ascii")))
        return tuple(files)

    async def fetch_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        key, _, which = (attachment.platform_file_id or "").rpartition("#")
        stored = await self.ctx.state.get(key) if key.startswith("raw:") else None
        if stored is None:
            raise SendError("the mail this file came with is not kept", code="no_file",
                            retryable=False)
        raw = await off_loop(len(stored), base64.b64decode, stored)
        data = raw if which == "eml" else await off_loop(
            len(raw), find_part, raw, int(which) if which.isdigit() else -1)
        if data is None:
            raise SendError("the file is not in the mail", code="no_file", retryable=False)
        if len(data) > max_bytes:
            raise too_large(len(data), max_bytes)
        return data

    # -- outbound ----------------------------------------------------------------------------
    async def _send(self, msg: OutboundMessage, text: str,
                    files: tuple[OutboundFile, ...] = ()) -> SendReceipt:
        thread = await self.threads.thread(msg.address)
        token = await self.threads.token_for(msg.address)
        try:
            mail = compose(self.settings, Reply(to=msg.address, author=msg.author_name,
                                                text=text, token=token, thread=thread,
                                                files=files, automatic=msg.automatic),
                           time.time())
        except (ValueError, TypeError) as exc:  # an address the email package refuses
            raise SendError(f"cannot write a mail to {msg.address!r}: {exc}",
                            code="bad_address", retryable=False) from exc
        message_id = message_id_of(mail)
        await self.threads.remember(message_id, msg.address)  # before: replies may be quick
        await deliver(self.settings, mail)
        # Read again: a customer's mail may have joined the thread while the SMTP server took
        # its time, and its id must stay in the chain the next reply names.
        thread = await self.threads.thread(msg.address)
        await self.threads.save_thread(msg.address, thread.followed_by(message_id, []))
        return SendReceipt(platform_message_ids=(message_id,))

    async def send(self, msg: OutboundMessage) -> SendReceipt:
        return await self._send(msg, msg.text)

    async def send_file(self, msg: OutboundMessage, file: OutboundFile) -> SendReceipt:
        if len(file.data) > self.settings.max_message_bytes:
            raise Unsupported(f"mail servers refuse attachments over "
                              f"{_size(self.settings.max_message_bytes)}")
        return await self._send(msg, msg.text or f"{file.filename} is attached.", (file,))
