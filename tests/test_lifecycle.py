"""The bridge's life: built without I/O, started in steps, stopped in the reverse order.

tests/test_cli.py checks that the web server answers 503 while the steps run; here, what a
failed start and a failing teardown leave behind.
"""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp.web import CleanupError

from bridge.app import Bridge, StartupFailure
from bridge.registry import settings_registry
from bridge.settings import load_settings
from bridge.standins import SlackStandin, TelegramStandin
from tests.conftest import bridge_env, free_socket, write_config


def build(tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
          sock: socket.socket) -> Bridge:
    config = write_config(tmp_path / "bridge.toml", port=sock.getsockname()[1],
                          db=tmp_path / "bridge.db", slack=slack, telegram=telegram)
    return Bridge(load_settings(config, settings_registry(), environ=bridge_env(slack),
                                dotenv_dir=tmp_path), sock=sock)


async def refused(port: int, session: aiohttp.ClientSession) -> bool:
    try:
        async with session.get(f"http://127.0.0.1:{port}/healthz"):
            return False
    except aiohttp.ClientConnectionError:
        return True


async def test_building_the_bridge_opens_nothing(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
    session: aiohttp.ClientSession,
) -> None:
    sock = free_socket()
    bridge = build(tmp_path, slack, telegram, sock)
    assert not (tmp_path / "bridge.db").exists() and not bridge.store.is_open
    assert slack.calls == [] and telegram.calls == []
    assert await refused(sock.getsockname()[1], session)
    await bridge.stop()  # never started: only the client session to close
    assert bridge.session.closed


async def test_a_failed_start_is_undone_by_stop(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
    session: aiohttp.ClientSession,
) -> None:
    """Slack refuses auth.test: the store was opened and migrated, no connector started."""
    sock = free_socket()
    port = sock.getsockname()[1]
    bridge = build(tmp_path, slack, telegram, sock)
    slack.fail_next("auth.test", status=200, error="invalid_auth")
    with pytest.raises(StartupFailure) as failed:
        await bridge.start()
    assert failed.value.step == "console" and "invalid_auth" in str(failed.value.cause)
    assert not bridge.ready and bridge.store.is_open
    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
        assert resp.status == 503  # still listening, until stop
    await bridge.stop()
    assert not bridge.store.is_open and bridge.session.closed
    assert await refused(port, session)
    assert (tmp_path / "bridge.db").exists() and telegram.calls == []
    await bridge.stop()  # a second stop does nothing
    with pytest.raises(RuntimeError, match="starts once"):
        await bridge.start()


async def test_every_teardown_runs_and_their_errors_are_raised_together(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    bridge = build(tmp_path, slack, telegram, sock)
    await bridge.start()
    assert bridge.ready

    async def worker_fails(timeout: float) -> None:
        raise RuntimeError("worker")

    async def store_fails() -> None:
        raise RuntimeError("store")

    close_store = bridge.store.close
    monkeypatch.setattr(bridge.worker, "stop", worker_fails)
    monkeypatch.setattr(bridge.store, "close", store_fails)
    with pytest.raises(CleanupError) as caught:
        await bridge.stop()
    # Shutdown runs start-up backwards: the worker's error comes first, the store's next.
    assert [str(e) for e in caught.value.exceptions] == ["worker", "store"]
    assert not bridge.ready and bridge.session.closed and await refused(port, session)
    await close_store()
