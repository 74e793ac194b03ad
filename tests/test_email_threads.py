"""Which conversation a mail joins (`connectors/email/threads.py`), on an in-memory state."""

from __future__ import annotations

from connectors.base import StateAPI
from connectors.email.parse import parse_mail
from connectors.email.threads import Thread, Threads
from tests.mailservers import SECRET, customer_mail

SUPPORT = "support@example.com"


class MemoryState(StateAPI):
    """The connector's state in a dict; `now` is the time a `set` is stamped with."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.stamps: dict[str, float] = {}
        self.now = 0.0

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def set(self, key: str, value: str) -> None:
        self.data[key] = value
        self.stamps[key] = self.now

    async def prune(self, prefix: str, age: float) -> int:
        old = [k for k in self.data if k.startswith(prefix) and self.stamps[k] < self.now - age]
        for key in old:
            del self.data[key], self.stamps[key]
        return len(old)


async def arrive(threads: Threads, raw: bytes) -> tuple[str, str]:
    """What the connector does with a new mail's ids: resolve, then remember."""
    mail = parse_mail(raw, SUPPORT)
    address, how = await threads.resolve(mail)
    await threads.remember(mail.message_id, address)
    return address, how


async def test_a_reused_message_id_does_not_take_over_the_conversation() -> None:
    threads = Threads(MemoryState(), SECRET, SUPPORT)
    assert await arrive(threads, customer_mail(
        "Ann <ann@example.org>", "Order 123", "Where is it?", message_id="c1@example.org",
    )) == ("ann@example.org", "sender")
    # Eve sends a mail carrying Ann's Message-ID (the store drops it as a duplicate)...
    assert await arrive(threads, customer_mail(
        "Eve <eve@example.net>", "Hello", "hi", message_id="c1@example.org",
    )) == ("eve@example.net", "sender")
    # ...and Ann's next mail, whose client keeps only References, still reaches Ann's.
    assert await arrive(threads, customer_mail(
        "Ann <ann@example.org>", "Re: Order 123", "Any news?", message_id="c2@example.org",
        References="<c1@example.org>",
    )) == ("ann@example.org", "header")


def test_an_overlong_message_id_is_never_echoed_in_replies() -> None:
    thread = Thread(subject="x", parent="c1@x.org", references=["c1@x.org"])
    after = thread.followed_by("a" * 300 + "@x.org", ["c1@x.org", "b" * 300 + "@x.org"])
    assert (after.parent, after.references) == ("c1@x.org", ["c1@x.org"])


async def test_a_mail_to_hundreds_of_plus_addresses_costs_a_bounded_number_of_lookups(
) -> None:
    state = MemoryState()
    looked_up: list[str] = []
    real = state.get

    async def counting(key: str) -> str | None:
        looked_up.append(key)
        return await real(key)

    state.get = counting  # type: ignore[method-assign]
    threads = Threads(state, SECRET, SUPPORT)
    junk = ", ".join(f"support+{n:020x}@example.com, support+x{n}@example.com"
                     for n in range(300))
    raw = customer_mail("Eve <eve@example.net>", "Hi", "hi", message_id="e@x.org", to=junk)
    assert await arrive(threads, raw) == ("eve@example.net", "sender")
    assert len(looked_up) <= 60  # at most 50 tokens, plus the Message-ID
