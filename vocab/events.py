"""What happened, as the store records it for the agents: typed events, not Slack text.

The store queues an event in a `slack_notice` outbox row (its payload is the event as JSON, see
`event_payload`); the Slack console renders it when the row is posted
(`bridge/console/notices.py`).  Names, addresses and actors are kept as they are: escaping
and wording are the renderer's.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class Who(BaseModel):
    """An identity as agents are told about it (the store's columns, unformatted)."""

    model_config = ConfigDict(frozen=True)

    channel: str
    address: str
    name: str = ""
    username: str | None = None


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class OptOutChanged(_Event):
    """The customer asked for no more messages (STOP), or resumed them (START)."""

    kind: Literal["opt_out_changed"] = "opt_out_changed"
    opted_out: bool


class HandoffRefused(_Event):
    """A handoff code that links nothing: never issued, already used, or expired."""

    kind: Literal["handoff_refused"] = "handoff_refused"
    name: str  # the sender's name, as they gave it ("" when none)
    reason: Literal["unknown", "used", "expired"]


class HandoffLinked(_Event):
    """A customer arrived on `channel` with a handoff code and joined the customer it was for."""

    kind: Literal["handoff_linked"] = "handoff_linked"
    name: str
    channel: str
    issued_by: str  # the Slack user id of the agent who sent the code
    link_id: int


class PhoneLinked(_Event):
    """Two customers proved the same phone number and were joined."""

    kind: Literal["phone_linked"] = "phone_linked"
    phone: str
    channel: str
    link_id: int


class EmailLinked(_Event):
    """A verified email address (the web chat's identify) matched another customer's."""

    kind: Literal["email_linked"] = "email_linked"
    email: str
    channel: str
    link_id: int


class ReplyByEmail(_Event):
    """The customer typed an address for replies (the web chat's offline prompt).  `taken`:
    another customer already writes from it, so nothing was linked or routed there."""

    kind: Literal["reply_by_email"] = "reply_by_email"
    email: str
    taken: bool = False


class ChannelSwitched(_Event):
    """A known customer wrote on another of their channels: replies go there now."""

    kind: Literal["channel_switched"] = "channel_switched"
    now: Who
    before: Who


class ReopenedByCustomer(_Event):
    kind: Literal["reopened_by_customer"] = "reopened_by_customer"


class StatusChanged(_Event):
    """An agent closed or reopened the conversation."""

    kind: Literal["status_changed"] = "status_changed"
    closed: bool
    actor: str


class StatusMoved(_Event):
    """The status became open, pending or snoozed (closing and reopening by an agent are
    `StatusChanged`).  `actor`: the agent as <@U...>, "customer" (they wrote) or "bridge"
    (a snooze ran out); `before`: the status it left."""

    kind: Literal["status_moved"] = "status_moved"
    status: Literal["open", "pending", "snoozed"]
    actor: str
    before: str = ""
    until: float | None = None  # a snooze's end


class AssigneeChanged(_Event):
    """The conversation's assignee changed (`assignee` None: nobody holds it now).
    `how`: claimed, assigned by someone, unassigned, or taken by the first reply."""

    kind: Literal["assignee_changed"] = "assignee_changed"
    actor: str  # the agent as <@U...>
    assignee: str | None  # a Slack user id
    previous: str | None = None
    how: Literal["claim", "assign", "unassign", "first_reply"] = "assign"


class ReturningCustomer(_Event):
    """A new thread of a known customer: who they are and what came before."""

    kind: Literal["returning_customer"] = "returning_customer"
    customer_id: int


class ConversationJoined(_Event):
    """Another conversation (of `who`) joined this thread; its history follows."""

    kind: Literal["conversation_joined"] = "conversation_joined"
    who: tuple[Who, ...]
    link_id: int
    merged: int  # the conversation that joined


class ContinuesElsewhere(_Event):
    """This conversation joined another thread (`target`)."""

    kind: Literal["continues_elsewhere"] = "continues_elsewhere"
    link_id: int
    target: int


class AgentLinked(_Event):
    kind: Literal["agent_linked"] = "agent_linked"
    actor: str
    who: tuple[Who, ...]
    link_id: int


class Unlinked(_Event):
    """A link was undone.  `scope`: what this thread is now — `own` (the conversation that
    had joined another, on its own again), `alone` (the customer's thread, theirs alone again)
    or `separate` (told that `who` is a separate customer again)."""

    kind: Literal["unlinked"] = "unlinked"
    actor: str
    link_id: int
    scope: Literal["own", "alone", "separate"]
    who: tuple[Who, ...] = ()
    replies: Who | None = None  # where replies of this thread go now (None: no channel)


class NotDelivered(_Event):
    """The platform reported a reply undelivered; `templates` may still be sent."""

    kind: Literal["not_delivered"] = "not_delivered"
    error: str | None
    templates: tuple[str, ...] = ()


# The payload of the outbox row that posts a transferred conversation's new parent.
NEW_PARENT = "moved"


class MovedAway(_Event):
    """The old thread's last line: the conversation moved to `team`'s `channel`.  Posted in
    `thread_channel`/`thread_ts` (the conversation's thread is the new one by then)."""

    kind: Literal["moved_away"] = "moved_away"
    actor: str
    team: str
    channel: str
    thread_channel: str
    thread_ts: str


class MovedHere(_Event):
    """The new thread's first notice: where it came from, and (drawn when posted) the
    customer's card and the last messages."""

    kind: Literal["moved_here"] = "moved_here"
    actor: str
    from_team: str
    from_channel: str
    from_thread: str
    assignee_cleared: str | None = None  # the assignee, not a member of the new team


class AutoAnswered(_Event):
    """The bridge answered the customer by itself (issue 21): a closed reply, a greeting or an
    FAQ answer (`score`: how well the customer's question matched `question`)."""

    kind: Literal["auto_answered"] = "auto_answered"
    origin: Literal["closed", "greeting", "faq", "handover"]
    text: str
    question: str = ""  # the FAQ phrasing that matched
    score: float | None = None


class PersonRequested(_Event):
    """The customer asked for a person: the FAQ stops for this conversation; `mentions` are
    the Slack users to call (the assignee, else the team's members; none: the channel)."""

    kind: Literal["person_requested"] = "person_requested"
    mentions: tuple[str, ...] = ()


class TargetWarned(_Event):
    """80 % of a response-time target's business time is gone: the thread is reminded,
    mentioning `assignee`, else the team's `members`."""

    kind: Literal["target_warned"] = "target_warned"
    target: str  # first_response, next_response or resolution
    due_at: float
    assignee: str | None = None
    members: tuple[str, ...] = ()


class TargetMissed(_Event):
    """A response-time target was missed: one line in the team's `alerts_channel`."""

    kind: Literal["target_missed"] = "target_missed"
    target: str
    due_at: float
    team: str
    alerts_channel: str
    assignee: str | None = None


Event: TypeAlias = Annotated[
    OptOutChanged | HandoffRefused | HandoffLinked | PhoneLinked | EmailLinked | ReplyByEmail
    | ChannelSwitched
    | ReopenedByCustomer | StatusChanged | StatusMoved | AssigneeChanged | ReturningCustomer
    | ConversationJoined | ContinuesElsewhere | AgentLinked | Unlinked | NotDelivered
    | MovedAway | MovedHere | AutoAnswered | PersonRequested | TargetWarned | TargetMissed,
    Field(discriminator="kind"),
]
_EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


def event_payload(event: Event) -> str:
    """The event as an outbox row's payload."""
    return event.model_dump_json()


def parse_event(payload: str) -> Event | None:
    """The event in an outbox row's payload; None for a payload that is not one (a notice
    text queued by the core, or a row written by an older version)."""
    if not payload.startswith('{"kind":'):
        return None
    try:
        return _EVENTS.validate_json(payload)
    except ValidationError:
        return None
