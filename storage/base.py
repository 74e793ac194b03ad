"""The conversation store's interface, implemented for SQLite and PostgreSQL."""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from storage.kpi import BusinessHours as BusinessHours

# The KPIs' types, for the core (which imports only this module of storage/).
from storage.kpi import By as By
from storage.kpi import Figures as Figures
from storage.kpi import KpiQuery as KpiQuery
from storage.kpi import KpiReport as KpiReport
from vocab.events import Event
from vocab.models import (
    AgentEdit,
    AgentReply,
    Change,
    Conversation,
    ConversationId,
    ConversationStatus,
    CustomerId,
    DeliveryState,
    Identity,
    IdentityId,
    InboundMessage,
    IngestResult,
    Link,
    Message,
    MessageId,
    OutboxId,
    OutboxItem,
)
from vocab.targets import Active, Owed, Target, TargetChange, TargetStart


class StoreError(Exception):
    """The store cannot be used as it is (schema too new, bad URL...)."""


class SchemaTooNew(StoreError):
    pass


class SchemaOutdated(StoreError):
    pass


class Outcome(enum.StrEnum):
    DONE = "done"  # delivered
    RETRY = "retry"  # try again at `next_attempt_at`
    FAILED = "failed"  # gave up: permanent error or last attempt
    BLOCKED = "blocked"  # deliberately not delivered


class OutboxResult(BaseModel):
    """What happened to one outbox item; applied by `Store.finish_outbox` in one transaction."""

    model_config = ConfigDict(frozen=True)

    item_id: OutboxId
    outcome: Outcome
    attempts: int
    next_attempt_at: float = 0.0
    error: str | None = None
    message_id: MessageId | None = None
    message_state: DeliveryState | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    thread_ts: str | None = None  # set when this post started the conversation's thread
    conversation_id: ConversationId | None = None
    sent_platform_ids: tuple[str, ...] = ()
    author_name: str | None = None
    notice: str | None = None  # post this text into the thread (a failure the agent must see)
    notice_retry: OutboxId | None = None  # ...with a "Retry" button that queues this row again
    notice_templates: tuple[str, ...] = ()  # ...with a "Send template" button per name
    opted_out_identity: IdentityId | None = None  # the platform says the customer opted out


class CustomerCard(BaseModel):
    """A customer as `!link` shows them: identities, how many conversations, the open one."""

    model_config = ConfigDict(frozen=True)

    customer_id: CustomerId
    display_name: str
    identities: list[Identity]
    conversations: int
    open_conversation: int | None = None


class HistoryEntry(BaseModel):
    """An earlier conversation, as a returning customer's new thread lists it."""

    model_config = ConfigDict(frozen=True)

    conversation: Conversation
    first_line: str
    channel: str


class LinkResult(BaseModel):
    """What `link_customers` / `undo_link` did."""

    model_config = ConfigDict(frozen=True)

    found: bool  # False: nothing to link or undo (same customer, unknown link...)
    already: bool = False  # done before: nothing changed
    link_id: int | None = None
    outbox: tuple[OutboxItem, ...] = ()


How = Literal["claim", "assign", "unassign", "first_reply"]


class Assignment(BaseModel):
    """What an assignee change did.  `refused`: a claim on a conversation `holder` holds."""

    model_config = ConfigDict(frozen=True)

    found: bool
    changed: bool = False
    refused: bool = False
    holder: str | None = None  # the assignee now
    outbox: tuple[OutboxItem, ...] = ()


class Tagged(BaseModel):
    """What `!tag`/`!untag` did: the tags of the conversation (or, `customer`, of the
    customer) now."""

    model_config = ConfigDict(frozen=True)

    found: bool
    changed: bool = False
    customer: bool = False
    tags: tuple[str, ...] = ()
    outbox: tuple[OutboxItem, ...] = ()


class Moved(BaseModel):
    """What a transfer did.  `already`: the conversation is in that team's channel;
    `not_posted`: its parent is not in Slack yet."""

    model_config = ConfigDict(frozen=True)

    found: bool
    changed: bool = False
    already: bool = False
    not_posted: bool = False
    old_channel: str | None = None
    old_thread: str | None = None
    outbox: tuple[OutboxItem, ...] = ()


