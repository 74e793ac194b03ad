"""The connector without IMAP: its send path against a real SMTP receiver (aiosmtpd), and
inbound mail handed to it directly; its state in memory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Sequence
from email.message import EmailMessage

import aiohttp
import pytest

from connectors.base import ConnectorContext, SendError
from connectors.email import connector, outbound
from connectors.email.connector import EmailConnector
from connectors.email.settings import EmailSettings
from tests.mailservers import SECRET, SmtpReceiver, customer_mail
from tests.test_email_threads import MemoryState
from vocab.models import ConversationId, InboundMessage, MessageId, OutboundMessage


@pytest.fixture
def ingested() -> list[InboundMessage]:
    return []


@pytest.fixture
def state() -> MemoryState:
    return MemoryState()


@pytest.fixture
async def email(smtp: SmtpReceiver, ingested: list[InboundMessage], state: MemoryState,
                ) -> AsyncIterator[EmailConnector]:
    settings = EmailSettings(
        address="support@example.com", display_name="Example Support", imap_host="127.0.0.1",
        imap_user="u", imap_password="p", smtp_host="127.0.0.1", smtp_port=smtp.port,
        smtp_security="none", smtp_user=smtp.user, smtp_password=smtp.password,
        reply_token_secret=SECRET)

    async def nothing(*args: object, **kw: object) -> None:
        return None

    async def ingest(items: Sequence[InboundMessage]) -> list[object]:
        ingested.extend(items)
        return []

    async with aiohttp.ClientSession() as session:
        ctx = ConnectorContext(session=session, ingest=ingest,  # type: ignore[arg-type]
                               public_url="http://127.0.0.1", max_body_bytes=1 << 20,
                               state=state, run_once=nothing, receipt=nothing)
        yield EmailConnector(settings, ctx)


def reply(text: str, *, author: str = "Dana", automatic: bool = False) -> OutboundMessage:
    return OutboundMessage(message_id=MessageId(1), conversation_id=ConversationId(1),
                           address="ann@example.org", text=text, author_name=author,
                           automatic=automatic)


async def test_only_automatic_messages_are_marked_auto_submitted(
    email: EmailConnector, smtp: SmtpReceiver,
) -> None:
    await email.send(reply("A person wrote this"))
    await email.send(reply("We got your mail and will answer soon.", automatic=True))
    human, bot = (r.message for r in await smtp.wait_for(2))
    assert human["Auto-Submitted"] is None
    assert bot["Auto-Submitted"] == "auto-replied"


async def test_line_breaks_in_names_cannot_inject_headers(
    email: EmailConnector, smtp: SmtpReceiver,
) -> None:
    await email.send(reply("Hi", author="Dana\r\nBcc: eve@example.net"))
    [sent] = await smtp.wait_for(1)
    assert sent.rcpt_tos == ["ann@example.org"]
    assert sent.message["From"].addresses[0].display_name == (
        "Dana Bcc: eve@example.net (Example Support)")
    assert sent.message["Bcc"] is None


async def test_an_address_no_mail_can_be_written_to_fails_for_good(
    email: EmailConnector, smtp: SmtpReceiver,
) -> None:
    with pytest.raises(SendError) as caught:
        await email.send(reply("Hi").model_copy(update={"address": "ann@example.org\r\nX: y"}))
    assert not caught.value.retryable and caught.value.code == "bad_address"
    assert smtp.received == []


async def test_a_big_mail_is_parsed_off_the_event_loop(
    email: EmailConnector, ingested: list[InboundMessage],
) -> None:
    raw = customer_mail("Ann <ann@example.org>", "Logs", "See the logs.", message_id="b@x.org",
                        files=(("logs.bin", "application/octet-stream", os.urandom(18 << 20)),))
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    ticked = [0.0]  # when the ticker last ran

    async def tick() -> None:
        while True:
            ticked[0] = loop.time()
            await asyncio.sleep(0.005)
            gaps.append(loop.time() - ticked[0])

    async def longest_pause(work: Awaitable[object]) -> float:
        """The event loop's longest pause during `work`, as a share of the time it took
        (a ratio, so a loaded machine slows both alike).  In-loop parsing: about 0.9."""
        gaps.clear()
        ticker = asyncio.create_task(tick())
        started = loop.time()
        await asyncio.sleep(0)  # the ticker's first run
        try:
            await work
        finally:
            gaps.append(loop.time() - ticked[0])  # a pause that lasted to the end
            ticker.cancel()
        return max(gaps) / (loop.time() - started)

    assert await longest_pause(email._handle(1, raw, False)) < 0.4  # parse, hash, keep
    [file] = [a for a in ingested[0].attachments if a.filename == "logs.bin"]
    data: list[bytes] = []

    async def fetch() -> None:
        data.append(await email.fetch_file(file, 20 << 20))

    assert await longest_pause(fetch()) < 0.4  # decode the original, find the part
    assert len(data[0]) == 18 << 20


async def test_raw_mails_are_deleted_after_keep_originals_days(
    email: EmailConnector, ingested: list[InboundMessage], state: MemoryState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def with_file(n: int) -> bytes:
        return customer_mail("Ann <ann@example.org>", "Scan", "Attached.",
                             message_id=f"s{n}@x.org",
                             files=((f"scan{n}.pdf", "application/pdf", b"%PDF" * n),))

    await email._handle(1, with_file(1), False)
    [old] = ingested[0].attachments
    assert await email.fetch_file(old, 1 << 20) == b"%PDF"
    state.now = 29 * 86400.0  # within keep_originals_days (30): kept
    monkeypatch.setattr(connector, "PRUNE_EVERY", 0.0)
    await email._handle(2, with_file(2), False)
    assert await email.fetch_file(old, 1 << 20) == b"%PDF"
    state.now = 31 * 86400.0
    await email._handle(3, with_file(3), False)
    with pytest.raises(SendError, match="not kept"):
        await email.fetch_file(old, 1 << 20)
    assert [k.startswith("raw:") for k in state.data].count(True) == 2  # the 2nd and 3rd


async def test_a_mail_arriving_while_a_reply_is_sent_stays_in_the_thread(
    email: EmailConnector, smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await email._handle(1, customer_mail("Ann <ann@example.org>", "Order", "Where is it?",
                                         message_id="c1@x.org"), False)
    real = outbound.deliver

    async def slow(settings: EmailSettings, mail: EmailMessage) -> None:
        await email._handle(2, customer_mail("Ann <ann@example.org>", "Re: Order", "Hello?",
                                             message_id="c2@x.org",
                                             In_Reply_To="<c1@x.org>"), False)
        await real(settings, mail)

    monkeypatch.setattr(connector, "deliver", slow)
    await email.send(reply("It ships today"))
    monkeypatch.setattr(connector, "deliver", real)
    await email.send(reply("Tracking: 123"))
    first, second = (r.message for r in await smtp.wait_for(2))
    assert second["References"].split() == [
        "<c1@x.org>", "<c2@x.org>", first["Message-ID"]]
