"""The composition root: the only place that names concrete classes and wires them together."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web

from bridge.console.events import SlackEvents
from bridge.console.slack import SlackConsole
from bridge.console.socket import SlackSocket
from bridge.delivery import Delivery
from bridge.lanes import AllLanes, LaneKeeper, LeasedLanes
from bridge.outbox import OutboxWorker
from bridge.registry import connector_class
from bridge.router import Router
from bridge.settings import LoadedConfig, StorageSettings
from bridge.singleton import Singletons
from connectors.base import Connector, ConnectorContext, StateAPI
from storage.base import Store, StoreError
from storage.postgres import PostgresStore, is_postgres_url
from storage.sqlite import SQLiteStore
from storage.sqlstore import SQLStore
from vocab.models import DeliveryState, InboundMessage, IngestResult

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_store(settings: StorageSettings) -> SQLStore:
    """Pick the store from the URL scheme: sqlite:///... or postgresql://..."""
    if is_postgres_url(settings.url):
        return PostgresStore(settings.url, schema=settings.schema_,
                             pool_size=settings.pool_size)
    if settings.schema_ is not None:
        raise StoreError("storage.schema is for PostgreSQL only; remove it for SQLite")
    return SQLiteStore(settings.url, synchronous=settings.sqlite_synchronous,
                       batch_max=settings.batch_max)


class ConnectorState(StateAPI):
    def __init__(self, store: Store, connector: str) -> None:
        self.store = store
        self.connector = connector

    async def get(self, key: str) -> str | None:
        return await self.store.get_state(self.connector, key)

    async def set(self, key: str, value: str) -> None:
        await self.store.set_state(self.connector, key, value, time.time())

    async def prune(self, prefix: str, age: float) -> int:
        return await self.store.prune_state(self.connector, prefix, time.time() - age)


