"""The bridge's vocabulary: ids, customers, identities, conversations, messages.

This module imports nothing of ours; every other layer speaks in these types.
"""

from __future__ import annotations

import enum
from typing import Literal, NewType

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vocab.untrusted import clean_strings

CustomerId = NewType("CustomerId", int)
IdentityId = NewType("IdentityId", int)
ConversationId = NewType("ConversationId", int)
MessageId = NewType("MessageId", int)
OutboxId = NewType("OutboxId", int)


class Direction(enum.StrEnum):
    INBOUND = "in"  # customer -> bridge -> Slack
    OUTBOUND = "out"  # agent -> bridge -> customer
    NOTE = "note"  # internal note written in the thread, never sent


class DeliveryState(enum.StrEnum):
    """Where a message is on its way."""

    RECEIVED = "received"  # inbound, stored, not yet in Slack
    POSTED = "posted"  # inbound, visible in the Slack thread
    QUEUED = "queued"  # outbound, waiting in the outbox
    SENT = "sent"  # outbound, accepted by the platform
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"  # gave up after the last retry, or a permanent error
    BLOCKED = "blocked"  # never sent on purpose (outsider, stranger)
    NOTE = "note"  # internal note, stored only
    DELETED = "deleted"  # outbound, deleted by the agent in Slack (and on the platform)


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"  # waiting for the customer: their next message opens it again
    SNOOZED = "snoozed"  # back to open at `snooze_until`, or when the customer writes
    CLOSED = "closed"


class FromOutside(BaseModel):
    """A model built from outside input: every string it is given goes through
    `vocab.untrusted.clean_text` (no lone surrogates, no NUL), so every store accepts it,
    whichever parser built it.  The one place the rule is applied to text."""

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: object) -> object:
        if isinstance(data, dict):
            return clean_strings(dict(data))
        return data


class Attachment(FromOutside):
    model_config = ConfigDict(frozen=True)

    kind: str  # "photo", "document", ...
    platform_file_id: str | None = None
    filename: str | None = None
    mime_type: str | None = None
    size: int | None = None
    url: str | None = None


class Customer(BaseModel):
    id: CustomerId
    display_name: str
    created_at: float


class Identity(BaseModel):
    """One address of a customer on one connector (a Telegram user, a phone number...)."""

    id: IdentityId
    customer_id: CustomerId
    connector: str
    address: str
    display_name: str = ""
    username: str | None = None
    last_inbound_at: float | None = None  # when the customer last wrote from this address
    opted_out_at: float | None = None  # set while the customer has asked not to be written to
    channel: str = ""  # "telegram", "sms", "whatsapp", "messenger", "email"...
    # Made from an address nobody proved (the web chat's offline prompt): replies may go
    # there, but it is never evidence that two customers are one person.
    unverified: bool = False
    # Replies sent to this identity are also shown on that one (the web chat it was left in).
    shown_on: IdentityId | None = None


class Conversation(BaseModel):
    id: ConversationId
    customer_id: CustomerId
    identity_id: IdentityId  # where replies go
    connector: str
    address: str
    status: ConversationStatus
    slack_channel: str | None = None
    slack_thread_ts: str | None = None
    created_at: float
    last_inbound_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    previous_id: ConversationId | None = None  # the closed conversation this one continues
    merged_into: ConversationId | None = None  # its history joined this one's thread (a link)
    assignee: str | None = None  # the Slack user id of the agent who holds it
    status_at: float | None = None  # when the status last changed (None: since created)
    status_by: str | None = None  # who changed it: the agent as <@U...>, "customer", "bridge"
    snooze_until: float | None = None  # while snoozed
    tags: tuple[str, ...] = ()  # `!tag <word>`
    customer_tags: tuple[str, ...] = ()  # `!tag customer:<word>`: the customer's (no prefix)


class Change(BaseModel):
    """One change of a conversation's assignee or status, as the history keeps it."""

    model_config = ConfigDict(frozen=True)

    id: int
    conversation_id: ConversationId
    kind: Literal["assignee", "status"]
    old_value: str | None  # a user id (assignee) or a status; None: unassigned
    new_value: str | None
    until_at: float | None = None  # a snooze's end
    actor: str  # the agent as <@U...>, "customer" or "bridge"
    created_at: float


class Message(BaseModel):
    id: MessageId
    conversation_id: ConversationId
    direction: Direction
    connector: str
    text: str
    attachments: list[Attachment] = Field(default_factory=list)
    platform_message_id: str | None = None
    sent_platform_id: str | None = None
    author_name: str = ""
    author_slack_user: str | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    state: DeliveryState
    error: str | None = None
    created_at: float
    platform_time: float | None = None
    platform_ref: str | None = None
    markup: str | None = None
    edit_of: str | None = None
    # Inbound: the identity it came from; outbound: the identity it goes to (the customer's
    # latest channel when written, or the one the agent picked with `!via`).
    identity_id: IdentityId | None = None
    # Who produced it: 'person' (the customer or an agent), 'auto' (a closed reply or a
    # greeting), 'faq' (an FAQ answer), 'survey'.  Only a person's reply is an agent's response.
    origin: str = "person"