class QueueEntry(BaseModel):
    """An open conversation as the queue lists it.  `waiting_since`: the customer's oldest
    message not yet answered (None: the last word was an agent's)."""

    model_config = ConfigDict(frozen=True)

    conversation_id: ConversationId
    slack_channel: str | None
    slack_thread_ts: str | None
    assignee: str | None
    customer: str
    connector: str
    created_at: float
    waiting_since: float | None
    target: Target | None = None  # the response-time target its parent shows, if any


class Survey(BaseModel):
    """A CSAT or NPS survey of one conversation (issue 23), as the `surveys` row keeps it."""

    model_config = ConfigDict(frozen=True)

    id: int
    conversation_id: ConversationId
    customer_id: CustomerId
    kind: str  # "csat" or "nps"
    team: str
    assignee: str | None
    connector: str
    token: str
    state: str  # scheduled, sent, answered, cancelled, blocked
    reason: str | None  # blocked: why; answered: "comment" while a comment is awaited
    scale: str  # "1-5", "emoji" or "0-10"
    score: int | None
    comment: str | None
    created_at: float
    sent_at: float | None
    answered_at: float | None
    expires_at: float | None


class MediaFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    filename: str
    mime_type: str
    data: bytes


class AutoFacts(BaseModel):
    """What automatic answers decide from (issue 21), for one customer message."""

    model_config = ConfigDict(frozen=True)

    last_agent_reply_at: float | None  # a person's reply from Slack (never an automatic one)
    person_requested: bool  # the customer asked for a person: the FAQ stays quiet
    customer_wrote_since_faq: bool  # no FAQ answer yet, or the customer wrote after it
    first_message: bool  # the conversation's first customer message
    assignee: str | None
    # (opened, first reply by a person) of the team channel's latest answered conversations
    recent_waits: tuple[tuple[float, float], ...] = ()
    conversation: Conversation | None = None  # read in the same transaction
    opted_out: bool = False  # the conversation's identity opted out (STOP)
