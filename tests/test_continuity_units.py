"""The pure parts of continuity: handoff codes, phone numbers as evidence, and how the
console draws a returning customer's context and a joined history."""

from __future__ import annotations

from bridge.console.people import context_text, history_text
from bridge.router import evidence
from storage.base import CustomerCard, HistoryEntry
from vocab.continuity import ALPHABET, code_hash, find_code, new_code, normalize_phone
from vocab.models import (
    Conversation,
    ConversationId,
    ConversationStatus,
    CustomerId,
    DeliveryState,
    Direction,
    Identity,
    IdentityId,
    InboundMessage,
    Message,
    MessageId,
)


def test_codes_are_random_well_formed_and_found_in_any_case() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        assert code.startswith("LINK-") and len(code) == 17
        assert set(code[5:]) <= set(ALPHABET)
        assert find_code(f"/start {code}") == code
        assert find_code(f"my code: {code.lower()}.") == code
        assert find_code(f"support+{code.lower()}@example.com") == code
    assert find_code("LINK-7KQ29XWDM4P") is None  # one short
    assert find_code("LINK-7KQ29XWDM4PTT") is None  # one long
    assert find_code("XLINK-7KQ29XWDM4PT") is None  # glued to a word
    assert find_code("LINK-7KQ29XWDM4P!") is None
    assert find_code(None, "", "nothing here") is None
    assert find_code("LINK-7kq29xwdm4pt") == "LINK-7KQ29XWDM4PT"
    assert find_code("LINK-7KQ29XWDM4PO") == "LINK-7KQ29XWDM4P0"  # Crockford: O reads as 0
    assert code_hash("LINK-7KQ29XWDM4PT") != code_hash("LINK-7KQ29XWDM4P0")
    assert len(code_hash("LINK-7KQ29XWDM4PT")) == 64


def test_phone_numbers_compare_in_e164_and_need_their_country_code() -> None:
    assert normalize_phone("whatsapp:+14155552671") == "+14155552671"
    assert normalize_phone("+1 (415) 555-2671") == "+14155552671"
    assert normalize_phone("14155552671") == "+14155552671"  # Telegram's contact numbers
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize_phone("415-555-2671") is None  # no country: no guess
    assert normalize_phone("555") is None
    assert normalize_phone("+1 555") is None
    assert normalize_phone("call me") is None
    assert normalize_phone("") is None and normalize_phone(None) is None


def test_evidence_normalizes_what_the_store_sees() -> None:
    item = InboundMessage(connector="twilio", platform_message_id="SM1",
                          address="whatsapp:+14155552671", sender_name="", text="hi LINK-"
                          "abcdefghjkmn there", verified_phone="whatsapp:+1 415 555 2671")
    got = evidence(item)
    assert (got.verified_phone, got.handoff_code) == ("+14155552671", "LINK-ABCDEFGHJKMN")
    plain = item.model_copy(update={"text": "hello", "verified_phone": "+1 555"})
    assert (evidence(plain).verified_phone, evidence(plain).handoff_code) == (None, None)
    ref = plain.model_copy(update={"handoff_code": "summer-sale", "verified_phone": None})
    assert evidence(ref).handoff_code is None  # a marketing ref is no handoff code


def _ident(n: int, channel: str, address: str, name: str = "Ann") -> Identity:
    return Identity(id=IdentityId(n), customer_id=CustomerId(1), connector=channel,
                    address=address, display_name=name, channel=channel)


def test_context_lists_channels_and_earlier_conversations_with_links() -> None:
    card = CustomerCard(customer_id=CustomerId(1), display_name="Ann",
                        identities=[_ident(1, "telegram", "42"), _ident(2, "sms", "+14155550100")],
                        conversations=2)
    closed = Conversation(id=ConversationId(3), customer_id=CustomerId(1),
                          identity_id=IdentityId(2), connector="twilio", address="+14155550100",
                          status=ConversationStatus.CLOSED, slack_channel="C1",
                          slack_thread_ts="111.222", created_at=1_700_000_000.0,
                          closed_by="<@U1>")
    text = context_text(card, [HistoryEntry(conversation=closed, first_line="Where <is> it?",
                                            channel="sms")],
                        lambda ts, ch: f"https://x.slack.com/archives/{ch}/p{ts}")
    assert "Telegram Ann" in text and "SMS +14155550100" in text
    assert "closed by <@U1>" in text and "https://x.slack.com/archives/C1/p111.222" in text
    assert "“Where &lt;is&gt; it?”" in text  # the customer's words escaped
    assert "<!date^1700000000^" in text


def test_history_keeps_the_order_and_skips_notes() -> None:
    def msg(n: int, direction: Direction, text: str) -> Message:
        return Message(id=MessageId(n), conversation_id=ConversationId(1), direction=direction,
                       connector="twilio", text=text, author_name="Ann",
                       state=DeliveryState.POSTED, created_at=1_700_000_000.0 + n,
                       identity_id=IdentityId(2))
    history = history_text("Joined:", [msg(1, Direction.INBOUND, "first"),
                                       msg(2, Direction.NOTE, "secret note"),
                                       msg(3, Direction.OUTBOUND, "answer"),
                                       msg(4, Direction.INBOUND, "second")],
                           {IdentityId(2): _ident(2, "sms", "+1")})
    lines = history.splitlines()
    assert lines[0] == "Joined:" and len(lines) == 4
    assert "first" in lines[1] and "answer" in lines[2] and "second" in lines[3]
    assert "secret note" not in history and "SMS" in lines[1]
