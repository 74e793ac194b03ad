"""The customer connector interface.

The base class owns the webhook handler (read body -> verify -> parse -> store -> 200), so every
connector answers bad requests the same way and never acknowledges before the commit.
Connectors never write messages to the store themselves; they get a `ConnectorContext`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from vocab.models import (
    Attachment,
    DeliveryState,
    InboundMessage,
    IngestResult,
    OutboundFile,
    OutboundMessage,
    SendReceipt,
)
from vocab.untrusted import HostRule

log = logging.getLogger(__name__)

Ingest = Callable[[Sequence[InboundMessage]], Awaitable[list[IngestResult]]]
Step = Callable[[], Awaitable[None]]
# run_once(name, start, stop): work that must run in one instance of the deployment only
# (a polling loop): `start` runs now or when this instance takes the job's lease.
RunOnce = Callable[[str, Step, Step], Awaitable[None]]


class Receipt(Protocol):
    """A delivery receipt, committed on return.  `templates`: a failure because a window
    closed, with the templates the agent may send instead (offered as buttons)."""

    async def __call__(self, connector: str, platform_id: str, state: DeliveryState,
                       error: str | None, templates: Sequence[str] = ()) -> None: ...


class WebhookRejected(Exception):
    """A request we will not act on; carries the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Unauthorized(WebhookRejected):
    def __init__(self, reason: str = "bad or missing signature") -> None:
        super().__init__(401, reason)


class TooLarge(WebhookRejected):
    def __init__(self) -> None:
        super().__init__(413, "body too large")


class Malformed(WebhookRejected):
    def __init__(self, reason: str) -> None:
        super().__init__(400, reason)


class SendError(Exception):
    """A delivery failed.  `retryable` decides between a later attempt and giving up.

    `retry_after` (seconds) is the platform's own instruction; `gate` names what it applies to
    (for example one Telegram chat or one Slack channel), so only that waits.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool,
        retry_after: float | None = None,
        gate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
        self.gate = gate

    def describe(self) -> str:
        return f"{self.message} (code {self.code})" if self.code else self.message


def too_large(size: int, limit: int) -> SendError:
    """A file over the size cap: no retry makes it smaller."""
    return SendError(f"the file is too large ({size / 1048576:.1f} MB, the limit is "
                     f"{limit / 1048576:.1f} MB)", code="too_large", retryable=False)


async def read_capped(resp: aiohttp.ClientResponse, max_bytes: int, what: str) -> bytes:
    """The body of a file download, refused past `max_bytes` (declared or streamed)."""
    if resp.status != 200:
        raise SendError(f"{what} answered HTTP {resp.status}", code=f"http_{resp.status}",
                        retryable=resp.status >= 500 or resp.status == 429)
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise too_large(resp.content_length, max_bytes)
    data = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        data.extend(chunk)
        if len(data) > max_bytes:
            raise too_large(len(data), max_bytes)
    return bytes(data)


REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


def foreign_url(url: str, what: str) -> SendError:
    """A URL outside the platform's hosts: not fetched (the thread says so)."""
    try:
        host = urlsplit(url).hostname or url[:80]
    except ValueError:
        host = url[:80]
    return SendError(f"{what}: {host} is not one of the platform's hosts, so it was not "
                     "fetched", code="foreign_url", retryable=False)


async def fetch_media(session: aiohttp.ClientSession, url: str, rule: HostRule, max_bytes: int,
                      what: str, *, credentials: Mapping[str, str] | None = None,
                      client_timeout: aiohttp.ClientTimeout | None = None) -> bytes:
    """Download a file under the platform's host rule: every URL (redirects included) must be
    allowed by `rule`; `credentials` (headers) go only with the first request and only to a
    host the rule gives credentials to; redirects are followed by hand, without them; the
    size is capped while streaming.  `SendError` for anything else."""
    headers = dict(credentials or {}) if rule.with_credentials(url) else {}
    try:
        for _ in range(MAX_REDIRECTS + 1):
            if not rule.allows(url):
                raise foreign_url(url, what)
            request = (session.get(url, headers=headers, allow_redirects=False)
                       if client_timeout is None else
                       session.get(url, headers=headers, allow_redirects=False,
                                   timeout=client_timeout))
            async with request as resp:
                if resp.status not in REDIRECTS:
                    return await read_capped(resp, max_bytes, what)
                url = urljoin(url, resp.headers.get("Location", ""))
                headers = {}  # credentials belong to the first host only
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise SendError(f"{what} failed: {exc!r}", code="network", retryable=True) from exc
    except ValueError as exc:  # a URL aiohttp cannot even parse
        raise foreign_url(url, what) from exc
    raise SendError(f"{what}: too many redirects", code="redirects", retryable=False)


class Unsupported(SendError):
    """The platform cannot do this (carry a file, edit a sent message...): no retry helps."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unsupported", retryable=False)


class OutsideWindow(SendError):
    """The platform allows no free-form message now (WhatsApp's or Messenger's 24-hour
    window has closed): nothing was sent.  `message` says why and what is still possible."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="window", retryable=False)