class Bridge:
    """The running bridge: web server, store, Slack console, connectors and outbox worker."""

    def __init__(self, config: LoadedConfig, *, sock: socket.socket | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock  # conversations' and windows' time (tests move it)
        self.settings = config.settings
        self._sock = sock
        self.ready = False
        self.store: SQLStore | None = None
        self.router: Router | None = None
        self.worker: OutboxWorker | None = None
        self.connectors: dict[str, Connector] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.slack_socket: SlackSocket | None = None  # Socket Mode only
        self.port: int | None = None
        self.schema_version = 0
        # This process among the deployment's instances (leases on lanes and singletons).
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.singletons = Singletons(None, self.instance)

    # -- web ---------------------------------------------------------------------------------
    @web.middleware
    async def _readiness(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.ready and request.path != "/healthz":
            return web.json_response({"error": "starting or stopping"}, status=503)
        return await handler(request)

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        if not self.ready or self.store is None or not self.store.is_open:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({
            "status": "ok",
            "store": self.store.dialect.name,
            "schema_version": self.schema_version,
            "connectors": sorted(self.connectors),
            "outbox_pending": self.worker.pending_count() if self.worker else 0,
        })

    async def _media(self, request: web.Request) -> web.StreamResponse:
        """Files for platforms that fetch media by URL: unguessable token, expires."""
        assert self.store is not None
        token = request.match_info["token"]
        found = None
        if 20 <= len(token) <= 100:
            found = await self.store.get_media(token, time.time())
        if found is None:
            return web.json_response({"error": "unknown or expired link"}, status=404)
        name = found.filename.replace('"', "")
        return web.Response(body=found.data, content_type=found.mime_type, headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "Cache-Control": "private, max-age=300",
            "X-Content-Type-Options": "nosniff",
        })

    async def _receipt(self, connector: str, platform_id: str, state: DeliveryState,
                       error: str | None, templates: Sequence[str] = ()) -> None:
        assert self.router is not None
        await self.router.receipt(connector, platform_id, state, error, templates)

    async def _ingest(self, items: Sequence[InboundMessage]) -> list[IngestResult]:
        assert self.router is not None
        return await self.router.ingest(items)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(100, s.outbox.concurrency * 2)),
            timeout=aiohttp.ClientTimeout(total=s.slack.request_timeout * 2),
        )
        store = self.store = create_store(s.storage)
        # Several instances may share a PostgreSQL database: outbox lanes and singleton jobs
        # then go by leases in the database; on SQLite this process is the only one.
        shared = store if store.shared else None
        self.singletons = Singletons(shared, self.instance,
                                     lease_seconds=s.outbox.lease_seconds)
        console = SlackConsole(s.slack, self._session)
        for name, table in self.config.connectors.items():
            ctx = ConnectorContext(session=self._session, ingest=self._ingest,
                                   public_url=s.server.public_url,
                                   max_body_bytes=s.server.max_body_bytes,
                                   state=ConnectorState(store, name),
                                   run_once=self.singletons.run, receipt=self._receipt,
                                   clock=self.clock)
            self.connectors[name] = connector_class(name)(table, ctx)
        delivery = Delivery(store, console, self.connectors, s.media, s.server.public_url,
                            clock=self.clock, history_size=s.continuity.history_conversations)
        lanes: LaneKeeper = AllLanes(store) if shared is None else LeasedLanes(
            shared, self.instance, lease_seconds=s.outbox.lease_seconds)
        self.worker = OutboxWorker(store, delivery, s.outbox, lanes=lanes,
                                   poll_interval=1.0 if shared else 2.0)
        self.router = Router(store, self.worker, delivery, s.slack.support_channel,
                             clock=self.clock,
                             reopen_within=s.conversations.reopen_within_hours * 3600,
                             handoff_ttl=s.continuity.handoff_token_ttl_hours * 3600)
        events = SlackEvents(console, self.router, s.server.max_body_bytes)

        app = web.Application(client_max_size=s.server.max_body_bytes,
                              middlewares=[self._readiness])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/media/{token}", self._media)
        if s.slack.mode == "http":  # in Socket Mode, Slack's events come over a websocket
            app.add_routes(events.routes())
        for connector in self.connectors.values():
            app.add_routes(connector.routes())
        self._runner = web.AppRunner(app, access_log=None,
                                     shutdown_timeout=s.server.shutdown_timeout)
        await self._runner.setup()
        site: web.BaseSite
        if self._sock is not None:
            site = web.SockSite(self._runner, self._sock)
        else:
            site = web.TCPSite(self._runner, s.server.host, s.server.port)
        await site.start()  # /healthz answers 503 from here until everything is ready
        self.port = int(self._runner.addresses[0][1])

        await store.open()
        applied = await store.migrate()
        self.schema_version = await store.schema_version()
        if applied:
            log.info("applied migrations %s to %s", applied, store.where)
        await console.start()
        for connector in self.connectors.values():
            await connector.start()
        await self.worker.start()
        if s.slack.mode == "socket":  # last, as webhooks are only served once ready
            events.register_catch_all()  # after every other listener: Bolt runs the first match
            self.slack_socket = SlackSocket(events.bolt, s.slack.app_token, console.client,
                                            connect_timeout=s.slack.request_timeout * 2)
            await self.slack_socket.start()
        # Everything imported and built so far lives as long as the process: keep it out of
        # the cyclic GC's full collections (they took 55-85 ms under load, collecting nothing).
        gc.freeze()
        self.ready = True
        log.info("bridge ready on %s:%s (public %s)", s.server.host, self.port,
                 s.server.public_url)

    async def stop(self) -> None:
        """Stop taking requests, let in-flight work finish (bounded), close everything."""
        timeout = self.settings.server.shutdown_timeout
        if self.slack_socket is not None:  # first: envelopes being handled are stored, acked
            await self.slack_socket.stop(timeout=timeout / 2)
            self.slack_socket = None
        if self._runner is not None:
            await self._runner.cleanup()  # waits for requests already being handled
            self._runner = None
        self.ready = False
        if self.worker is not None:
            await self.worker.stop(timeout=max(1.0, timeout - 2))
        await self.singletons.stop()  # polling loops end here (and hand their leases over)
        for connector in self.connectors.values():
            try:
                await connector.stop()
            except Exception:
                log.exception("stopping connector %s failed", connector.name)
        if self.store is not None:
            await self.store.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


async def run_until_signalled(bridge: Bridge, stop: asyncio.Event) -> None:
    try:
        await bridge.start()
        await stop.wait()
    finally:
        await bridge.stop()  # also after a failed start: closes the store and the session
