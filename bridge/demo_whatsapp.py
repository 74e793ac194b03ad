"""The demo's WhatsApp Cloud act (issue 27): Kerry writes through Meta's Cloud API (no Twilio
in between), Dana answers with Slack formatting that arrives as WhatsApp's, and Meta's
`delivered` and `read` statuses show on her reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from bridge.demo_wait import until
from bridge.standins.messenger import DEFAULT_APP_SECRET
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.whatsapp import (
    DEFAULT_TOKEN,
    DEFAULT_WABA,
    SEND,
    WhatsAppStandin,
    WhatsAppWebhookSender,
)

NUMBER_ID = "106540352242922"
KERRY = "16315551181"


def whatsapp_config(wa: WhatsAppStandin) -> dict[str, dict[str, Any]]:
    return {"connectors.whatsapp": {
        "enabled": True, "app_secret": DEFAULT_APP_SECRET, "verify_token": "demo",
        "access_token": DEFAULT_TOKEN, "business_account_id": DEFAULT_WABA,
        "graph_base_url": wa.base_url,
        "phone_numbers": [{"phone_number_id": NUMBER_ID, "number": "+15550783881"}]}}


class WhatsAppCloudAct:
    def __init__(self, slack: SlackStandin, wa: WhatsAppStandin, agent: SlackEventSender,
                 port: int, channel: str, user: str, readable: Callable[[str], str],
                 clock: Callable[[], float]) -> None:
        self.slack, self.wa, self.agent = slack, wa, agent
        self.url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
        self.channel, self.user, self.readable, self.clock = channel, user, readable, clock

    async def play(self, out: list[str], session: aiohttp.ClientSession) -> bool:
        s = WhatsAppWebhookSender(self.url, session, standin=self.wa, clock=self.clock)
        s.names[KERRY] = "Kerry Fisher"
        parents = len(self.slack.parents(self.channel))
        text = "Hello! Can I still change the delivery address?"
        assert await s.send(NUMBER_ID, s.message(KERRY, text=text)) == 200
        await until(lambda: len(self.slack.parents(self.channel)) > parents,
                          "Kerry's thread")
        parent = self.slack.parents(self.channel)[-1]
        event = self.agent.message_event(channel=self.channel, user=self.user,
                                         thread_ts=str(parent["ts"]),
                                         text="*Yes*, until it ships: reply with the _new_ one")
        assert (await self.agent.post(event))[0] == 200
        [call] = await self.wa.wait_for(SEND, 1)
        wamid = self.wa.sent[-1]["wamid"]
        statuses = [s.status(wamid, KERRY, "delivered"), s.status(wamid, KERRY, "read")]
        assert (await s.post(s.body(s.change(NUMBER_ID, statuses=statuses))))[0] == 200
        key = (self.channel, str(event["event"]["ts"]))
        await until(lambda: "eyes" in self.slack.reactions.get(key, []),
                          "the read mark on Dana's reply")
        body = str(call.params["text"]["body"])
        out.append("Kerry, on WhatsApp through Meta's Cloud API:")
        out.append(f"  Kerry (customer): {text}")
        out.append(f"  [Slack] {self.readable(str(parent['text'])).splitlines()[0]}")
        out.append(f"  Kerry saw (WhatsApp formatting): {body.replace('*', '')}")
        marks = self.readable(" ".join(f":{r}:" for r in self.slack.reactions[key]))
        out.append(f"  Meta said delivered, then read: Dana's reply shows {marks}")
        return body == "*Dana*: *Yes*, until it ships: reply with the _new_ one"