class InboundMessage(FromOutside):
    """What a connector's pure `parse` produces from one platform payload."""

    model_config = ConfigDict(frozen=True)

    connector: str
    platform_message_id: str  # dedupe key, unique per connector
    address: str  # where to reply (chat id, phone number, PSID...)
    sender_name: str
    username: str | None = None
    text: str
    attachments: tuple[Attachment, ...] = ()
    platform_time: float | None = None
    platform_ref: str | None = None  # the platform's own message id, if different
    markup: str | None = None  # the text as Slack mrkdwn, when the platform carried formatting
    edit_of: str | None = None  # an edit: the platform_ref of the message it changes
    # The customer asked to stop (True: STOP, UNSUBSCRIBE...) or to resume (False: START)
    # messages on this address; recorded on the identity in the same transaction.
    opt_out: bool | None = None
    # A reply the business sent outside the bridge (Meta's Page Inbox), seen as an echo: the
    # author shown in the thread.  Stored as outbound; it neither moves the customer's reply
    # window nor reopens a closed conversation.  `sender_name` stays the customer's.
    echo_author: str | None = None
    # False: join the customer's conversation only while it is open; a closed one is not
    # reopened (whatever `reopen_within_hours` says) and a new one, linking back, starts.
    # Email sets it for a mail that names no conversation (neither ids nor reply token).
    reopen: bool = True
    # The channel, when one connector serves several ("sms" or "whatsapp" through Twilio);
    # None means the connector's name.  Agents pick channels by this name (`!via`, `!handoff`).
    channel: str | None = None
    # A phone number the platform proves the sender owns: the sender of an SMS or WhatsApp
    # message, a Telegram contact shared by its own user.  Never a number typed in the text.
    # The core normalizes it (E.164) and links identities that prove the same number.
    verified_phone: str | None = None
    # An email address the platform proves the sender owns: the web chat's `identify` with a
    # valid `user_hash` (the site vouches for it).  Never an address the visitor typed; an
    # email connector's sender is matched by its address.
    verified_email: str | None = None
    # An address the sender typed for replies to reach them by email (the web chat's offline
    # prompt): unverified, so only where this customer's replies also go, never evidence.
    reply_email: str | None = None
    # The proactive invitation (its text) the sender answered (the web chat), for the KPIs.
    invitation: str | None = None
    # A handoff code the platform carried outside the text (a Telegram /start payload, a
    # Messenger m.me ref, the plus part of the address an email was sent to).  The core also
    # finds codes in the text itself (SMS, WhatsApp).
    handoff_code: str | None = None
    # Routing (`[[routing.rules]]`): the address the customer wrote to (a Twilio number, a
    # Messenger Page id, an email address, a Telegram bot's username) and the language the
    # platform says the sender uses (Telegram's `language_code`), when it says one.
    inbox: str | None = None
    language: str | None = None
    # The id of the `Choice` the customer picked (a WhatsApp reply button or list row, a
    # Telegram inline button, a Messenger quick reply), when the message is such an answer.
    choice: str | None = None
    # The platform's handle to acknowledge the pick (Telegram's callback_query id); the
    # message that carried the choices is `platform_ref` (its buttons are removed).
    choice_ack: str | None = None


class AgentReply(FromOutside):
    """A human reply (or note) written in a conversation's Slack thread."""

    model_config = ConfigDict(frozen=True)

    slack_channel: str
    slack_ts: str
    thread_ts: str
    slack_user: str
    text: str
    is_note: bool
    event_id: str | None = None
    files: tuple[Attachment, ...] = ()  # files attached in Slack (url = url_private_download)
    template: str = ""  # a template send (JSON: name, variables) instead of free text
    via: str | None = None  # `!via <channel>`: send on this channel, not the latest one


class AgentEdit(FromOutside):
    """An agent changed (`text` set) or deleted (`text` None) a reply in a thread."""

    model_config = ConfigDict(frozen=True)

    slack_channel: str
    slack_ts: str
    text: str | None
    event_id: str | None = None


class OutboundFile(BaseModel):
    """A file on its way to a customer: the bytes, and a public URL for platforms that fetch."""

    model_config = ConfigDict(frozen=True)

    filename: str
    mime_type: str
    data: bytes
    url: str | None = None  # GET /media/<token> under public_url

    @property
    def is_image(self) -> bool:
        return self.mime_type in ("image/jpeg", "image/png", "image/gif", "image/webp")


