"""The Slack app manifest asks for exactly what the bridge uses, and the stand-in refuses a
method whose scope the manifest does not grant, as Slack does."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.console import scopes
from bridge.standins import SlackStandin
from bridge.standins.slack import ALL_SCOPES, MANIFEST, METHOD_SCOPES, manifest_scopes

ROOT = Path(__file__).resolve().parents[1]
# slack_sdk's helpers that call other methods than their names say
COMPOSITE = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}
API_FAMILIES = ("chat", "users", "reactions", "files", "conversations", "auth", "views", "apps",
                "pins", "bookmarks", "team", "usergroups", "dnd", "emoji", "search")


def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def slack_methods_called(source: str) -> set[str]:
    """Web API methods named by slack_sdk calls in `source` (`client.chat_postMessage(` →
    `chat.postMessage`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in COMPOSITE:
                found.update(COMPOSITE[name])
            elif re.fullmatch(rf"({'|'.join(API_FAMILIES)})_[a-z][A-Za-z]+", name):
                found.add(name.replace("_", ".", 1))
    return found


def bridge_methods() -> set[str]:
    called: set[str] = set()
    for path in (ROOT / "bridge").rglob("*.py"):
        if "standins" not in path.parts:
            called |= slack_methods_called(path.read_text(encoding="utf-8"))
    return called


SOCKET_MANIFEST = MANIFEST.with_name("slack-app-manifest.socket.yml")


def test_the_socket_mode_manifest_is_the_same_app_without_request_urls() -> None:
    http = manifest()
    socket = yaml.safe_load(SOCKET_MANIFEST.read_text(encoding="utf-8"))
    assert manifest_scopes(SOCKET_MANIFEST) == manifest_scopes()
    assert socket["features"] == http["features"]
    assert socket["settings"]["event_subscriptions"] == {
        "bot_events": http["settings"]["event_subscriptions"]["bot_events"]}
    assert socket["settings"]["interactivity"] == {"is_enabled": True}
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in SOCKET_MANIFEST.read_text(encoding="utf-8")


def test_the_manifest_asks_for_every_scope_the_bridge_needs_and_no_other() -> None:
    asked = manifest_scopes()
    assert asked is not None
    assert sorted(scopes.bot_scopes() - asked) == [], "needed, missing from the manifest"
    assert sorted(asked - scopes.bot_scopes()) == [], "asked for, needed by no feature"


def test_the_manifest_subscribes_to_every_event_the_bridge_handles_and_no_other() -> None:
    settings = manifest()["settings"]
    assert isinstance(settings, dict)
    assert set(settings["event_subscriptions"]["bot_events"]) == scopes.events()


def test_every_web_api_method_the_bridge_calls_is_in_the_table() -> None:
    called = bridge_methods()
    assert "chat.postMessage" in called and "reactions.add" in called  # the scan reads calls
    assert sorted(called - set(scopes.method_scopes()) - scopes.NO_BOT_SCOPE) == []


def test_the_scan_finds_calls_through_any_client_name() -> None:
    source = ("async def f(web):\n    await web.reactions_add(name='x')\n"
              "    await self._client.files_upload_v2(file=b'')\n    post_message(1)\n")
    assert slack_methods_called(source) == {
        "reactions.add", "files.getUploadURLExternal", "files.completeUploadExternal"}


def test_the_table_names_the_scopes_slack_requires() -> None:
    """Our table agrees with what the stand-in (standing in for Slack) requires."""
    for method, scope in scopes.method_scopes().items():
        assert scope in METHOD_SCOPES[method], method


async def test_the_standin_refuses_a_method_whose_scope_was_not_granted() -> None:
    granted = (manifest_scopes() or ALL_SCOPES) - {"reactions:write"}
    async with SlackStandin(scopes=granted) as slack:
        client = AsyncWebClient(token="xoxb-standin", base_url=slack.base_url)
        with pytest.raises(SlackApiError) as refused:
            await client.reactions_add(channel="C1", timestamp="1.000001", name="white_check_mark")
        assert refused.value.response.data == {
            "ok": False, "error": "missing_scope", "needed": "reactions:write",
            "provided": ",".join(sorted(granted))}
        posted = await client.chat_postMessage(channel="C1", text="hi")
        assert posted["ok"] is True
        assert [(c.method, c.ok) for c in slack.calls] == [
            ("reactions.add", False), ("chat.postMessage", True)]


async def test_the_standin_grants_by_default_what_the_manifest_asks_for() -> None:
    async with SlackStandin() as slack:
        assert slack.scopes == manifest_scopes()