# -- customers' data (issue 28) -----------------------------------------------------------
class ConversationBrief(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    connector: str
    status: str
    created_at: float


class PersonFound(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: int
    display_name: str
    identities: list[Identity]
    conversations: list[ConversationBrief]


class SlackThread(BaseModel):
    model_config = ConfigDict(frozen=True)

    conversation_id: int
    channel: str
    thread_ts: str


class Erasure(BaseModel):
    """What `erase_customer` did.  `agent_replies`: (channel, ts) of agents' own Slack
    messages in the customer's threads, which the bridge cannot delete."""

    model_config = ConfigDict(frozen=True)

    found: bool
    already: bool = False
    conversations: int = 0
    messages: int = 0
    identities: int = 0
    threads: tuple[SlackThread, ...] = ()
    agent_replies: tuple[tuple[str, str], ...] = ()
    outbox: tuple[OutboxItem, ...] = ()


class Retention(BaseModel):
    model_config = ConfigDict(frozen=True)

    ran: bool  # False: another instance (or an earlier run) did it within the interval
    messages: int = 0
    media: int = 0
    outbox: int = 0


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    at: float
    actor: str
    action: str
    customer_id: int | None
    other_customer_id: int | None
    detail: str


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied.  Raise `SchemaTooNew`."""
        ...

    async def check_schema(self) -> None:
        """Raise `SchemaTooNew` or `SchemaOutdated` unless the schema matches the code."""
        ...

    async def ingest_inbound(
        self, items: Sequence[InboundMessage], slack_channel: str, now: float,
        reopen_within: float = 0.0,
    ) -> list[IngestResult]:
        """Store customer messages (deduplicated) with their Slack outbox rows; commit.

        A customer's latest conversation is reused while open, reopened when it was closed
        less than `reopen_within` seconds ago, and otherwise continued by a new one."""
        ...

    async def ingest_agent_edit(self, edit: AgentEdit, now: float) -> IngestResult:
        """An agent edited or deleted a reply: record it, queue the platform edit/delete."""
        ...

    async def set_status(self, conversation_id: ConversationId, status: ConversationStatus,
                         actor: str, now: float, until: float | None = None,
                         request: str | None = None) -> IngestResult:
        """Open, pending, snoozed until `until`, or closed; `duplicate` is True when nothing
        changed, or when `request` (a Slack event id) was seen before.  Kept in the history;
        queues the redraw and a line in the thread."""
        ...

    async def assign(self, conversation_id: ConversationId, user: str | None, actor: str,
                     how: How, now: float) -> Assignment:
        """Make `user` (a Slack user id; None: nobody) the assignee.  A claim or a first reply
        is refused where someone else holds it (`Assignment.refused`, `holder`)."""
        ...

    async def wake_snoozed(self, now: float) -> list[OutboxItem]:
        """Open the snoozed conversations whose time has come, each exactly once (several
        instances may call this at the same time)."""
        ...

    async def changes(self, conversation_id: ConversationId) -> list[Change]:
        """Every change of the conversation's assignee and status, oldest first."""
        ...

    async def put_media(self, token: str, filename: str, mime_type: str, data: bytes,
                        now: float, expires_at: float,
                        conversation_id: int | None = None) -> None: ...

    async def get_media(self, token: str, now: float) -> MediaFile | None: ...

    async def get_outbox(self, ids: Sequence[int]) -> list[OutboxItem]: ...

    async def message_by_slack_ts(self, channel: str, ts: str) -> Message | None: ...

    async def first_message(self, conversation_id: ConversationId) -> Message | None: ...

    async def get_identity(self, identity_id: IdentityId) -> Identity | None: ...

    async def record_receipt(self, connector: str, platform_id: str, state: DeliveryState,
                             error: str | None, now: float,
                             templates: Sequence[str] = ()) -> list[OutboxItem]:
        """A delivery receipt: stored, and applied (forward only) to the message it is for."""
        ...

    async def ingest_agent_reply(self, reply: AgentReply, now: float) -> IngestResult:
        """Store an agent's thread reply or note; queue it for the customer unless a note."""
        ...

    async def finish_outbox(self, results: Sequence[OutboxResult], now: float) -> list[OutboxItem]:
        """Apply delivery outcomes; return outbox items this created (notices)."""
        ...

    async def mark_attempted(self, item_id: OutboxId, now: float) -> None:
        """A send of this row starts now (written before a Slack call): while the row stays
        pending, whether the send went out is unknown and is looked up before sending again."""
        ...

    async def pending_outbox(self, limit: int, updated_since: float = 0.0) -> list[OutboxItem]:
        """Pending rows in id order; only those written at or after `updated_since`."""
        ...

    async def list_outbox(self, statuses: Sequence[str]) -> list[OutboxItem]: ...

    async def retry_outbox(
        self, ids: Sequence[int], all_failed: bool, now: float
    ) -> list[OutboxId]: ...

    async def get_conversation(self, conversation_id: ConversationId) -> Conversation | None: ...

    async def conversation_by_thread(self, channel: str, thread_ts: str) -> Conversation | None: ...

    async def get_message(self, message_id: MessageId) -> Message | None: ...

    async def messages(self, conversation_id: ConversationId) -> list[Message]: ...

    async def get_state(self, connector: str, key: str) -> str | None: ...

    async def set_state(self, connector: str, key: str, value: str, now: float) -> None: ...

    async def prune_state(self, connector: str, prefix: str, before: float) -> int:
        """Delete a connector's state keys starting with `prefix` set before `before`."""
        ...

    async def set_opted_out(self, identity_id: IdentityId, opted_out: bool, now: float) -> bool:
        """Record that the customer opted out (or back in) on this identity; True if changed."""
        ...

    # -- one customer across channels ------------------------------------------------------
    async def issue_handoff(self, reply: AgentReply, invite: str, code_hash: str, channel: str,
                            expires_at: float, now: float) -> IngestResult:
        """Queue `invite` to the customer like a reply and keep the code (its hash)."""
        ...

    async def link_customers(self, conversation_id: ConversationId, other: CustomerId,
                             actor: str, evidence: str, now: float) -> LinkResult:
        """An agent joins customer `other` into this conversation's customer."""
        ...

    async def undo_link(self, conversation_id: ConversationId, link_id: int | None, actor: str,
                        now: float, request: str | None = None) -> LinkResult:
        """Undo a link of this conversation's customer (the latest when `link_id` is None);
        `request` (the command's Slack ts) makes a redelivered command a no-op."""
        ...

    async def customer_card(self, customer_id: CustomerId) -> CustomerCard | None: ...

    async def identity_count(self, customer_id: CustomerId) -> int:
        """How many identities the customer has (one query: it runs on every reply)."""
        ...

    async def find_customers(self, query: str, phone: str | None, exclude: CustomerId,
                             limit: int) -> list[CustomerCard]: ...

    async def history(self, customer_id: CustomerId, exclude: ConversationId,
                      limit: int) -> list[HistoryEntry]: ...

    async def links(self, customer_id: CustomerId) -> list[Link]: ...

    # -- teams (issue 19) ---------------------------------------------------------------------
    async def tag(self, conversation_id: ConversationId, word: str, add: bool,
                  now: float) -> Tagged:
        """Add or remove a tag (`customer:<word>`: on the customer)."""
        ...

    async def customer_tags(self, connector: str, address: str) -> frozenset[str]:
        """The tags of the customer writing from this address (routing's `customer_tags`)."""
        ...

    async def move(self, conversation_id: ConversationId, channel: str, team: str,
                   from_team: str, members: Collection[str] | None, actor: str,
                   now: float) -> Moved:
        """Move a conversation to another team's channel (see storage/teams.py)."""
        ...

    async def moved_thread(self, channel: str, thread_ts: str) -> ConversationId | None:
        """The conversation that moved away from this Slack thread, if one did."""
        ...

    async def queue(self) -> list[QueueEntry]:
        """Every open conversation, the longest-waiting customer first."""
        ...

    async def first_request(self, request_id: str, now: float) -> bool:
        """Record a Slack request (an event or interaction id) as handled: True the first
        time, False for a redelivery or a replay (the `slack_events` table other commands
        use inside their own transactions)."""
        ...

    # -- surveys (issue 23) -----------------------------------------------------------------
    async def open_survey(self, conversation_id: ConversationId, kind: str, team: str,
                          scale: str, token: str, question: str, author: str,
                          now: float) -> OutboxItem | None:
        """Schedule the conversation's one survey of `kind` (None: it has one)."""
        ...

    async def survey_follow_up(self, survey: Survey, question: str, author: str,
                               payload: str, now: float) -> OutboxItem: ...

    async def survey_by_token(self, token: str) -> Survey | None: ...

    async def surveys_of(self, conversation_id: ConversationId) -> list[Survey]: ...

    async def awaiting_survey(self, connector: str, address: str, now: float) -> Survey | None:
        """The newest unanswered survey sent to this address, within its days."""
        ...

    async def survey_inbound(self, connector: str, address: str, seen: str, now: float,
                             since: float) -> tuple[bool, Survey | None, Survey | None]:
        """(a redelivered answer, the survey waiting for an answer, the one waiting for a
        comment) for a customer message, in one read."""
        ...

    async def survey_key(self, value: str, now: float) -> str:
        """The surveys' signing key (`value` if none is stored yet)."""
        ...

    async def last_nps(self, customer_id: CustomerId) -> float | None: ...

    async def mark_survey(self, survey_id: int, state: str, reason: str | None, now: float,
                          expires_at: float | None = None) -> bool:
        """A scheduled survey sent, cancelled or blocked; False: it was not scheduled."""
        ...

    async def answer_survey(self, survey_id: int, score: int, comment: str | None,
                            ask_comment: bool, notices: tuple[str, ...],
                            now: float, seen: str | None = None) -> list[OutboxItem] | None:
        """Record the answer once (None: answered before, expired or never sent)."""
        ...

    async def comment_survey(self, survey_id: int, comment: str, notices: tuple[str, ...],
                             now: float, seen: str | None = None) -> list[OutboxItem] | None: ...

    # -- KPIs (issue 24) ----------------------------------------------------------------------
    async def kpis(self, query: KpiQuery, hours: BusinessHours | None = None) -> KpiReport:
        """The figures of storage/kpi.py for a period (read apart from the write path)."""
        ...

    async def claim_digest(self, key: str, take: bool, now: float) -> bool:
        """Take the posting of the KPI digest `key` (True: this caller posts it), or give it
        back (`take` False) after a failed post."""
        ...

    # -- automatic answers (issue 21) ---------------------------------------------------------
    async def auto_facts(self, conversation_id: ConversationId,
                         message_id: MessageId) -> AutoFacts:
        """What the rules of automatic answers look at, for this customer message (one read:
        the conversation and its identity's opt-out too; not the recent waits)."""
        ...

    async def recent_waits(self, slack_channel: str | None) -> tuple[tuple[float, float], ...]:
        """(opened, first reply by a person) of the channel's latest answered conversations."""
        ...

    async def send_auto(self, conversation_id: ConversationId, kind: str, period: str,
                        text: str, origin: str, event: Event, now: float,
                        score: float | None = None, payload: str = "") -> list[OutboxItem]:
        """Queue an automatic answer once per conversation, kind and period (see
        storage/auto.py); nothing when it was already given."""
        ...

    async def person_requested(self, conversation_id: ConversationId, event: Event,
                               now: float) -> list[OutboxItem]:
        """Record that the customer asked for a person (once), telling the thread."""
        ...
    # -- customers' data (issue 28) -----------------------------------------------------------
    async def find_people(self, query: str, limit: int = 50) -> list[PersonFound]:
        """Customers (not erased) matching a name, phone, email, @username, address or
        conversation id."""
        ...

    async def export_customer(self, customer_id: int, actor: str,
                              now: float) -> dict[str, Any] | None:
        """Everything held about the customer, as plain data (audited); None: unknown."""
        ...

    async def media_data(self, tokens: list[str]) -> list[tuple[str, bytes]]: ...

    async def erase_customer(self, customer_id: int, actor: str, now: float) -> Erasure:
        """Remove or anonymize everything personal about the customer (audited); queue the
        emptying of their Slack threads."""
        ...

    async def retention(self, now: float, messages_before: float | None,
                        media_before: float | None, actor: str,
                        interval: float) -> Retention:
        """Empty old closed conversations and delete old media, at most once per `interval`
        seconds across instances (0: now)."""
        ...

    async def audit_entries(self, since: float, limit: int = 10_000) -> list[AuditEntry]: ...
    # -- response-time targets (storage/targets.py) -------------------------------------------
    async def owed_targets(self, updated_since: float = 0.0) -> list[Owed]:
        """Conversations not closed (changed since `updated_since`), with the wait that
        decides their targets."""
        ...

    async def active_targets(self) -> list[Active]:
        """Targets still to be settled, with their conversation's state."""
        ...

    async def start_target(self, plan: TargetStart, now: float) -> list[OutboxItem]:
        """Start a target once per conversation, kind and start; the redraw it queued."""
        ...

    async def change_target(self, move: TargetChange, now: float,
                            events: Sequence[Event] = ()) -> list[OutboxItem]:
        """A conditional change (nothing when another instance made it first)."""
        ...

    async def shown_target(self, conversation_id: ConversationId) -> Target | None:
        """The target a conversation's parent shows, if any."""
        ...

    async def parent_extras(self, conversation_id: ConversationId
                            ) -> tuple[list[Survey], Target | None]:
        """`surveys_of` and `shown_target` in one read: what a thread's parent shows."""
        ...

    async def targets(self, conversation_id: ConversationId) -> list[Target]:
        """Every target of a conversation, oldest first (the KPIs read them)."""
        ...

# -- canned replies (issue 22) -------------------------------------------------------------
SaveOutcome = Literal["saved", "replaced", "taken"]


@dataclass(frozen=True)
class StoredReply:
    id: int
    scope: str  # user:<id> or team:<name>
    name: str
    title: str
    body: str
    owner: str
    updated_at: float


@dataclass(frozen=True)
class Preview:
    token: str
    conversation_id: ConversationId
    slack_channel: str
    thread_ts: str
    slack_user: str
    name: str
    text: str
    attachments: str  # JSON list of file paths
    state: str
    post_ts: str | None


class CannedStore(Protocol):
    """What the canned replies need of the store (`SQLStore` implements it)."""

    async def save_canned(self, scope: str, name: str, title: str, body: str, owner: str,
                          now: float) -> SaveOutcome: ...

    async def delete_canned(self, scopes: Sequence[str], name: str, owner: str) -> str | None: ...

    async def canned_replies(self, scopes: Collection[str]) -> list[StoredReply]: ...

    async def set_customer_field(self, customer_id: CustomerId, name: str, value: str,
                                 set_by: str, now: float) -> None: ...

    async def customer_fields(self, customer_id: CustomerId) -> dict[str, str]: ...

    async def put_preview(self, preview: Preview, now: float) -> None: ...

    async def claim_preview(self, token: str, user: str, text: str | None,
                            now: float) -> Preview | None: ...

    async def finish_preview(self, token: str, state: str, post_ts: str | None,
                             now: float) -> None: ...

    async def get_preview(self, token: str) -> Preview | None: ...

    async def messages(self, conversation_id: ConversationId) -> list[Message]: ...

    async def customer_card(self, customer_id: CustomerId) -> CustomerCard | None: ...
