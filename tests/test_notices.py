"""The store's events as the console shows them: exact Slack text, kept in an outbox row as
JSON and read back, and rows written before events existed still understood."""

from __future__ import annotations

import pytest

from bridge.console.notices import describe, notice_text, reaction
from vocab.events import (
    AgentLinked,
    ChannelSwitched,
    ContinuesElsewhere,
    ConversationJoined,
    Event,
    HandoffLinked,
    HandoffRefused,
    NotDelivered,
    OptOutChanged,
    PhoneLinked,
    ReopenedByCustomer,
    ReturningCustomer,
    StatusChanged,
    Unlinked,
    Who,
    event_payload,
    parse_event,
)

ANN = Who(channel="telegram", address="42", name="Ann *K*", username="ann_k")
BO = Who(channel="whatsapp", address="whatsapp:+14155550100", name="Bo")
MEL = Who(channel="messenger", address="PSID9", name="Mel <3")

RENDERED: list[tuple[Event, str]] = [
    (OptOutChanged(opted_out=True),
     ":no_bell: The customer asked not to receive messages here (STOP): the bridge sends "
     "nothing more on this channel until they write START."),
    (OptOutChanged(opted_out=False),
     ":bell: The customer resumed messages (START): replies go out again."),
    (HandoffRefused(name="Ann *K*", reason="unknown"),
     ":no_entry: Ann *K* sent a handoff code that the bridge never issued: not linked to "
     "anyone. If they say an agent sent it, send a new one."),
    (HandoffRefused(name="", reason="used"),
     ":no_entry: The customer sent a handoff code that was already used: not linked. Handoff "
     "codes work once; send a new one if this is the same customer."),
    (HandoffRefused(name="Bo", reason="expired"),
     ":no_entry: Bo sent a handoff code that has expired: not linked. Send a new one with the "
     "handoff command."),
    (HandoffLinked(name="Bo", channel="whatsapp", issued_by="U7", link_id=3),
     ":link: Bo continued on WhatsApp with the handoff code <@U7> sent, and joined this "
     "customer (link 3; undo with the unlink command)."),
    (PhoneLinked(phone="+14155550100", channel="sms", link_id=4),
     ":link: Linked automatically: the same phone number +14155550100 wrote on SMS (link 4; an "
     "agent can undo it with the unlink command)."),
    (ChannelSwitched(now=BO, before=ANN),
     ":twisted_rightwards_arrows: Now writing on WhatsApp +14155550100; replies go there "
     "(before: Telegram @ann_k)."),
    (ReopenedByCustomer(), ":arrows_counterclockwise: Reopened: the customer wrote again."),
    (StatusChanged(closed=True, actor="<@U1>"), ":lock: Closed by <@U1>."),
    (StatusChanged(closed=False, actor="<@U1>"), ":unlock: Reopened by <@U1>."),
    (ReturningCustomer(customer_id=5), ""),
    (ConversationJoined(who=(BO, MEL), link_id=6, merged=9),
     ":link: The conversation of WhatsApp +14155550100, Messenger Mel &lt;3 joined this thread "
     "(link 6). Its history, in order:"),
    (ContinuesElsewhere(link_id=6, target=8),
     ":link: This conversation continues in another thread, with the customer's other channels "
     "(link 6):"),
    (AgentLinked(actor="<@U1>", who=(MEL,), link_id=7),
     ":link: <@U1> linked Messenger Mel &lt;3 to this customer (link 7; undo with the unlink "
     "command)."),
    (Unlinked(actor="<@U1>", link_id=7, scope="own", replies=ANN),
     ":scissors: Unlinked by <@U1> (link 7): this conversation is on its own again; replies "
     "here go to Telegram @ann_k."),
    (Unlinked(actor="<@U1>", link_id=7, scope="alone", who=(MEL,), replies=None),
     ":scissors: Unlinked by <@U1> (link 7): this conversation is Messenger Mel &lt;3's alone "
     "again; replies here go to no channel. Messages of the other customer already in this "
     "thread stay."),
    (Unlinked(actor="<@U1>", link_id=7, scope="separate"),
     ":scissors: Unlinked by <@U1> (link 7): no identity is a separate customer again. Their "
     "messages already in this thread stay; new ones start their own."),
    (NotDelivered(error="21211 invalid number"),
     ":warning: Not delivered to the customer: 21211 invalid number"),
    (NotDelivered(error=None, templates=("welcome",)),
     ":warning: Not delivered to the customer: the platform gave no reason. Send an approved "
     "template instead:"),
]


@pytest.mark.parametrize(("event", "text"), RENDERED)
def test_each_event_renders_as_agents_read_it(event: Event, text: str) -> None:
    assert notice_text(event) == text


@pytest.mark.parametrize(("event", "text"), RENDERED)
def test_an_event_survives_its_outbox_row(event: Event, text: str) -> None:
    assert parse_event(event_payload(event)) == event


@pytest.mark.parametrize("payload", [
    ":lock: Closed by <@U1>.",  # a notice row written before events: posted as it is
    '{"text": ":warning: Not delivered", "retry": 12, "templates": []}',
    '{"text": "", "context": 5}',
    '{"kind": "no_such_event"}',
    "",
])
def test_other_payloads_are_not_events(payload: str) -> None:
    assert parse_event(payload) is None


def test_a_receipt_shows_as_a_reaction() -> None:
    assert [reaction(s) for s in ("delivered", "read", "failed")] == [
        "white_check_mark", "eyes", "x"]
    assert reaction("eyes") == "eyes"  # a row queued before the store kept states


def test_a_code_issued_before_ids_were_kept_still_names_its_agent() -> None:
    event = HandoffLinked(name="Bo", channel="sms", issued_by="<@U7>", link_id=1)
    assert "handoff code <@U7> sent" in notice_text(event)


def test_an_identity_as_agents_read_it() -> None:
    assert describe("sms", "+14155550100") == "SMS +14155550100"
    assert describe("email", "a_b@c.d", "A") == "Email a_b@c.d"
    assert describe("telegram", "42", "Ann <3", None) == "Telegram Ann &lt;3"
