"""Playing Slack's side towards the bridge: signed Events API and interactivity requests."""

from __future__ import annotations

import itertools
import json
import secrets
import time
import uuid
from urllib.parse import urlencode

import aiohttp

from bridge.standins.base import JSONDict
from bridge.standins.signing import slack_signature_headers


class TsClock:
    """Slack-style ``"seconds.micros"`` timestamps: distinct and strictly increasing."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        us = max(self._last + 1, int(time.time() * 1_000_000))
        self._last = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"


class SlackEventSender:
    """Plays Slack delivering Events API / interactivity requests to the bridge."""

    def __init__(
        self,
        bridge_url: str,
        signing_secret: str,
        session: aiohttp.ClientSession,
        team_id: str = "T0BRIDGE",
        api_app_id: str = "A0BRIDGE",
        bot_user_id: str = "U0BOT",
    ) -> None:
        self.bridge_url = bridge_url
        self.signing_secret = signing_secret
        self.session = session
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self._clock = TsClock()
        self._seq = itertools.count(1)

    def message_event(
        self,
        *,
        channel: str,
        user: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        user_team: str | None = None,
        bot_id: str | None = None,
        subtype: str | None = None,
        event_id: str | None = None,
        files: list[JSONDict] | None = None,
    ) -> JSONDict:
        """A realistic ``event_callback`` envelope carrying one ``message`` event."""
        ts = ts or self._clock.next()
        team = user_team or self.team_id
        event: JSONDict = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "channel",
            "team": team,
            "user_team": team,
            "source_team": team,
        }
        if files:
            event["files"] = files
            event["upload"] = True
            subtype = subtype or "file_share"
        if subtype:
            event["subtype"] = subtype
        if bot_id:
            event["bot_id"] = bot_id
        elif subtype in (None, "file_share", "thread_broadcast"):
            event["client_msg_id"] = str(uuid.uuid4())
        if thread_ts:
            event["thread_ts"] = thread_ts
        seq = next(self._seq)
        return {
            "token": "standin-verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{seq:05d}{secrets.token_hex(3).upper()}",
            "event_time": int(float(ts)),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }

    async def post(
        self,
        envelope: JSONDict | bytes,
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        sign: bool = True,
        secret: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        """POST a (signed) raw body to the bridge; returns (status, response text)."""
        body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        if sign:
            headers = slack_signature_headers(
                self.signing_secret if secret is None else secret, body, timestamp, content_type
            )
        else:
            headers = {"Content-Type": content_type}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with self.session.post(self.bridge_url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def post_interaction(self, payload: JSONDict) -> tuple[int, str]:
        """POST an interactivity payload form-encoded as ``payload=<json>``, signed."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, content_type="application/x-www-form-urlencoded")

    # -- interactivity and message changes, shaped like Slack's own payloads ----------------
    def block_action(self, *, channel: str, user: str, message: JSONDict, action_id: str,
                     value: str) -> JSONDict:
        """A ``block_actions`` payload: `user` clicked a button on `message`."""
        return {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "standin"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": "standin-verification-token",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel,
                          "is_ephemeral": False},
            "trigger_id": f"{next(self._seq)}.{secrets.token_hex(6)}",
            "channel": {"id": channel, "name": channel.lower()},
            "message": {k: v for k, v in message.items() if k != "channel" and v is not None},
            "response_url": "https://hooks.slack.com/actions/T0/1/standin",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "standin",
                         "value": value, "action_ts": self._clock.next()}],
        }

    def message_shortcut(self, *, channel: str, user: str, message: JSONDict,
                         callback_id: str) -> JSONDict:
        """A ``message_action`` payload: `user` ran a message shortcut on `message`."""
        return {
            "type": "message_action",
            "callback_id": callback_id,
            "team": {"id": self.team_id, "domain": "standin"},
            "user": {"id": user, "name": user.lower(), "team_id": self.team_id},
            "channel": {"id": channel, "name": channel.lower()},
            "message": {k: v for k, v in message.items() if k != "channel" and v is not None},
            "message_ts": message["ts"],
            "trigger_id": f"{next(self._seq)}.{secrets.token_hex(6)}",
            "response_url": "https://hooks.slack.com/app/T0/1/standin",
            "token": "standin-verification-token",
            "action_ts": self._clock.next(),
        }

    def _hidden_event(self, channel: str, user: str, subtype: str) -> JSONDict:
        """The envelope of a hidden ``message`` subtype: Slack sends no author or text on
        the event itself, only on the message it describes."""
        envelope = self.message_event(channel=channel, user=user, text="", subtype=subtype)
        event = envelope["event"]
        for key in ("user", "text", "client_msg_id", "team", "user_team", "source_team"):
            event.pop(key, None)
        event["hidden"] = True
        return envelope

    def changed_event(self, *, channel: str, user: str, ts: str, thread_ts: str,
                      old_text: str, new_text: str) -> JSONDict:
        """``message_changed``: `user` edited their message `ts`."""
        envelope = self._hidden_event(channel, user, "message_changed")
        event = envelope["event"]
        base = {"type": "message", "user": user, "ts": ts, "thread_ts": thread_ts,
                "team": self.team_id}
        event["message"] = {**base, "text": new_text,
                            "edited": {"user": user, "ts": event["ts"]}}
        event["previous_message"] = {**base, "text": old_text}
        return envelope

    def deleted_event(self, *, channel: str, user: str, ts: str, thread_ts: str,
                      old_text: str) -> JSONDict:
        """``message_deleted``: `user` deleted their message `ts`."""
        envelope = self._hidden_event(channel, user, "message_deleted")
        event = envelope["event"]
        event["deleted_ts"] = ts
        event["previous_message"] = {"type": "message", "user": user, "ts": ts,
                                     "thread_ts": thread_ts, "text": old_text}
        return envelope

    def reaction_event(self, *, channel: str, user: str, ts: str, reaction: str,
                       added: bool = True, item_user: str = "U0BOT") -> JSONDict:
        """``reaction_added`` / ``reaction_removed``: `user` reacted to message `ts`."""
        envelope = self.message_event(channel=channel, user=user, text="")
        event_ts = envelope["event"]["ts"]
        envelope["event"] = {
            "type": "reaction_added" if added else "reaction_removed", "user": user,
            "reaction": reaction, "item": {"type": "message", "channel": channel, "ts": ts},
            "item_user": item_user, "event_ts": event_ts,
        }
        return envelope

    def picker_action(self, *, channel: str, user: str, message: JSONDict, action_id: str,
                      selected_user: str) -> JSONDict:
        """A ``block_actions`` payload: `user` picked `selected_user` in a users_select."""
        payload = self.block_action(channel=channel, user=user, message=message,
                                    action_id=action_id, value="")
        payload["actions"] = [{"type": "users_select", "action_id": action_id,
                               "block_id": "standin", "selected_user": selected_user,
                               "action_ts": self._clock.next()}]
        return payload

    def ephemeral_action(self, *, channel: str, user: str, ephemeral: JSONDict,
                         action_id: str, value: str, response_url: str) -> JSONDict:
        """A ``block_actions`` payload from a button on an ephemeral message: Slack sends the
        container (marked ephemeral), no ``message``, and the `response_url` that changes it
        (`SlackStandin.response_url`)."""
        payload = self.block_action(channel=channel, user=user, message=ephemeral,
                                    action_id=action_id, value=value)
        payload["container"]["is_ephemeral"] = True
        payload["response_url"] = response_url
        del payload["message"]
        return payload

    def _view_payload(self, kind: str, user: str, view: JSONDict) -> JSONDict:
        return {
            "type": kind,
            "team": {"id": self.team_id, "domain": "standin"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": "standin-verification-token",
            "trigger_id": f"{next(self._seq)}.{secrets.token_hex(6)}",
            "view": {**view, "app_id": self.api_app_id, "team_id": self.team_id},
        }

    def view_submission(self, *, user: str, view: JSONDict,
                        values: dict[str, dict[str, JSONDict]]) -> JSONDict:
        """``view_submission``: `user` pressed a modal's submit button with `values` filled
        (`{block_id: {action_id: {"type": ..., "value": ...}}}`, as Slack sends them)."""
        payload = self._view_payload("view_submission", user, view)
        payload["view"]["state"] = {"values": values}
        payload["response_urls"] = []
        return payload

    def view_action(self, *, user: str, view: JSONDict, block_id: str, action_id: str,
                    value: str) -> JSONDict:
        """``block_actions`` from an input inside a modal (`dispatch_action`: Enter pressed)."""
        payload = self._view_payload("block_actions", user, view)
        payload["container"] = {"type": "view", "view_id": view["id"]}
        payload["actions"] = [{"type": "plain_text_input", "action_id": action_id,
                               "block_id": block_id, "value": value,
                               "action_ts": self._clock.next()}]
        return payload
