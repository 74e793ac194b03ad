"""Every waiting helper of the tests fails when its condition never holds, saying what it saw
(each with a short deadline, so this costs little)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bridge.standins import SlackStandin, TelegramStandin
from tests import helpers_messenger, helpers_twilio
from tests.conftest import Harness
from tests.dovecot import Dovecot
from tests.helpers_pg import fresh_schema, wait_pg_rows
from tests.helpers_proc import BridgeProcess, free_port, run_cli
from tests.mailservers import SmtpReceiver
from tests.test_email import thread_of as email_thread
from tests.test_email_imap import cursor_at
from tests.waiting import poll, until

SHORT = 0.1


async def test_poll_and_until_fail_with_what_they_saw() -> None:
    async def read() -> int:
        return 41

    with pytest.raises(AssertionError, match=r"the answer; last seen: 41"):
        await poll(read, lambda got: got == 42, "the answer", SHORT)
    with pytest.raises(AssertionError, match="never: 7 tries"):
        await until(lambda: False, lambda: "never: 7 tries", SHORT)
    with pytest.raises(AssertionError, match="a plain text"):
        await until(lambda: False, "a plain text", SHORT)


@pytest.mark.backends("sqlite")  # the helpers read the store; which one does not matter here
async def test_harness_waits_fail_with_what_they_saw(harness: Harness) -> None:
    h = harness
    with pytest.raises(AssertionError, match=r"last seen: \[\(0,\)\]"):
        await h.wait_rows("SELECT COUNT(*) FROM messages", [(1,)], timeout=SHORT)
    with pytest.raises(AssertionError, match=r"newest message from 5; last seen: \[\]"):
        await h.thread_of(5, timeout=SHORT)
    for wait in (helpers_twilio.thread_of(h, "+14155550100", SHORT),
                 helpers_messenger.thread_of(h, "1", "2", SHORT),
                 email_thread(h, "ann@example.org", SHORT)):
        with pytest.raises(AssertionError, match="a Slack thread for the newest message"):
            await wait
    # An outbox row that cannot be sent before the deadline: the Slack stand-in holds it.
    h.slack.delay_next("chat.postMessage", 1.0)
    assert await h.customer_says(6, "hello") == 200
    with pytest.raises(AssertionError, match=r"status = 'pending'.*last seen: \[\("):
        await h.drained(timeout=SHORT)
    await h.thread_of(6)


@pytest.mark.services  # a real PostgreSQL
async def test_postgres_wait_fails_with_what_it_saw() -> None:
    async with fresh_schema() as schema:
        with pytest.raises(AssertionError, match=r"last seen: \[\(1,\)\]"):
            await wait_pg_rows(schema, "SELECT 1", [(2,)], timeout=SHORT)


async def test_standin_waits_fail_with_what_they_saw(
    slack: SlackStandin, telegram: TelegramStandin,
) -> None:
    with pytest.raises(TimeoutError, match="got 0"):
        await slack.wait_for("chat.postMessage", 1, timeout=SHORT)
    with pytest.raises(TimeoutError, match="got 0"):
        await telegram.wait_for("sendMessage", 1, timeout=SHORT)
    with pytest.raises(TimeoutError, match="an ack of envelope E1"):
        await slack.wait_ack("E1", timeout=SHORT)
    with pytest.raises(TimeoutError, match="1 Socket Mode connection"):
        await slack.wait_socket_connections(1, timeout=SHORT)
    with pytest.raises(TimeoutError, match="an open Socket Mode connection"):
        await slack.socket_push({"type": "noop"}, timeout=SHORT)


@pytest.mark.backends("sqlite")
async def test_mail_waits_fail_with_what_they_saw(
    smtp: SmtpReceiver, dovecot: Dovecot, harness: Harness,
) -> None:
    with pytest.raises(AssertionError, match="0 mail"):
        await smtp.wait_for(1, timeout=SHORT)
    with pytest.raises(AssertionError, match=r"the email cursor at UID 1; last seen: \{\}"):
        await cursor_at(harness, 1, timeout=SHORT)


async def test_subprocess_waits_fail_with_what_they_saw(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="still running after"):
        await run_cli(["--help"], env={}, timeout=0.01)
    proc = BridgeProcess(tmp_path / "bridge.toml", {}, tmp_path, free_port())
    proc.runs = 1
    (tmp_path / "bridge-1.err").write_text("what the process said")
    proc.proc = subprocess.Popen(["sleep", "30"])  # noqa: ASYNC220 (returns at once)
    try:
        with pytest.raises(AssertionError, match=r"(?s)not healthy after .*what the process said"):
            await proc.wait_healthy(timeout=SHORT)
        with pytest.raises(AssertionError, match="still running"):
            await proc.wait_exit(timeout=SHORT)
    finally:
        proc.cleanup()
