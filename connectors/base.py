"""The customer connector interface.

The base class owns the webhook handler (read body -> verify -> parse -> store -> 200), so every
connector answers bad requests the same way and never acknowledges before the commit.
Connectors never write messages to the store themselves; they get a `ConnectorContext`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar
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


class UnsupportedMedia(WebhookRejected):
    """A Content-Encoding (platforms do not compress webhooks) or content type we do not
    read: 415 without reading the body."""

    def __init__(self, reason: str) -> None:
        super().__init__(415, reason)


class ClientGone(WebhookRejected):
    """The body never arrived: too slow (408) or the client went away mid-body (400)."""


IDENTITY = frozenset({"", "identity"})
T = TypeVar("T")


class RejectionLog:
    """Rejected requests in the log: one short line per client address at most every
    `every` seconds (with how many were not written), so a flood costs no disk."""

    def __init__(self, every: float = 10.0, size: int = 4096) -> None:
        self.every = every
        self.size = size
        self._last: dict[str, tuple[float, int]] = {}

    def note(self, where: str, status: int, reason: str, peer: str) -> None:
        now = time.monotonic()
        last, skipped = self._last.get(peer, (-self.every, 0))
        if now - last < self.every:
            self._last[peer] = (last, skipped + 1)
            return
        if len(self._last) >= self.size:
            self._last.clear()
        self._last[peer] = (now, 0)
        more = f" (+{skipped} more)" if skipped else ""
        log.info("%s rejected %s from %s: %s%s", where, status, peer, reason[:80], more)


REJECTIONS = RejectionLog()
_BUGS: set[tuple[str, str]] = set()


def log_bug_once(where: str, exc: BaseException) -> None:
    """A bug of ours met by some input: the traceback once per place and kind, then a line."""
    key = (where, type(exc).__name__)
    if key in _BUGS:
        log.warning("%s failed again: %s", where, type(exc).__name__)
        return
    _BUGS.add(key)
    log.error("%s failed on its input (a bug; answered 400)", where, exc_info=exc)


def rejection(where: str, exc: WebhookRejected, request: web.Request) -> web.StreamResponse:
    """The answer to a rejected request, logged in one short rate-limited line."""
    REJECTIONS.note(where, exc.status, exc.reason, request.remote or "?")
    return web.json_response({"error": exc.reason}, status=exc.status)


async def read_body(request: web.Request, max_bytes: int, seconds: float,
                    content_types: Sequence[str] = ()) -> bytes:
    """A request body read safely, or `WebhookRejected`: 415 for a Content-Encoding other than
    identity or a content type not in `content_types` (none said is accepted), 413 past
    `max_bytes` (declared, then read), 408 when it takes longer than `seconds`, 400 when the
    client goes away or the body is broken.  Checked before anything is read where possible."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in IDENTITY:
        raise UnsupportedMedia("Content-Encoding is not supported; send the body uncompressed")
    if content_types and "Content-Type" in request.headers and \
            request.content_type not in content_types:
        raise UnsupportedMedia(f"Content-Type must be {' or '.join(content_types)}")
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge()
    try:
        async with asyncio.timeout(seconds):
            body = await request.read()
    except TimeoutError as exc:
        raise ClientGone(408, "the body was not received in time") from exc
    except web.HTTPRequestEntityTooLarge as exc:
        raise TooLarge() from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, ConnectionError,
            ValueError) as exc:  # RequestPayloadError is a ClientPayloadError
        raise ClientGone(400, "the body could not be read") from exc
    if len(body) > max_bytes:
        raise TooLarge()
    return body


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


def always_open(team: str) -> tuple[bool, float | None]:
    return True, None


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
    body_timeout: float = 10.0  # seconds a webhook body may take to arrive
    # A team's business hours now, by the bridge's clock: (open, the next opening or None).
    hours: Callable[[str], tuple[bool, float | None]] = always_open


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

    content_types: ClassVar[tuple[str, ...]] = ()  # a Content-Type outside these gets 415

    def precheck(self, request: web.Request) -> None:
        """What can be checked before the body is read (a secret header, the presence of a
        signature): raise `Unauthorized`, so a stranger's body is never read."""
        return None

    async def read_verified(self, request: web.Request) -> bytes:
        """The body of an authentic request, or `WebhookRejected`: `precheck`'s 401, 415 for
        a Content-Encoding or content type we do not read, 413 past max_body_bytes, 408 or
        400 for a body that does not arrive, then `verify`'s 400/401."""
        self.precheck(request)
        body = await read_body(request, self.ctx.max_body_bytes, self.ctx.body_timeout,
                               self.content_types)
        try:
            await self.verify(request, body)
        except WebhookRejected:
            raise
        except Exception as exc:  # a bug of ours in a check: the request is not authentic
            log_bug_once(f"{self.name} verify", exc)
            raise Unauthorized() from exc
        return body

    def rejected(self, exc: WebhookRejected, request: web.Request) -> web.StreamResponse:
        return rejection(self.name, exc, request)

    def parsed(self, parse: Callable[[], T]) -> T:
        """`parse()` made total: anything but `WebhookRejected` is a bug of ours, logged once
        per kind with its traceback, and answered 400 (a 5xx would make the platform resend
        the same body forever)."""
        try:
            return parse()
        except WebhookRejected:
            raise
        except Exception as exc:
            log_bug_once(f"{self.name} parse", exc)
            raise Malformed("the body could not be understood") from exc

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self.read_verified(request)
            items = self.parsed(lambda: self.parse(body))
        except WebhookRejected as exc:
            return self.rejected(exc, request)
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

    async def shutdown(self) -> None:
        """Before the web server stops: close long-lived connections (the web chat's
        WebSockets), so they do not hold the shutdown for its whole timeout."""
        return None

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

    # -- choices: native buttons or a list (surveys) -------------------------------------------
    # True: `send` shows `msg.choices` natively and returns a pick as `InboundMessage.choice`;
    # False: the core appends `choices.fallback` (how to answer in words) to the text.
    renders_choices: ClassVar[bool] = False

    async def acknowledge_choice(self, item: InboundMessage, text: str, accepted: bool) -> None:
        """Answer a pick where the platform waits for it (Telegram's answerCallbackQuery),
        showing `text`; `accepted`: also take the buttons off the message that had them."""
        return None
