"""Socket Mode: Slack's events over a websocket the bridge opens, against the Slack stand-in.

Every authentic envelope is acknowledged exactly when what it carried is committed; one whose
reply fails to store is not, so Slack delivers it again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge, StartupFailure
from bridge.console.socket import SocketModeError
from bridge.registry import settings_registry
from bridge.settings import load_settings
from bridge.standins import SlackStandin, TelegramStandin
from bridge.standins.base import JSONDict
from bridge.standins.slack import SocketAck
from storage.base import StoreError
from tests.conftest import (
    AGENT,
    CHANNEL,
    Harness,
    HarnessFactory,
    bridge_env,
    free_socket,
    write_config,
)
from tests.waiting import until

# SQLite only: Slack Socket Mode (envelopes, acks, reconnects): nothing store-specific.
pytestmark = pytest.mark.backends("sqlite")

APP_TOKEN = "xapp-1-A0BRIDGE-1-standin"
SOCKET_MODE = {"slack": {"mode": "socket", "app_token": "${SLACK_APP_TOKEN}",
                         "signing_secret": ""}}  # no signing secret needed in Socket Mode
OUT_ROWS = "SELECT text FROM messages WHERE direction = 'out' ORDER BY id"


@pytest.fixture
async def h(make_harness: HarnessFactory, slack: SlackStandin) -> Harness:
    slack.app_token = APP_TOKEN
    return await make_harness(overrides=SOCKET_MODE, env={"SLACK_APP_TOKEN": APP_TOKEN})


async def conversation(h: Harness, chat_id: int) -> str:
    assert await h.customer_says(chat_id, "Where is my order?") == 200
    return await h.thread_of(chat_id)


def reply(h: Harness, thread: str, text: str) -> JSONDict:
    return h.agent.message_event(channel=CHANNEL, user=AGENT, text=text, thread_ts=thread)


def event_callback(h: Harness, event: JSONDict) -> JSONDict:
    """An authentic Events API envelope around any event (the fields of a message event's)."""
    body = h.agent.message_event(channel=CHANNEL, user=AGENT, text="")
    body["event"] = event
    return body


def slack_writes(h: Harness) -> list[str]:
    """Web API calls other than Bolt's auth.test (made once per burst of first requests)."""
    return [c.method for c in h.slack.calls if c.method != "auth.test"]


async def test_customer_message_and_agent_reply_round_trip(h: Harness) -> None:
    thread = await conversation(h, 4242)
    opened = h.slack.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].headers["Authorization"] == f"Bearer {APP_TOKEN}"

    envelope_id = await h.slack.socket_push(reply(h, thread, "It ships today"))
    ack = await h.slack.wait_ack(envelope_id)
    assert ack.payload is None
    sent = await h.telegram.wait_for("sendMessage", 1)
    assert sent[0].params["chat_id"] == "4242" and sent[0].params["text"].endswith("ships today")
    await h.drained()
    assert len(h.slack.acks_for(envelope_id)) == 1
    assert len(h.telegram.calls_to("sendMessage")) == 1


async def test_ack_is_sent_only_after_the_reply_is_committed(h: Harness) -> None:
    thread = await conversation(h, 11)
    committed_at_ack: list[list[tuple[Any, ...]]] = []

    def on_ack(ack: SocketAck) -> None:  # runs as the stand-in reads the ack
        committed_at_ack.append(h.rows(OUT_ROWS))

    h.slack.on_ack = on_ack
    await h.slack.wait_ack(await h.slack.socket_push(reply(h, thread, "stored first")))
    assert committed_at_ack == [[("stored first",)]]


