"""Routing: store what arrives (one transaction), then hand the new outbox rows to the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, tzinfo

from bridge.auto import AutoAnswers
from bridge.delivery import Delivery
from bridge.outbox import OutboxWorker
from bridge.survey_answers import Answers
from bridge.teams import Routing
from connectors.base import Connector
from storage.base import (
    Assignment,
    CustomerCard,
    How,
    LinkResult,
    Moved,
    QueueEntry,
    Store,
    Tagged,
)
from vocab.continuity import code_hash, find_code, new_code, normalize_phone
from vocab.models import (
    AgentEdit,
    AgentReply,
    Conversation,
    ConversationId,
    ConversationStatus,
    CustomerId,
    DeliveryState,
    InboundMessage,
    IngestResult,
    Link,
)


class Router:
    def __init__(self, store: Store, worker: OutboxWorker, delivery: Delivery,
                 slack_channel: str, clock: Callable[[], float] = time.time,
                 reopen_within: float = 0.0, handoff_ttl: float = 24 * 3600,
                 assign_on_first_reply: bool = False, zone: tzinfo = UTC,
                 routing: Routing | None = None, answers: Answers | None = None) -> None:
        self.store = store
        self.worker = worker
        self.delivery = delivery
        self.slack_channel = slack_channel
        self.clock = clock
        self.reopen_within = reopen_within  # seconds
        self.handoff_ttl = handoff_ttl  # seconds a handoff code stays valid
        self.assign_on_first_reply = assign_on_first_reply
        self.zone = zone  # the team's time zone: snoozes to "tomorrow 9:00"
        self.routing = routing  # teams and rules: the channel a new conversation opens in
        self.answers = answers  # surveys: a close asks, an answer is recorded (not ingested)
        self.auto: AutoAnswers | None = None  # closed replies, greetings, the FAQ (issue 21)

    async def ingest(self, items: Sequence[InboundMessage]) -> list[IngestResult]:
        """Customer messages: returns once they are committed (then the webhook may say 200)."""
        items = [evidence(item) for item in items]
        if "email" not in self.delivery.connectors:  # no email to continue on: the web only
            items = [item.model_copy(update={"reply_email": None}) if item.reply_email
                     else item for item in items]
        if self.answers is not None:
            items = await self.answers.intercept(items)
        else:
            items = [item for item in items if item.choice is None or item.text]
        results: list[IngestResult] = []
        if self.routing is not None and self.routing.cold():
            await asyncio.to_thread(self.routing.warm)  # the language models, once
        # The rules choose each message's channel (used only if it opens a conversation);
        # consecutive messages bound for one channel are stored together, in order.
        for channel, run in await self._runs(items):
            results += await self.store.ingest_inbound(run, channel, self.clock(),
                                                       self.reopen_within)
        for item, result in zip(items, results, strict=True):
            if not result.duplicate and result.message_id is not None:
                self.delivery.remember(result.message_id, item)
            self.worker.submit(result.outbox)
        if self.answers is not None:
            await self.answers.remember_languages(items, results)
        if self.auto is not None:
            await self.auto.after_ingest(items, results)
        return results

    async def _runs(self, items: Sequence[InboundMessage],
                    ) -> list[tuple[str, list[InboundMessage]]]:
        runs: list[tuple[str, list[InboundMessage]]] = []
        for item in items:
            channel = self.slack_channel
            if self.routing is not None:
                tags = (await self.store.customer_tags(item.connector, item.address)
                        if self.routing.uses_customer_tags else frozenset[str]())
                channel = self.routing.choose(item, tags).channel
            if runs and runs[-1][0] == channel:
                runs[-1][1].append(item)
            else:
                runs.append((channel, [item]))
        return runs

    async def ingest_reply(self, reply: AgentReply) -> IngestResult:
        """An agent's thread reply or note: committed before Slack gets its 200."""
        result = await self.store.ingest_agent_reply(reply, self.clock())
        self.worker.submit(result.outbox)
        if (self.assign_on_first_reply and not reply.is_note and not result.duplicate
                and result.conversation_id is not None and result.message_id is not None):
            # Taken only while nobody holds it: a conditional change of its own.
            await self.assign(result.conversation_id, reply.slack_user,
                              f"<@{reply.slack_user}>", "first_reply")
        return result

    async def ingest_edit(self, edit: AgentEdit) -> IngestResult:
        """An agent edited or deleted a reply in Slack."""
        result = await self.store.ingest_agent_edit(edit, self.clock())
        self.worker.submit(result.outbox)
        return result

    async def set_status(self, conversation_id: ConversationId, status: ConversationStatus,
                         actor: str, until: float | None = None,
                         request: str | None = None) -> IngestResult:
        """Close, reopen, pending, snooze (from a button, a reaction, a shortcut or a thread
        command)."""
        result = await self.store.set_status(conversation_id, status, actor, self.clock(),
                                             until, request)
        self.worker.submit(result.outbox)
        if (self.answers is not None and status is ConversationStatus.CLOSED
                and not result.duplicate and actor.startswith("<@")):
            await self.answers.surveys.closed(conversation_id)  # an agent closed it
        return result

    async def assign(self, conversation_id: ConversationId, user: str | None, actor: str,
                     how: How) -> Assignment:
        """Claim, assign, unassign (from a command, a button, the picker or a reaction)."""
        result = await self.store.assign(conversation_id, user, actor, how, self.clock())
        self.worker.submit(result.outbox)
        return result

    # -- teams -------------------------------------------------------------------------------
    async def transfer(self, conversation_id: ConversationId, team: str,
                       actor: str) -> Moved | str:
        """`!transfer <team>` and the parent's picker: what was done, or why nothing was."""
        teams = self.routing.teams if self.routing is not None else {}
        target = teams.get(team)
        if target is None:
            known = ", ".join(sorted(teams)) or "none are configured"
            return f"there is no team `{team}` (teams: {known})"
        conv = await self.store.get_conversation(conversation_id)
        if conv is None:
            return "the conversation is gone"
        assert self.routing is not None
        here = self.routing.by_channel(conv.slack_channel)
        result = await self.store.move(conversation_id, target.channel, target.name,
                                       here.name if here is not None else "support",
                                       target.members or None, actor, self.clock())
        self.worker.submit(result.outbox)
        return result

    async def tag(self, conversation_id: ConversationId, word: str, add: bool) -> Tagged:
        result = await self.store.tag(conversation_id, word, add, self.clock())
        self.worker.submit(result.outbox)
        return result

    async def queue(self) -> list[QueueEntry]:
        return await self.store.queue()

    async def moved_thread(self, channel: str, thread_ts: str) -> Conversation | None:
        """The conversation that moved away from this thread (to its new one)."""
        found = await self.store.moved_thread(channel, thread_ts)
        return None if found is None else await self.store.get_conversation(found)

    async def wake_snoozed(self) -> int:
        """Open the snoozed conversations whose time has come; how many rows it queued."""
        out = await self.store.wake_snoozed(self.clock())
        self.worker.submit(out)
        return len(out)

    def now(self) -> float:
        return self.clock()

    async def retry(self, ids: Sequence[int]) -> list[int]:
        """Queue failed deliveries again (the thread's Retry button)."""
        done = await self.store.retry_outbox(ids, False, self.clock())
        self.worker.submit(await self.store.get_outbox(done))
        return list(done)

    async def conversation_by_thread(self, channel: str, thread_ts: str) -> Conversation | None:
        return await self.store.conversation_by_thread(channel, thread_ts)

    async def receipt(self, connector: str, platform_id: str, state: DeliveryState,
                      error: str | None, templates: Sequence[str] = ()) -> None:
        """A platform's delivery receipt (Twilio status callback...): committed, then shown."""
        self.worker.submit(await self.store.record_receipt(connector, platform_id, state, error,
                                                           self.clock(), templates))

    # -- one customer across channels --------------------------------------------------------
    def channels(self) -> dict[str, Connector]:
        """Every channel the enabled connectors serve, by the name agents use."""
        return {channel: connector for connector in self.delivery.connectors.values()
                for channel in connector.channels()}

    async def handoff(self, reply: AgentReply, channel: str) -> IngestResult | str:
        """`!handoff <channel>`: send the customer a one-time code for another channel.
        Returns what was stored, or why nothing was (for the agent)."""
        channels = self.channels()
        connector = channels.get(channel)
        if connector is None:
            known = ", ".join(sorted(channels)) or "none"
            return f"no enabled connector serves `{channel}` (channels here: {known})"
        code = new_code()
        invite = connector.handoff_invite(channel, code)
        if invite is None:
            return f"the {channel} connector cannot take a handoff as configured"
        now = self.clock()
        result = await self.store.issue_handoff(reply, invite, code_hash(code), channel,
                                                now + self.handoff_ttl, now)
        self.worker.submit(result.outbox)
        return result

    async def find_customers(self, conversation: Conversation, query: str,
                             limit: int = 5) -> list[CustomerCard]:
        return await self.store.find_customers(query, normalize_phone(query),
                                               conversation.customer_id, limit)

    async def customer_card(self, customer_id: CustomerId) -> CustomerCard | None:
        return await self.store.customer_card(customer_id)

    async def links(self, customer_id: CustomerId) -> list[Link]:
        return await self.store.links(customer_id)

    async def link(self, conversation_id: ConversationId, other: CustomerId, actor: str,
                   evidence: str) -> LinkResult:
        result = await self.store.link_customers(conversation_id, other, actor, evidence,
                                                 self.clock())
        self.worker.submit(result.outbox)
        return result

    async def unlink(self, conversation_id: ConversationId, link_id: int | None,
                     actor: str, request: str | None = None) -> LinkResult:
        result = await self.store.undo_link(conversation_id, link_id, actor, self.clock(),
                                            request)
        self.worker.submit(result.outbox)
        return result


def evidence(item: InboundMessage) -> InboundMessage:
    """What proves who the sender is, normalized before the store sees it: the phone number
    in E.164 (dropped unless it is a possible number), a handoff code from the platform's own
    field or the text (a typed or prefilled code on SMS and WhatsApp).  An edit of an earlier
    message proves nothing: its text is not searched."""
    phone = normalize_phone(item.verified_phone) if item.verified_phone else None
    code = find_code(item.handoff_code, None if item.edit_of is not None else item.text)
    email = item.verified_email.strip().lower() if item.verified_email else None
    if email is not None and ("@" not in email or len(email) > 254):
        email = None
    if phone == item.verified_phone and code == item.handoff_code and \
            email == item.verified_email:
        return item
    return item.model_copy(update={"verified_phone": phone, "handoff_code": code,
                                   "verified_email": email})
