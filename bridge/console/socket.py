"""Slack Socket Mode: Slack's events over a websocket the bridge opens (no public URL needed).

Bolt's aiohttp `AsyncSocketModeHandler` speaks the protocol: `apps.connections.open` through the
console's web client (so it honours `api_base_url`), the websocket, pings, and a new connection
after a close frame or a `disconnect` message.  Around it this module adds what the bridge needs:

- An envelope is acknowledged only when Bolt answers 200.  The Bolt app runs with
  `process_before_response=True`, so the ack leaves after the listener has committed what the
  envelope carried; a listener that raises makes Bolt answer 500, nothing is acknowledged, and
  Slack redelivers the envelope.
- An authentic envelope no listener wants (Bolt's 404) is acknowledged anyway, as `POST
  /slack/events` answers it 200; `SlackEvents.register_catch_all` keeps Bolt from logging each.
- `start` fails fast when Slack refuses the app token; `stop` lets envelopes being handled
  finish (bounded), then closes the websocket and the SDK's own aiohttp session and awaits the
  SDK's tasks, so nothing outlives the bridge.
"""

from __future__ import annotations

import asyncio
import logging
import time

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


class SocketModeError(Exception):
    """Slack refused to open a Socket Mode connection (`code` is Slack's error, e.g.
    ``invalid_auth`` or ``not_allowed_token_type``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class _Handler(AsyncSocketModeHandler):
    """Bolt's handler, with the bridge's acknowledgement rules (see the module docstring)."""

    def __init__(self, owner: SlackSocket, app: AsyncApp, app_token: str,
                 web_client: AsyncWebClient, ping_interval: float) -> None:
        super().__init__(app, app_token, logger=log, web_client=web_client,
                         ping_interval=ping_interval)
        self.owner = owner

    async def handle(self, client: AsyncBaseSocketModeClient,
                     req: SocketModeRequest) -> None:
        owner = self.owner
        if owner.stopping:
            return  # not acknowledged: Slack delivers it again on the next connection
        task = asyncio.current_task()
        if task is not None:
            owner.inflight.add(task)
        try:
            started = time.time()
            response: BoltResponse = await run_async_bolt_app(self.app, req)
            if response.status == 404:  # authentic, but no listener wants it
                response = BoltResponse(status=200, body="")
            if response.status != 200:
                log.warning("not acknowledging %s envelope %s: Bolt answered %s; Slack will "
                            "deliver it again", req.type, req.envelope_id, response.status)
                return
            await send_async_response(client, req, response, started)
        finally:
            if task is not None:
                owner.inflight.discard(task)


class SlackSocket:
    """One Socket Mode connection for the console's Bolt app.

    `web_client` is the console's `AsyncWebClient`: `apps.connections.open` goes to its base
    URL, with `app_token` (``xapp-...``) as the bearer token.
    """

    def __init__(self, bolt: AsyncApp, app_token: str, web_client: AsyncWebClient, *,
                 ping_interval: float = 10.0, connect_timeout: float = 30.0) -> None:
        self.bolt = bolt
        self.app_token = app_token
        self.web_client = web_client
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.stopping = False
        self.inflight: set[asyncio.Task[object]] = set()
        self._handler: _Handler | None = None

    @property
    def client(self) -> SocketModeClient | None:
        """The SDK's Socket Mode client while started (it owns the websocket)."""
        return self._handler.client if self._handler is not None else None

    async def start(self) -> None:
        """Open the connection; raise `SocketModeError` if Slack refuses the app token."""
        # The SDK client opens its own aiohttp session and starts a task in its constructor,
        # so it is built here, inside the running loop, and closed again on any failure.
        handler = self._handler = _Handler(self, self.bolt, self.app_token, self.web_client,
                                           self.ping_interval)
        self.stopping = False
        client = handler.client
        try:
            try:
                # Asked once here, so a refused token fails startup instead of being retried
                # forever by the SDK's connect loop.
                client.wss_uri = await client.issue_new_wss_url()
            except SlackApiError as exc:
                error = str(exc.response.get("error") or f"http_{exc.response.status_code}")
                raise SocketModeError(f"Slack refused apps.connections.open: {error}",
                                      error) from exc
            await asyncio.wait_for(client.connect(), self.connect_timeout)  # type: ignore[no-untyped-call]
        except BaseException:
            await self.stop()
            raise
        log.info("slack socket mode connected")

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (a drain budget)
        """Let envelopes being handled finish (up to `timeout`), then close everything."""
        handler, self._handler = self._handler, None
        if handler is None:
            return
        self.stopping = True
        if self.inflight:
            _, pending = await asyncio.wait(set(self.inflight), timeout=timeout)
            for task in pending:  # their envelopes stay unacknowledged: Slack redelivers
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        client = handler.client
        try:
            await client.close()  # type: ignore[no-untyped-call]
        finally:
            # close() cancels the SDK's tasks without waiting for them; wait here.
            tasks: list[asyncio.Future[object]] = [
                t for t in (client.message_processor, client.current_session_monitor,
                            client.message_receiver) if t is not None]
            for future in tasks:
                future.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not client.aiohttp_client_session.closed:
                await client.aiohttp_client_session.close()