class Choice(BaseModel):
    """One answer a customer can pick (a survey score, "talk to a person")."""

    model_config = ConfigDict(frozen=True)

    id: str  # what comes back when it is picked (signed or looked up by the receiver)
    title: str  # the button's or row's label (platforms cap it: WhatsApp 20/24, Telegram 64)
    description: str = ""  # a list row's second line, where the platform has one


class Choices(BaseModel):
    """A question with choices, sent with the platform's native buttons where it has them
    (Telegram inline keyboard, Messenger quick replies, WhatsApp Cloud reply buttons or a
    list); elsewhere the text alone, which then says how to answer (e.g. "reply 1-5")."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Choice, ...]
    button: str = "Choose"  # a WhatsApp list's button label
    fallback: str = ""  # appended to the text where no native buttons exist


class OutboundMessage(BaseModel):
    """What the core hands a connector's `send`."""

    model_config = ConfigDict(frozen=True)

    message_id: MessageId
    conversation_id: ConversationId
    address: str
    text: str  # plain text: markers stripped, links as "label (url)", mentions as @Name
    author_name: str
    # The author's picture (an agent's Slack profile image URL); a connector that shows one
    # fetches it and serves it itself, so customers' browsers never load it from Slack.
    author_avatar: str = ""
    attachments: tuple[Attachment, ...] = ()
    mrkdwn: str = ""  # the agent's original Slack text, for platforms with formatting
    mentions: dict[str, str] = Field(default_factory=dict)  # Slack user id -> display name
    # When the customer last wrote from this address (platform windows count from it).
    last_inbound_at: float | None = None
    automatic: bool = False  # written by the bridge, not by a person (Meta's tag rules)
    choices: Choices | None = None  # native buttons or a list, where the platform has them


class SendReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    platform_message_ids: tuple[str, ...]
    note: str | None = None  # shown in the thread (e.g. "went out as 3 SMS segments")


class LinkMethod(enum.StrEnum):
    """How two identities came to be one customer."""

    PHONE = "phone"  # automatic: both proved the same phone number (SMS/WhatsApp, Telegram)
    EMAIL = "email"  # automatic: a verified web chat user's email, the same as on email
    HANDOFF = "handoff"  # the customer came in through a one-time handoff code
    AGENT = "agent"  # an agent merged two customers from Slack (`!link`)


class Link(BaseModel):
    """One joining of two customers: who joined whom, how, by whom, when; undone or not."""

    id: int
    customer_id: CustomerId  # the customer that remains
    other_customer_id: CustomerId  # the one whose identities and conversations moved in
    method: LinkMethod
    evidence: str  # the phone number, the handoff's channel, the agent's search
    actor: str  # "bridge", "customer", or the agent as <@U...>
    created_at: float
    undone_at: float | None = None
    undone_by: str | None = None
    identities: list[int] = Field(default_factory=list)  # the identities that moved


class OutboxKind(enum.StrEnum):
    SLACK_POST = "slack_post"  # post an inbound message into Slack (parent or thread reply)
    CUSTOMER_SEND = "customer_send"  # send an agent reply to the customer
    SLACK_NOTICE = "slack_notice"  # tell the agents something (payload: an event, or text)
    SLACK_FILE = "slack_file"  # upload a customer's file into the thread (payload: its index)
    SLACK_STATUS = "slack_status"  # redraw the thread's parent message (status, buttons)
    SLACK_REACTION = "slack_reaction"  # a receipt on the agent's message (payload: state)
    CUSTOMER_FILE = "customer_file"  # send an agent's file to the customer (payload: index)
    CUSTOMER_EDIT = "customer_edit"  # an agent edited a reply: edit it on the platform
    CUSTOMER_DELETE = "customer_delete"  # an agent deleted a reply: delete it there
    CUSTOMER_SURVEY = "customer_survey"  # a CSAT/NPS question (payload: the survey's token)
    SLACK_ERASE = "slack_erase"  # a customer was erased: empty their thread (payload: JSON)

    @property
    def customer_side(self) -> bool:
        """Sent to the customer's platform (send, file, edit, delete); else posted into Slack.
        The one place this is decided: lanes, gates, `bridge outbox list` all ask it."""
        return self.value.startswith("customer_")


class OutboxItem(BaseModel):
    id: OutboxId
    kind: OutboxKind
    lane: str  # order is kept within a lane
    conversation_id: ConversationId
    message_id: MessageId | None
    payload: str = ""
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    status: str = "pending"
    created_at: float = 0.0
    updated_at: float = 0.0  # when the row was last written (queued, retried, re-queued)
    # When a send was last started and not known to have failed: the outcome is unknown.
    attempted_at: float | None = None


class IngestResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: MessageId | None
    conversation_id: ConversationId | None
    duplicate: bool
    outbox: tuple[OutboxItem, ...] = ()
