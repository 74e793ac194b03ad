"""`bridge demo`: the real bridge on a temporary SQLite store against built-in stand-ins.

A customer writes on Telegram, an agent answers in the Slack thread, the customer answers
back and sends a photo (uploaded into the thread), an internal note stays internal, and the
agent closes the conversation with the button on the thread's parent.  Then a customer writes
on WhatsApp (through Twilio): a reply within 24 hours goes out, one a day later is held back
and an approved template is sent with a button instead, and the customer's STOP is respected.
An agent claims a conversation and snoozes it; the clock moves and it opens again.  A customer
writes through WhatsApp Cloud (Meta's API): formatting arrives as WhatsApp's, statuses show.
On a Saturday a closed team answers by itself: a closed reply, an FAQ answer, and "agent"
hands over to a person (bridge/demo_auto.py).
No account, no network beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bridge.app import Bridge
from bridge.console.render import CLOSE_ACTION
from bridge.demo_auto import AutoAct, auto_config
from bridge.demo_canned import CANNED_CONFIG, CannedAct, write_replies
from bridge.demo_csat import CsatAct, with_csat
from bridge.demo_hours import HoursAct, with_targets
from bridge.demo_kpi import play_kpis
from bridge.demo_teams import TEAM_CONFIG, TeamsAct
from bridge.demo_whatsapp import WhatsAppCloudAct, whatsapp_config
from bridge.registry import settings_registry
from bridge.settings import load_settings
from bridge.standins.clock import OffsetClock
from bridge.standins.config import Secrets, standin_config
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.telegram import TelegramStandin
from bridge.standins.twilio import (
    CREATE,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    TwilioStandin,
    TwilioWebhookSender,
)
from bridge.standins.whatsapp import WhatsAppStandin
from vocab.mrkdwn import mrkdwn_to_plain

CHANNEL = "C0DEMO0001"
SIGNING_SECRET = "demo-signing-secret"
WEBHOOK_SECRET = "demo-webhook-secret"
AGENT = "U0AGENTDANA"
# A tiny stand-in "photo" (a JPEG header and some bytes): what matters is that it arrives intact.
WHATSAPP_FROM = "whatsapp:+14155238886"
BOB = "whatsapp:+14155550123"
CARLA = "whatsapp:+14155550177"
TEMPLATE_SID = "HX" + "0123456789abcdef" * 2
DEMO_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8


class WhatsAppAct:
    """Bob on WhatsApp: a reply, the 24-hour window, a template by button, STOP."""

    def __init__(self, slack: SlackStandin, twilio: TwilioStandin, agent: SlackEventSender,
                 session: aiohttp.ClientSession, port: int, clock: OffsetClock) -> None:
        self.slack, self.twilio, self.agent, self.clock = slack, twilio, agent, clock
        self.sender = TwilioWebhookSender(f"http://127.0.0.1:{port}/webhooks/twilio",
                                          DEFAULT_AUTH_TOKEN, session)
        self.seen: list[str] = []
        self.thread = ""

    async def bob_says(self, text: str) -> None:
        self.seen.append(f"  Bob (customer): {text}")
        form = self.sender.whatsapp(from_=BOB, body=text, profile_name="Bob")
        status, _ = await self.sender.post(form)
        assert status == 200, f"Twilio webhook answered {status}"

    async def agent_says(self, text: str) -> None:
        event = self.agent.message_event(channel=CHANNEL, user=AGENT, text=text,
                                         thread_ts=self.thread)
        status, _ = await self.agent.post(event)
        assert status == 200, f"slack event answered {status}"

    async def notice(self, count: int) -> dict[str, Any]:
        await self.slack.wait_for("chat.postMessage", count)
        await asyncio.sleep(0.2)
        return self.slack.thread(CHANNEL, self.thread)[-1]

    async def play(self, out: list[str]) -> bool:
        posts = len(self.slack.calls_to("chat.postMessage"))
        await self.bob_says("Hi, is the blue kettle back in stock?")
        await self.slack.wait_for("chat.postMessage", posts + 1)
        self.thread = str(self.slack.parents(CHANNEL)[-1]["ts"])
        await self.agent_says("Not yet, Bob. I'll tell you as soon as it is.")
        await self.twilio.wait_for(CREATE, 1)
        self.seen.append(f"  {self.twilio.sent[0]['body']}")

        self.clock.offset = 25 * 3600  # a day later: WhatsApp's 24-hour window has closed
        await self.agent_says("Good news: it's back!")
        held = await self.notice(posts + 2)
        out.append("WhatsApp, a day later:")
        out.append(f"  [bridge] {readable(held['text'])}")
        [button] = [e for b in held.get("blocks") or [] if b["type"] == "actions"
                    for e in b["elements"]]
        click = self.agent.block_action(channel=CHANNEL, user=AGENT, message=held,
                                        action_id=button["action_id"], value=button["value"])
        status, _ = await self.agent.post_interaction(click)
        assert status == 200, f"the template button answered {status}"
        await self.twilio.wait_for(CREATE, 2)
        out.append(f"  Dana clicked '{button['text']['text']}'")
        self.seen.append(f"  [approved template {self.twilio.sent[1]['params'].get('ContentSid')}"
                         f", variables {self.twilio.sent[1]['params'].get('ContentVariables')}]")

        await self.bob_says("STOP")
        await self.slack.wait_for("chat.postMessage", posts + 4)
        await self.agent_says("Sorry to see you go!")
        refused = await self.notice(posts + 5)
        out.append(f"  [bridge] {readable(refused['text'])}")
        out.append("What Bob saw on WhatsApp:")
        out.extend(self.seen)
        return (len(self.twilio.sent) == 2
                and self.twilio.sent[1]["params"].get("ContentSid") == TEMPLATE_SID
                and "opted out" in refused["text"])


async def _shown(read: Callable[[], str | bool], what: str) -> str:
    """Wait until `read()` returns something; fail saying `what` was awaited (10 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while not (got := read()):
        if loop.time() > deadline:
            raise TimeoutError(f"not within 10s: {what}")
        await asyncio.sleep(0.05)
    return str(got)


class OwnershipAct:
    """Ben on Telegram: Dana claims his conversation and snoozes it for two hours; the clock
    moves on and the conversation opens again by itself."""

    def __init__(self, whatsapp: WhatsAppAct, telegram: TelegramStandin) -> None:
        self.wa, self.telegram = whatsapp, telegram

    def _context(self) -> str:
        top = next(m for m in self.wa.slack.parents(CHANNEL) if m["ts"] == self.wa.thread)
        return next((str(b["elements"][0]["text"]) for b in top.get("blocks") or []
                     if b["type"] == "context"), "")

    async def play(self, out: list[str], session: aiohttp.ClientSession) -> bool:
        slack, posts = self.wa.slack, len(self.wa.slack.calls_to("chat.postMessage"))
        update = self.telegram.text_update(chat_id=616161, text="Can I change my delivery "
                                           "address?", first_name="Ben")
        status, _ = await self.telegram.deliver(update, session)
        assert status == 200, f"webhook answered {status}"
        await slack.wait_for("chat.postMessage", posts + 1)
        self.wa.thread = str(slack.parents(CHANNEL)[-1]["ts"])
        out.append("Ben, on Telegram: who has it, and where it stands:")
        await self.wa.agent_says("!claim")
        claimed = await _shown(lambda: AGENT in self._context() and self._context(),
                               "the parent naming the assignee")
        out.append(f"  Dana wrote '!claim'; the parent shows: {readable(claimed)}")
        await self.wa.agent_says("!snooze 2h")
        snoozed = await _shown(lambda: "Snoozed until" in self._context() and self._context(),
                               "the parent saying Snoozed until")
        out.append(f"  Dana wrote '!snooze 2h'; the parent shows: {readable(snoozed)}")
        self.wa.clock.offset += 2 * 3600 + 60
        woke = await _shown(lambda: "*Open*" in self._context() and self._context(),
                            "the snooze waking")
        out.append(f"  Two hours later (a moved clock) the parent shows: {readable(woke)}")
        lines = [str(m["text"]) for m in slack.thread(CHANNEL, self.wa.thread)[1:]]
        out.extend(f"  [bridge] {readable(line)}" for line in lines)
        return any("Snooze over" in line for line in lines) and AGENT in woke


class HandoffAct:
    """Carla moves from Telegram to WhatsApp with a handoff link: one thread throughout."""

    def __init__(self, whatsapp: WhatsAppAct, telegram: TelegramStandin) -> None:
        self.wa, self.telegram = whatsapp, telegram

    async def play(self, out: list[str], session: aiohttp.ClientSession) -> bool:
        slack, posts = self.wa.slack, len(self.wa.slack.calls_to("chat.postMessage"))
        update = self.telegram.text_update(chat_id=515151, text="Can I send the invoice on "
                                           "WhatsApp instead?", first_name="Carla")
        status, _ = await self.telegram.deliver(update, session)
        assert status == 200, f"webhook answered {status}"
        await slack.wait_for("chat.postMessage", posts + 1)
        self.wa.thread = str(slack.parents(CHANNEL)[-1]["ts"])
        sent = len(self.telegram.calls_to("sendMessage"))
        await self.wa.agent_says("!handoff whatsapp")
        [*_, invite] = await self.telegram.wait_for("sendMessage", sent + 1)
        found = re.search(r"LINK-[0-9A-Z]{12}", str(invite.params["text"]))
        assert found is not None, "no handoff code in the invitation"
        out.append("Carla, Telegram -> WhatsApp:")
        out.append(f"  Dana wrote '!handoff whatsapp'; Carla got on Telegram: "
                   f"{_plain(str(invite.params['text']))}")
        form = self.wa.sender.whatsapp(from_=CARLA, body=found.group(0), profile_name="Carla")
        status, _ = await self.wa.sender.post(form)
        assert status == 200, f"Twilio webhook answered {status}"
        out.append(f"  Carla opened the link and sent {found.group(0)} on WhatsApp")
        await slack.wait_for("chat.postMessage", posts + 3)
        await asyncio.sleep(0.2)
        sent = len(self.wa.twilio.sent)
        await self.wa.agent_says("Thanks Carla, send it here whenever you like.")
        await self.wa.twilio.wait_for(CREATE, sent + 1)
        out.append(f"  Dana's next reply went to {self.wa.twilio.sent[-1]['to']}: "
                   f"{self.wa.twilio.sent[-1]['body']}")
        await asyncio.sleep(0.3)
        for msg in slack.thread(CHANNEL, self.wa.thread)[1:]:
            out.append(f"  [thread] {readable(msg['text'])}")
        # Ann, Bob, Ben and Carla: four threads, WhatsApp did not start a fifth.
        return len(slack.parents(CHANNEL)) == 4 and self.wa.twilio.sent[-1]["to"] == CARLA


# The emoji the console's notices use, as a terminal shows them.
EMOJI = {"lock": "🔒", "white_circle": "⚪", "large_green_circle": "🟢", "hourglass": "⌛",
         "no_bell": "🔕", "link": "🔗", "outbox_tray": "📤", "warning": "⚠️", "eyes": "👀",
         "white_check_mark": "✅", "pencil2": "✏️", "arrows_counterclockwise": "🔄",
         "x": "❌", "bell": "🔔", "speech_balloon": "💬", "zzz": "💤", "bust_in_silhouette": "👤",
         "alarm_clock": "⏰", "hourglass_flowing_sand": "⏳", "busts_in_silhouette": "👥",
         "information_source": "ℹ️", "no_entry": "⛔", "scissors": "✂️", "unlock": "🔓",
         "twisted_rightwards_arrows": "🔀", "large_yellow_circle": "🟡", "arrow_right": "➡️",
         "arrow_left": "⬅️", "label": "🏷️"}
NAMES = {AGENT: "Dana"}


def readable(mrkdwn: str) -> str:
    """What Slack shows for a message: names for <@U…>, dates as text, links as
    `label (url)`, emoji as emoji, no markup."""
    text = re.sub(r":([a-z0-9_+-]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), mrkdwn)
    return mrkdwn_to_plain(text, NAMES)


def _plain(text: str) -> str:
    return html.unescape(re.sub(r"</?b>", "", text)).replace("\n", ": ", 1)


async def _play(workdir: Path, out: list[str]) -> bool:
    clock = OffsetClock()
    async with SlackStandin() as slack, TelegramStandin() as telegram, \
            TwilioStandin() as twilio, aiohttp.ClientSession() as session, \
            WhatsAppStandin(clock=clock) as wa:
        slack.add_user(AGENT, display_name="Dana", real_name="Dana Whitfield")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = workdir / "bridge.toml"
        config.write_text(standin_config(
            port=port, db=workdir / "demo.db", channel=CHANNEL, slack_api_url=slack.base_url,
            telegram_api_url=telegram.base_url, telegram_file_url=telegram.file_base_url,
            secrets=Secrets(slack.bot_token or "", SIGNING_SECRET, telegram.token,
                            WEBHOOK_SECRET),
            overrides={**auto_config(workdir, with_csat(with_targets(TEAM_CONFIG, AGENT)), AGENT),
                       **whatsapp_config(wa), **CANNED_CONFIG,
                       "outbox": {"base_delay": 0.2},
                       "connectors.twilio": {
                "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
                "auth_token": DEFAULT_AUTH_TOKEN, "whatsapp_from": WHATSAPP_FROM,
                "api_base_url": twilio.base_url,
                "templates": [{"name": "back_in_stock", "content_sid": TEMPLATE_SID,
                               "variables": {"1": "the blue kettle"}}]}},
        ), encoding="utf-8")
        write_replies(workdir)
        loaded = load_settings(config, settings_registry(),
                               environ={}, dotenv_dir=workdir)
        bridge = Bridge(loaded, sock=sock, clock=clock)
        await bridge.start()
        try:
            agent = SlackEventSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET,
                                     session, team_id=slack.team_id)
            customer: list[str] = []

            async def customer_says(text: str) -> None:
                customer.append(f"  Ann (customer): {text}")
                update = telegram.text_update(chat_id=424242, text=text, first_name="Ann",
                                              username="ann_k")
                status, _ = await telegram.deliver(update, session)
                assert status == 200, f"webhook answered {status}"

            await customer_says("Hi! My order #123 hasn't arrived yet.")
            await slack.wait_for("chat.postMessage", 1)
            thread_ts = slack.parents(CHANNEL)[0]["ts"]

            agent_posts: list[dict[str, Any]] = []

            async def agent_says(text: str) -> None:
                event = agent.message_event(channel=CHANNEL, user=AGENT, thread_ts=thread_ts,
                                            text=text)
                agent_posts.append(event["event"])
                status, _ = await agent.post(event)
                assert status == 200, f"slack event answered {status}"

            await agent_says("Sorry about that, Ann! It left our warehouse today & arrives Friday.")
            sent = await telegram.wait_for("sendMessage", 1)
            customer.append(f"  {_plain(str(sent[0].params['text']))}")

            await customer_says("Great, thank you!")
            await slack.wait_for("chat.postMessage", 2)

            # A picture: fetched from Telegram and uploaded into the thread.
            photo = telegram.text_update(chat_id=424242, text="x", first_name="Ann",
                                         username="ann_k")
            telegram.add_file("DEMOPHOTO", DEMO_JPEG, "photos/box.jpg")
            message = photo["message"]
            del message["text"]
            message["caption"] = "The box from last time was crushed, see?"
            message["photo"] = [{"file_id": "DEMOPHOTO", "file_unique_id": "demo1",
                                 "file_size": len(DEMO_JPEG), "width": 640, "height": 480}]
            customer.append(f"  Ann (customer): [photo, {len(DEMO_JPEG)} bytes] "
                            f"{message['caption']}")
            status, _ = await telegram.deliver(photo, session)
            assert status == 200, f"webhook answered {status}"
            await slack.wait_for("files.completeUploadExternal", 1)

            await agent_says("Note: offered a discount code if it's late again")
            await asyncio.sleep(0.5)  # give a wrongly relayed note time to show up
            notes_sent = len(telegram.calls_to("sendMessage")) - 1

            # The agent closes the conversation with the button on the thread's parent.
            parent = slack.parents(CHANNEL)[0]
            click = agent.block_action(channel=CHANNEL, user=AGENT, message=parent,
                                       action_id=CLOSE_ACTION, value="1")
            status, _ = await agent.post_interaction(click)
            assert status == 200, f"the Close button answered {status}"
            await slack.wait_for("chat.update", 1)
            await slack.wait_for("chat.postMessage", 4)  # parent, 2 replies, "Closed by"

            out.append("What the customer saw on Telegram:")
            out.extend(customer)
            out.append(f"What the Slack channel {CHANNEL} saw (one thread):")
            thread = slack.thread(CHANNEL, thread_ts) + agent_posts
            for msg in sorted(thread, key=lambda m: float(m["ts"])):
                who = "bridge" if msg.get("bot_id") else "Dana (agent)"
                text = str(msg["text"]).replace("\n", "\n      ")
                for file in msg.get("files") or []:
                    text += f" [file {file['name']}, {file['size']} bytes]"
                out.append(f"  [{who}] {readable(text)}")
            top = slack.parents(CHANNEL)[0]
            status_line = next((b["elements"][0]["text"] for b in top.get("blocks") or []
                                if b["type"] == "context"), "")
            out.append(f"  Thread parent now shows: {readable(status_line)}")
            uploads = [f for f in slack.files.values() if f.get("completed")]
            ok = (notes_sent == 0 and len(customer) == 4 and "Closed" in status_line
                  and len(uploads) == 1 and uploads[0]["content"] == DEMO_JPEG)
            out.append("Internal note: stored in the thread, not sent to the customer."
                       if notes_sent == 0 else "ERROR: the internal note reached the customer!")
            whatsapp = WhatsAppAct(slack, twilio, agent, session, port, clock)
            ok = await whatsapp.play(out) and ok
            ok = await OwnershipAct(whatsapp, telegram).play(out, session) and ok
            ok = await HandoffAct(whatsapp, telegram).play(out, session) and ok
            ok = await WhatsAppCloudAct(slack, wa, agent, port, CHANNEL, AGENT, readable,
                                        clock).play(out, session) and ok
            teams = TeamsAct(slack, telegram, agent, CHANNEL, AGENT, readable)
            ok = await teams.play(out, session) and ok
            hours = HoursAct(slack, telegram, agent, AGENT, clock, bridge.targets.tick, readable)
            ok = await hours.play(out, session) and ok
            ok = await AutoAct(slack, telegram, clock, readable).play(out, session) and ok
            canned = CannedAct(slack, telegram, agent, CHANNEL, AGENT, readable)
            ok = await canned.play(out, session) and ok
            ok = await CsatAct(slack, telegram, agent, AGENT, readable).play(out, session) and ok
            return await play_kpis(bridge, out) and ok
        finally:
            await bridge.stop()


async def run_demo(verbose: bool = False) -> int:
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, stream=sys.stderr)
    started = time.monotonic()
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bridge-demo-") as tmp:
        ok = await asyncio.wait_for(_play(Path(tmp), out), timeout=50)
    print("\n".join(out))
    print(f"demo {'finished' if ok else 'FAILED'} in {time.monotonic() - started:.1f}s")
    if ok:
        print("Next: connect a real workspace (Slack in Socket Mode and Telegram polling, no "
              "public URL needed): see 'Running without a public URL' in the README.")
    return 0 if ok else 1
