"""`GET /metrics` in Prometheus' text format (prometheus-client), one registry per bridge.

- `bridge_webhooks_total{connector,status}` and `bridge_webhook_seconds{connector}`: every
  request to `/webhooks/<connector>/…` and `/slack/events` (connector `slack`), by HTTP status;
- `bridge_store_commit_seconds`: from handing what arrived to the store until it is committed
  (the wait a webhook's 200 includes, group commit and all);
- `bridge_outbox_pending{direction}` and `bridge_outbox_oldest_seconds{direction}`: the rows
  this instance's worker holds, `slack` (posts into threads) or `customer` (sends), read at
  scrape time;
- `bridge_deliveries_total{connector,outcome}`: each finished attempt (`done`, `retry`,
  `failed`, `blocked`), `connector` being `slack` or the customer's platform;
- `bridge_rate_limited_total{platform}`: each 429 / retry-after a platform answered.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from storage.base import Outcome, Store
from vocab.models import ConversationId, OutboxItem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 pending: Callable[[], list[OutboxItem]] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.pending = pending or list
        self._connectors: OrderedDict[ConversationId, str] = OrderedDict()
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter("bridge_webhooks", "Webhook requests by HTTP status",
                                ["connector", "status"], registry=r)
        self.webhook_seconds = Histogram("bridge_webhook_seconds", "Webhook request duration",
                                         ["connector"], buckets=_BUCKETS, registry=r)
        self.commit_seconds = Histogram("bridge_store_commit_seconds",
                                        "From handing inbound messages to the store until "
                                        "committed", buckets=_BUCKETS, registry=r)
        self.outbox_pending = Gauge("bridge_outbox_pending", "Outbox rows held by this worker",
                                    ["direction"], registry=r)
        self.outbox_oldest = Gauge("bridge_outbox_oldest_seconds",
                                   "Age of the oldest outbox row held by this worker",
                                   ["direction"], registry=r)
        self.deliveries = Counter("bridge_deliveries", "Finished delivery attempts",
                                  ["connector", "outcome"], registry=r)
        self.rate_limited = Counter("bridge_rate_limited", "Rate limits a platform answered",
                                    ["platform"], registry=r)
        for direction in ("slack", "customer"):  # present from the first scrape
            self.outbox_pending.labels(direction).set(0)
            self.outbox_oldest.labels(direction).set(0)

    # -- the outbox worker's observer --------------------------------------------------------
    async def finished(self, item: OutboxItem, outcome: Outcome) -> None:
        self.deliveries.labels(await self._connector_of(item), outcome.value).inc()

    async def limited(self, item: OutboxItem, gate: str | None) -> None:
        platform = gate.split(":", 1)[0] if gate and ":" in gate else None
        self.rate_limited.labels(platform or await self._connector_of(item)).inc()

    async def _connector_of(self, item: OutboxItem) -> str:
        if not item.kind.customer_side:
            return "slack"
        cid = item.conversation_id
        name = self._connectors.get(cid)
        if name is None:  # once per conversation, then remembered (bounded)
            conv = await self.store.get_conversation(cid)
            name = conv.connector if conv is not None else "unknown"
            self._connectors[cid] = name
            if len(self._connectors) > 10_000:
                self._connectors.popitem(last=False)
        return name

    # -- the web side ------------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/webhooks/"):
            connector = path.split("/", 3)[2] or "unknown"
        elif path == "/slack/events":
            connector = "slack"
        else:
            return await handler(request)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.webhooks.labels(connector, str(status)).inc()
            self.webhook_seconds.labels(connector).observe(time.perf_counter() - started)

    def handler(self, token: str) -> Handler:
        """`GET /metrics`; with a token, only for `Authorization: Bearer <token>` (else 401)."""
        expected = f"Bearer {token}".encode()

        async def metrics(request: web.Request) -> web.StreamResponse:
            # aiohttp keeps bytes that are not UTF-8 as lone surrogates: back to those bytes
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if token and not hmac.compare_digest(given, expected):
                return web.json_response({"error": "a bearer token is required"}, status=401,
                                         headers={"WWW-Authenticate": "Bearer"})
            self._read_outbox()
            return web.Response(body=generate_latest(self.registry),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})
        return metrics

    def _read_outbox(self) -> None:
        now = self.clock()
        for direction in ("slack", "customer"):
            items = [i for i in self.pending()
                     if i.kind.customer_side == (direction == "customer")]
            self.outbox_pending.labels(direction).set(len(items))
            oldest = min((i.created_at for i in items), default=now)
            self.outbox_oldest.labels(direction).set(max(0.0, now - oldest))
