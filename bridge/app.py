"""The composition root: the only place that names concrete classes and wires them together."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web

from bridge.auto import AutoAnswers
from bridge.canned import CannedLibrary, load_dir, next_open_from
from bridge.connections import ConnectionGuard, GuardedSite, QuietServerLog, client_address
from bridge.console.events import SlackEvents
from bridge.console.export import ExportShortcut
from bridge.console.slack import SlackConsole
from bridge.console.socket import SlackSocket
from bridge.console.stats import DigestJob
from bridge.dashboard import Dashboard
from bridge.delivery import Delivery
from bridge.faq import faq_path, load_faq
from bridge.hours import Calendar
from bridge.kpi_service import Kpis
from bridge.lanes import AllLanes, LaneKeeper, LeasedLanes
from bridge.language import LanguageGuess
from bridge.metrics import Metrics
from bridge.outbox import OutboxWorker
from bridge.privacy import RetentionJob
from bridge.registry import connector_class, create_store
from bridge.report import CalendarHours
from bridge.router import Router
from bridge.settings import LoadedConfig, canned_dir
from bridge.singleton import Singletons
from bridge.snoozes import SnoozeWaker
from bridge.survey_answers import Answers
from bridge.survey_page import SurveyPage
from bridge.surveys import Surveys
from bridge.targets import TargetKeeper, team_targets
from bridge.teams import DEFAULT_TEAM, Routing
from connectors.base import Connector, ConnectorContext, StateAPI
from storage.base import Store
from storage.sqlstore import SQLStore
from vocab.models import InboundMessage, IngestResult

log = logging.getLogger(__name__)
LINGER = 2.0  # seconds an unread request body is drained after the answer, at most
MEDIA_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")  # what `secrets.token_urlsafe` makes
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Step = Callable[[web.Application], AsyncIterator[None]]


class Job(Protocol):
    """A background job the bridge starts and stops with itself."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StartupFailure(Exception):
    """A start-up step failed: which one, and why (the cause is the original exception)."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"start-up step {step!r} failed: {type(cause).__name__}")
        self.step = step
        self.cause = cause


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


# -- the web application's state and handlers --------------------------------------------------
@dataclass
class Readiness:
    """Whether webhooks are served (every start-up step done, none of the shutdown begun)."""

    ready: bool = False
    schema_version: int = 0


READINESS = web.AppKey("readiness", Readiness)
STORE = web.AppKey("store", SQLStore)
WORKER = web.AppKey("worker", OutboxWorker)
CONNECTORS: web.AppKey[Mapping[str, Connector]] = web.AppKey("connectors")


@web.middleware
async def readiness(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.app[READINESS].ready and request.path != "/healthz":
        return web.json_response({"error": "starting or stopping"}, status=503)
    return await handler(request)


async def healthz(request: web.Request) -> web.StreamResponse:
    state, store = request.app[READINESS], request.app[STORE]
    connectors = request.app[CONNECTORS]
    if not state.ready or not store.is_open:
        return web.json_response({"status": "starting"}, status=503)
    return web.json_response({
        "status": "ok",
        "store": store.dialect.name,
        "schema_version": state.schema_version,
        "connectors": sorted(connectors),
        "outbox_pending": request.app[WORKER].pending_count(),
    })


async def media(request: web.Request) -> web.StreamResponse:
    """Files for platforms that fetch media by URL: unguessable token, expires."""
    token = request.match_info["token"]
    found = None
    if MEDIA_TOKEN.fullmatch(token):
        found = await request.app[STORE].get_media(token, time.time())
    if found is None:
        return web.json_response({"error": "unknown or expired link"}, status=404)
    name = found.filename.replace('"', "")
    return web.Response(body=found.data, content_type=found.mime_type, headers={
        "Content-Disposition": f'inline; filename="{name}"',
        "Cache-Control": "private, max-age=300",
        "X-Content-Type-Options": "nosniff",
    })


# -- the bridge --------------------------------------------------------------------------------
class Bridge:
    """The bridge: web server, store, Slack console, connectors and outbox worker.

    Built from the settings without I/O (`__init__`); `start` runs the start-up steps in order
    and `stop` runs their teardowns in reverse, each step an async generator (open, yield,
    close) in the `cleanup_ctx` of the `lifecycle` application, so shutdown mirrors start-up
    by construction and a failing teardown does not skip the others (the errors are raised
    together at the end).  The steps:

    1. session: the shared aiohttp client session (closed last);
    2. listen: bind the web server, which answers 503 until `serve` (webhooks then wait for us
       instead of failing to connect);
    3. store: open, migrate;
    4. console: Slack's auth.test (who the bot is);
    5. connectors: start each (webhooks set, polling jobs run once per deployment); at stop,
       the run-once jobs end before the connectors do;
    6. worker: the outbox, with its pending rows (drained, bounded, at stop);
    7. socket (Socket Mode only): the websocket to Slack (envelopes being handled finish first);
    7a. snoozes and response-time targets: their loops (each only does what is due);
    8. serve: ready; at stop, stop taking requests and let those being handled finish.

    The web server cannot run the steps itself: aiohttp's `AppRunner.setup` runs an
    application's start-up before any site listens, and the bridge must answer 503 while it
    starts.  So `web_app` (routes, state under `web.AppKey`s) is served by step 2, and the
    steps belong to `lifecycle`.
    """

    def __init__(self, config: LoadedConfig, *, sock: socket.socket | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        s = self.settings = config.settings
        self.config = config
        self.clock = clock  # conversations' and windows' time (tests move it)
        self._sock = sock
        self.port = 0  # the web server's, once listening
        # This process among the deployment's instances (leases on lanes and singletons).
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.readiness = Readiness()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(100, s.outbox.concurrency * 2)),
            timeout=aiohttp.ClientTimeout(total=s.slack.request_timeout * 2),
        )
        store = self.store = create_store(s.storage)
        # Several instances may share a PostgreSQL database: outbox lanes and singleton jobs
        # then go by leases in the database; on SQLite this process is the only one.
        shared = store if store.shared else None
        self.singletons = Singletons(shared, self.instance, lease_seconds=s.outbox.lease_seconds)
        lanes: LaneKeeper = AllLanes(store) if shared is None else LeasedLanes(
            shared, self.instance, lease_seconds=s.outbox.lease_seconds)
        teams = s.resolved_teams()
        self.routing = Routing(teams, s.routing.rules, detect=LanguageGuess())
        self.console = SlackConsole(s.slack, self.session, teams=teams)
        # Connectors send what the worker delivers, and hand what arrives to the router, which
        # feeds the worker: `delivery` gets the mapping now, filled below before any use.
        self.connectors: dict[str, Connector] = {}
        delivery = Delivery(store, self.console, self.connectors, s.media, s.server.public_url,
                            clock=clock, history_size=s.continuity.history_conversations,
                            conversations=s.conversations, shared=shared is not None)
        self.metrics = Metrics(store, clock=clock)
        self.worker = OutboxWorker(store, delivery, s.outbox, lanes=lanes,
                                   poll_interval=1.0 if shared else 2.0, observer=self.metrics,
                                   recovery=delivery)
        self.metrics.pending = self.worker.pending_items
        self.surveys = Surveys(
            store, self.connectors, s.csat, {name: t.csat for name, t in s.teams.items()},
            s.server.public_url, self.worker.submit, clock=clock, channel_team=self._channel_team,
            language_of_team=lambda name: teams[name].language if name in teams else "en",
            fields=store)
        answers = Answers(self.surveys) if self.surveys.wanted() else None
        delivery.add_handlers(self.surveys.handlers(), self.surveys.failure)
        self.router = Router(store, self.worker, delivery, s.slack.support_channel, clock=clock,
                             reopen_within=s.conversations.reopen_within_hours * 3600,
                             handoff_ttl=s.continuity.handoff_token_ttl_hours * 3600,
                             assign_on_first_reply=s.conversations.assign_on_first_reply,
                             zone=s.conversations.zone, routing=self.routing,
                             answers=answers)
        faq = load_faq(faq_path(config.path, s.faq.file)) if s.faq.file else None
        calendars = {name: s.calendar(name) for name in teams}  # bridge/hours.py
        auto = AutoAnswers(store, self.worker, self.routing, s.teams, calendars.get, faq,
                           s.faq, clock=clock)
        self.router.auto = auto if auto.enabled else None
        self.snoozes = SnoozeWaker(self.router.wake_snoozed)
        self.retention = RetentionJob(store, s.privacy, clock)
        self.targets = TargetKeeper(store, team_targets({
            name: (s.teams[name].targets() if name in s.teams else {}, s.calendar(name),
                   s.teams[name].alerts_channel if name in s.teams else "", sorted(team.members))
            for name, team in teams.items()}), {t.channel: t.name for t in teams.values()},
            DEFAULT_TEAM, self.worker.submit, clock)
        self._calendars: dict[str, Calendar] = {}
        for name, table in config.connectors.items():
            ctx = ConnectorContext(session=self.session, ingest=self._ingest,
                                   public_url=s.server.public_url,
                                   max_body_bytes=s.server.max_body_bytes,
                                   state=ConnectorState(store, name),
                                   run_once=self.singletons.run, receipt=self.router.receipt,
                                   clock=clock, body_timeout=s.server.body_timeout,
                                   hours=self._hours)
            self.connectors[name] = connector_class(name)(table, ctx)
        # Canned replies (issue 22): the files under [canned] dir (checked by load_settings)
        # and the store's; {{ hours.next_open }} from the teams' calendars.
        found = canned_dir(config.path, s)
        self.canned = CannedLibrary(store, load_dir(found, sorted(teams))[0] if found else (),
                                    next_open=next_open_from(calendars.get), clock=clock)
        events = SlackEvents(self.console, self.router, s.server.max_body_bytes,
                             body_timeout=s.server.body_timeout, canned=self.canned)
        ExportShortcut(self.console, store, s.privacy.admins, clock).register(events.bolt)
        self.slack_socket: SlackSocket | None = None  # Socket Mode only
        if s.slack.mode == "socket":
            events.register_catch_all()  # after every other listener: Bolt runs the first match
            self.slack_socket = SlackSocket(events.bolt, s.slack.app_token, self.console.client,
                                            connect_timeout=s.slack.request_timeout * 2)

        self.guard = ConnectionGuard(s.server.max_connections,
                                     s.server.max_connections_per_address,
                                     s.server.trusted_proxies)
        app = self.web_app = web.Application(
            client_max_size=s.server.max_body_bytes,
            middlewares=[self.metrics.middleware, client_address(self.guard.trusted),
                         readiness])
        app[READINESS], app[STORE], app[WORKER] = self.readiness, store, self.worker
        app[CONNECTORS] = self.connectors
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/media/{token}", media)
        app.add_routes(SurveyPage(answers or Answers(self.surveys)).routes())
        app.router.add_get("/metrics", self.metrics.handler(s.server.metrics_token))
        if s.slack.mode == "http":  # in Socket Mode, Slack's events come over a websocket
            app.add_routes(events.routes())
        for connector in self.connectors.values():
            app.add_routes(connector.routes())
        app.on_shutdown.append(self._close_long_lived)
        self.kpis = Kpis(store, {t.channel: t.name for t in teams.values()},
                         s.conversations.zone, CalendarHours(calendars), clock,
                         members={t.name: t.members for t in teams.values()})
        events.commands.stats.source = self.kpis.stats
        events.commands.stats.home = self.kpis.home
        self.digest: DigestJob | None = None
        if s.reports.digest_channel:
            self.digest = DigestJob(
                self.console, s.reports.digest_channel, s.reports.digest_every,
                s.reports.digest_at, s.conversations.zone, self.kpis.digest,
                lambda key, take: store.claim_digest(key, take, clock()), clock)
        app.add_routes(Dashboard(self.kpis, s.dashboard, dashboard_targets(
            [table.targets() for table in s.teams.values()])).routes())
        # Hostile clients: bodies are never decompressed (platforms do not compress webhooks,
        # and a gzip bomb would inflate in the parser before any check); an idle keep-alive
        # connection closes after keepalive_timeout; the rest of an unread body is read and
        # dropped for at most LINGER seconds (so the client reads its answer), then closed.
        self.runner = web.AppRunner(app, access_log=None,
                                    shutdown_timeout=s.server.shutdown_timeout,
                                    auto_decompress=False, lingering_time=LINGER,
                                    keepalive_timeout=s.server.keepalive_timeout)

        self.step = ""  # the start-up step running (or the last one run)
        self.lifecycle = web.Application()
        self.lifecycle.cleanup_ctx.extend(self.steps())
        self._stopped = False

    def _channel_team(self, channel: str | None) -> str:
        team = self.routing.by_channel(channel)
        return team.name if team is not None else "support"

    async def _ingest(self, items: Sequence[InboundMessage]) -> list[IngestResult]:
        """The connectors' way in: the router's, looked up at each call (a test may wrap it
        where connectors hand messages to the core)."""
        started = time.perf_counter()
        try:
            return await self.router.ingest(items)
        finally:
            self.metrics.commit_seconds.observe(time.perf_counter() - started)

    def _hours(self, team: str) -> tuple[bool, float | None]:
        """A team's hours now (for the web chat's offline prompt); calendars built once."""
        calendar = self._calendars.get(team)
        if calendar is None:
            calendar = self._calendars[team] = self.settings.calendar(team)
        now = self.clock()
        if calendar.is_open(now):
            return True, None
        return False, calendar.next_open(now)

    async def _close_long_lived(self, _: web.Application) -> None:
        for connector in self.connectors.values():
            try:
                await connector.shutdown()
            except Exception as exc:
                log.warning("closing %s's connections failed: %s", connector.name,
                            type(exc).__name__)

    @property
    def ready(self) -> bool:
        return self.readiness.ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self.readiness.ready = value

    @property
    def schema_version(self) -> int:
        return self.readiness.schema_version

    # -- lifecycle ---------------------------------------------------------------------------
    def steps(self) -> list[Step]:
        """The start-up steps, in order; shutdown runs their second halves in reverse."""
        socket_mode = [self._socket] if self.slack_socket is not None else []
        return [self._session, self._listen, self._store, self._console, self._connectors,
                self._worker, self._job("snoozes", self.snoozes),
                self._job("targets", self.targets), self._job("retention", self.retention),
                self._job("digest", self.digest),
                *socket_mode,
                self._serve]

    async def start(self) -> None:
        """Run the start-up steps; after a failure (`StartupFailure`, naming the step),
        `stop` closes what was opened."""
        if self.lifecycle.frozen:
            raise RuntimeError("a bridge starts once; build another")
        self.lifecycle.freeze()
        try:
            await self.lifecycle.startup()
        except Exception as exc:
            raise StartupFailure(self.step, exc) from exc

    async def stop(self) -> None:
        """Stop taking requests, let in-flight work finish (bounded), close everything.
        Safe after a failed start, and a second time."""
        if self._stopped:
            return
        self._stopped = True
        try:
            await self.lifecycle.cleanup()
        finally:
            if not self.session.closed:  # never started
                await self.session.close()

    async def _session(self, _: web.Application) -> AsyncIterator[None]:
        self.step = "session"
        try:
            yield
        finally:
            await self.session.close()

    async def _listen(self, _: web.Application) -> AsyncIterator[None]:
        self.step = "listen"
        s = self.settings.server
        await self.runner.setup()
        server_log, quiet = logging.getLogger("aiohttp.server"), QuietServerLog()
        server_log.addFilter(quiet)
        try:
            site = GuardedSite(self.runner, self.guard, host=s.host, port=s.port,
                               sock=self._sock)
            await site.start()  # /healthz answers 503 from here until `serve`
            self.port = int(self.runner.addresses[0][1])
            yield
        finally:
            server_log.removeFilter(quiet)
            if self.runner.server is not None:  # `serve` did not get to stop it
                await self.runner.cleanup()

    async def _store(self, _: web.Application) -> AsyncIterator[None]:
        self.step = "store"
        store = self.store
        try:
            await store.open()
            applied = await store.migrate()
            self.readiness.schema_version = await store.schema_version()
            if applied:
                log.info("applied migrations %s to %s", applied, store.where)
            yield
        finally:
            await store.close()

    async def _console(self, _: web.Application) -> AsyncIterator[None]:
        self.step = "console"
        await self.console.start()
        yield

    async def _connectors(self, _: web.Application) -> AsyncIterator[None]:
        self.step = "connectors"
        try:
            for connector in self.connectors.values():
                await connector.start()
            yield
        finally:
            await self.singletons.stop()  # polling loops end here (and hand their leases over)
            for connector in self.connectors.values():
                try:
                    await connector.stop()
                except Exception:
                    log.exception("stopping connector %s failed", connector.name)

    async def _worker(self, _: web.Application) -> AsyncIterator[None]:
        self.step = "worker"
        try:
            await self.worker.start()
            yield
        finally:
            await self.worker.stop(timeout=max(1.0, self.settings.server.shutdown_timeout - 2))

    def _job(self, name: str, job: Job | None) -> Step:
        """A step that starts a background job (each asks on its own; see its module) and
        stops it at shutdown: the snooze waker, response-time targets (only when a team has
        targets), retention (now, then every 24 hours), the KPI digest (if configured)."""
        async def step(_: web.Application) -> AsyncIterator[None]:
            self.step = name
            if job is not None:
                await job.start()
            try:
                yield
            finally:
                if job is not None:
                    await job.stop()
        return step

    async def _socket(self, _: web.Application) -> AsyncIterator[None]:
        self.step = "socket"
        assert self.slack_socket is not None  # a step in Socket Mode only
        await self.slack_socket.start()  # closes itself again when it fails
        try:
            yield
        finally:  # envelopes being handled are stored and acknowledged first
            await self.slack_socket.stop(timeout=self.settings.server.shutdown_timeout / 2)

    async def _serve(self, _: web.Application) -> AsyncIterator[None]:
        self.step = "serve"
        # Everything imported and built so far lives as long as the process: keep it out of
        # the cyclic GC's full collections (they took 55-85 ms under load, collecting nothing).
        gc.freeze()
        self.readiness.ready = True
        s = self.settings.server
        log.info("bridge ready on %s:%s (public %s)", s.host, self.port, s.public_url)
        try:
            yield
        finally:
            await self.runner.cleanup()  # stop listening; wait for requests being handled
            self.readiness.ready = False


async def run_until_signalled(bridge: Bridge, stop: asyncio.Event) -> None:
    try:
        await bridge.start()
    except StartupFailure:
        try:
            await bridge.stop()  # close what was opened; the start-up failure is what matters
        except Exception as exc:
            log.warning("closing after the failed start also failed: %s", type(exc).__name__)
        raise
    try:
        await stop.wait()
        log.info("stopping: no new requests; finishing in-flight work (at most %.0f s)",
                 bridge.settings.server.shutdown_timeout)
    finally:
        await bridge.stop()


def dashboard_targets(targets: list[dict[str, float]]) -> dict[str, float | None]:
    """What the dashboard colours its totals against: the strictest target any team sets."""
    out: dict[str, float | None] = {}
    for kind in ("first_response", "next_response", "resolution"):
        values = [t[kind] for t in targets if kind in t]
        out[kind] = min(values) if values else None
    out["csat"] = 4.0
    return out