async def test_reply_that_fails_to_store_is_not_acknowledged_until_redelivered(
    h: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread = await conversation(h, 12)
    assert h.bridge.store is not None

    refused: list[str] = []

    async def disk_full(*args: Any, **kwargs: Any) -> Any:
        refused.append("disk full")
        raise StoreError("disk full")

    socket = h.bridge.slack_socket
    assert socket is not None
    with monkeypatch.context() as patch:
        patch.setattr(h.bridge.store, "ingest_agent_reply", disk_full)
        event = reply(h, thread, "lost?")
        first = await h.slack.socket_push(event)
        # The listener ran and its envelope's handling is over (acknowledged or not).
        await until(lambda: bool(refused) and not socket.inflight,
                    lambda: f"store called {len(refused)} time(s), {len(socket.inflight)}"
                            " envelope(s) in flight", timeout=5)
        assert h.slack.acks_for(first) == []
        assert h.rows(OUT_ROWS) == [] and h.telegram.calls_to("sendMessage") == []

    # Slack delivers the unacknowledged envelope again, now with the store back.
    again = await h.slack.socket_push(event, retry_attempt=1, retry_reason="timeout")
    await h.slack.wait_ack(again)
    await h.telegram.wait_for("sendMessage", 1)
    assert h.rows(OUT_ROWS) == [("lost?",)]


async def test_requests_no_listener_wants_are_acknowledged_and_change_nothing(
    h: Harness,
) -> None:
    thread = await conversation(h, 13)
    before = (h.count("messages"), h.count("outbox"), slack_writes(h))
    team = {"id": h.slack.team_id}
    user = {"id": AGENT, "team_id": h.slack.team_id}
    pushed = [
        await h.slack.socket_push(event_callback(h, {
            "type": "reaction_added", "user": AGENT, "reaction": "tada",
            "item": {"type": "message", "channel": CHANNEL, "ts": thread},
            "event_ts": "1717000000.000300"})),
        await h.slack.socket_push(event_callback(h, {
            "type": "member_joined_channel", "user": AGENT, "channel": CHANNEL,
            "channel_type": "C", "event_ts": "1717000000.000400"})),
        await h.slack.socket_push({
            "type": "block_actions", "team": team, "user": user, "api_app_id": "A0BRIDGE",
            "trigger_id": "1.2.3", "channel": {"id": CHANNEL},
            "container": {"type": "message", "message_ts": thread, "channel_id": CHANNEL},
            "actions": [{"type": "button", "action_id": "standin.unknown", "block_id": "b",
                         "value": "v", "action_ts": "1717000000.000500"}]}, "interactive"),
        await h.slack.socket_push({
            "type": "view_closed", "team": team, "user": user, "api_app_id": "A0BRIDGE",
            "view": {"id": "V1", "callback_id": "standin.unknown", "type": "modal"}},
            "interactive"),
        await h.slack.socket_push({
            "command": "/standin-unknown", "text": "", "team_id": h.slack.team_id,
            "channel_id": CHANNEL, "user_id": AGENT, "api_app_id": "A0BRIDGE",
            "trigger_id": "1.2.4", "response_url": "http://127.0.0.1:9/unused"},
            "slash_commands"),
    ]
    for envelope_id in pushed:
        await h.slack.wait_ack(envelope_id)
    await h.drained()
    assert [len(h.slack.acks_for(e)) for e in pushed] == [1] * len(pushed)
    assert (h.count("messages"), h.count("outbox"), slack_writes(h)) == before
    assert h.telegram.calls_to("sendMessage") == []


async def test_retried_envelope_reaches_the_customer_once(h: Harness) -> None:
    thread = await conversation(h, 14)
    event = reply(h, thread, "only once")
    pushed = [await h.slack.socket_push(event, retry_attempt=attempt,
                                        retry_reason="timeout" if attempt else "")
              for attempt in (0, 1, 2)]
    for envelope_id in pushed:
        await h.slack.wait_ack(envelope_id)
    await h.telegram.wait_for("sendMessage", 1)
    await h.drained()
    assert len(h.telegram.calls_to("sendMessage")) == 1
    assert h.rows(OUT_ROWS) == [("only once",)]


@pytest.mark.parametrize("how", ["dropped", "disconnect-message"])
async def test_replies_flow_again_after_reconnecting(h: Harness, how: str) -> None:
    thread = await conversation(h, 15)
    await h.slack.wait_socket_connections(1)
    if how == "dropped":
        await h.slack.socket_drop()
    else:
        await h.slack.socket_disconnect("refresh_requested")
    await h.slack.wait_socket_connections(2)
    await h.slack.wait_ack(await h.slack.socket_push(reply(h, thread, "still here")))
    await h.telegram.wait_for("sendMessage", 1)
    assert len(h.slack.calls_to("apps.connections.open")) == 2
    # the old connection is closed, not left dangling
    await until(lambda: h.slack.socket_open == 1,
                lambda: f"{h.slack.socket_open} connections open", timeout=5)


async def test_http_events_endpoint_is_not_served(h: Harness) -> None:
    thread = await conversation(h, 16)
    status, _ = await h.agent.post(reply(h, thread, "over http"))
    assert status == 404
    async with h.session.get(f"{h.url}/healthz") as resp:
        assert resp.status == 200


async def test_refused_app_token_fails_startup(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
) -> None:
    slack.app_token = APP_TOKEN
    sock = free_socket()
    config = write_config(tmp_path / "bridge.toml", port=sock.getsockname()[1],
                          db=tmp_path / "bridge.db", slack=slack, telegram=telegram,
                          overrides=SOCKET_MODE)
    env = {**bridge_env(slack), "SLACK_APP_TOKEN": "xapp-1-revoked"}
    bridge = Bridge(load_settings(config, settings_registry(), environ=env,
                                  dotenv_dir=tmp_path), sock=sock)
    try:
        with pytest.raises(StartupFailure) as caught:
            await bridge.start()
        assert caught.value.step == "socket" and not bridge.ready
        assert isinstance(caught.value.cause, SocketModeError)
        assert caught.value.cause.code == "invalid_auth"
    finally:
        await bridge.stop()
    assert bridge.slack_socket is not None and bridge.slack_socket.client is None
    assert slack.socket_connections == 0


async def test_stop_lets_an_envelope_being_handled_finish_and_acknowledges_it(
    h: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread = await conversation(h, 17)
    store = h.bridge.store
    assert store is not None
    ingest, entered = store.ingest_agent_reply, asyncio.Event()

    async def slow_ingest(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await asyncio.sleep(0.3)
        return await ingest(*args, **kwargs)

    monkeypatch.setattr(store, "ingest_agent_reply", slow_ingest)
    envelope_id = await h.slack.socket_push(reply(h, thread, "in flight"))
    await asyncio.wait_for(entered.wait(), 5)
    await h.bridge.stop()
    assert [a.envelope_id for a in h.slack.acks] == [envelope_id]
    assert h.rows(OUT_ROWS) == [("in flight",)]


def sdk_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still running code of slack_sdk's Socket Mode client."""
    return [t for t in asyncio.all_tasks()
            if "SocketModeClient." in getattr(t.get_coro(), "__qualname__", "")]


async def test_stop_closes_the_socket_and_leaves_nothing_running(h: Harness) -> None:
    await h.slack.wait_socket_connections(1)
    assert h.bridge.slack_socket is not None
    client = h.bridge.slack_socket.client
    assert client is not None and sdk_tasks()
    await h.bridge.stop()
    assert client.closed and client.aiohttp_client_session.closed
    assert sdk_tasks() == []
    await until(lambda: h.slack.socket_open == 0,
                lambda: f"{h.slack.socket_open} connections open", timeout=5)
    # An envelope sent now finds nobody: it stays unacknowledged, for Slack to redeliver.
    with pytest.raises(TimeoutError):
        await h.slack.socket_push({"type": "noop"}, timeout=0.2)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{h.url}/healthz")