class OptedOut(SendError):
    """The customer asked not to be written to on this address (STOP, error 21610)."""

    def __init__(self, message: str, code: str = "opted_out") -> None:
        super().__init__(message, code=code, retryable=False)


class StateAPI(ABC):
    """The small slice of the store a connector may use for its own state (cursors, caches)."""

    @abstractmethod
    async def get(self, key: str) -> str | None: ...

    @abstractmethod
    async def set(self, key: str, value: str) -> None: ...

    async def prune(self, prefix: str, age: float) -> int:
        """Delete the keys starting with `prefix` last set more than `age` seconds ago; the
        number deleted.  (Not abstract, so a connector's own test doubles need not have it.)"""
        raise NotImplementedError


@dataclass(frozen=True)
class ConnectorContext:
    session: aiohttp.ClientSession  # the shared client session for our own HTTP calls
    ingest: Ingest  # store inbound messages durably; returns after the commit
    public_url: str  # externally visible base URL, no trailing slash
    max_body_bytes: int
    state: StateAPI
    run_once: RunOnce
    receipt: Receipt
    clock: Callable[[], float] = time.time  # the bridge's clock (tests move it)


class Connector(ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, ctx: ConnectorContext) -> None:
        self.ctx = ctx

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.name}"

    @property
    def webhook_url(self) -> str:
        return self.ctx.public_url + self.webhook_path

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post(self.webhook_path, self.handle_webhook)]

    async def read_verified(self, request: web.Request) -> bytes:
        """The body of an authentic request, or `WebhookRejected`: 413 past max_body_bytes
        (on the declared length before reading, then on what was read; aiohttp itself answers
        413 past client_max_size), then `verify`'s 400/401."""
        if request.content_length is not None and request.content_length > self.ctx.max_body_bytes:
            raise TooLarge()
        body = await request.read()
        if len(body) > self.ctx.max_body_bytes:
            raise TooLarge()
        await self.verify(request, body)
        return body

    def rejected(self, exc: WebhookRejected) -> web.StreamResponse:
        log.info("%s webhook rejected: %s %s", self.name, exc.status, exc.reason)
        return web.json_response({"error": exc.reason}, status=exc.status)

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        try:
            items = self.parse(await self.read_verified(request))
        except WebhookRejected as exc:
            return self.rejected(exc)
        if items:
            await self.ctx.ingest(items)  # raises -> 500, the platform retries
        return self.acknowledge()

    def acknowledge(self) -> web.StreamResponse:
        return web.json_response({"ok": True})

    @abstractmethod
    async def verify(self, request: web.Request, body: bytes) -> None:
        """Raise `Unauthorized` unless the request provably comes from the platform."""

    @abstractmethod
    def parse(self, body: bytes) -> list[InboundMessage]:
        """Turn an authentic body into messages (pure); raise `Malformed`; [] to ignore."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def send(self, msg: OutboundMessage) -> SendReceipt:
        """Deliver an agent's reply; raise `SendError`."""

    # -- optional abilities: the defaults say the platform cannot, and the agent is told ----
    fetches_media_by_url: ClassVar[bool] = False  # send_file needs `file.url` (Twilio, Meta)

    async def send_file(self, msg: OutboundMessage, file: OutboundFile) -> SendReceipt:
        """Send one file an agent attached; raise `Unsupported` if the channel cannot."""
        raise Unsupported(f"{self.name} cannot carry files")

    async def fetch_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        """Download a customer's file; raise `SendError` (non-retryable when over max_bytes)."""
        raise Unsupported(f"{self.name} files cannot be downloaded")

    async def edit(self, msg: OutboundMessage, platform_ids: Sequence[str]) -> None:
        """Change a sent reply to `msg`'s text; raise `Unsupported` if the platform cannot."""
        raise Unsupported(f"{self.name} cannot edit a sent message")

    async def delete(self, address: str, platform_ids: Sequence[str]) -> None:
        """Delete a sent reply; raise `Unsupported` if the platform cannot."""
        raise Unsupported(f"{self.name} cannot delete a sent message")

    # -- continuity: one customer across channels (issue 8) -----------------------------------
    def channels(self) -> Sequence[str]:
        """The channels this connector serves, as `InboundMessage.channel` names them (Twilio:
        "sms" and "whatsapp"); agents pick them with `!via` and `!handoff`."""
        return (self.name,)

    def handoff_invite(self, channel: str, code: str) -> str | None:
        """What to send a customer so they continue on `channel` (one of `channels()`) with
        the one-time `code`: a deep link, or where to send the code.  It must come back in
        `InboundMessage.handoff_code` or in the text.  None: this channel cannot take one."""
        return None

    def templates(self, address: str) -> Sequence[str]:
        """Names of the approved templates that may be sent to `address` outside a window."""
        return ()

    async def send_template(self, msg: OutboundMessage, name: str,
                            variables: Mapping[str, str]) -> SendReceipt:
        """Send an approved template; raise `Unsupported` if the connector has none."""
        raise Unsupported(f"{self.name} has no message templates")
