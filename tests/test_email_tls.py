"""Email over TLS (IMAP and SMTP, implicit TLS or STARTTLS, the certificate checked against
`ca_file`), and a refused login."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.email import imap
from tests.conftest import CHANNEL, HarnessFactory
from tests.dovecot import Dovecot, make_cert
from tests.mailservers import (
    EMAIL_ENV,
    SmtpReceiver,
    customer_mail,
    email_config,
)
from tests.test_email import thread_of
from tests.waiting import until
from vocab.backoff import backoff as real_backoff

# SQLite only: TLS and authentication towards the mail servers: nothing store-specific.
pytestmark = pytest.mark.backends("sqlite")

ANN = "Ann Kim <ann@example.org>"


@pytest.mark.parametrize("imap, smtp_security", [("ssl", "starttls"), ("starttls", "ssl")])
async def test_imap_and_smtp_over_implicit_tls_or_starttls(
    make_harness: HarnessFactory, dovecot: Dovecot, tls: tuple[Path, Path], imap: str,
    smtp_security: str,
) -> None:
    smtp = SmtpReceiver()
    controller = smtp.start(smtp_security, tls)
    try:
        port = dovecot.tls_port if imap == "ssl" else dovecot.port
        h = await make_harness({"connectors.email": email_config(
            dovecot, smtp, imap_port=port, imap_security=imap,
            smtp_security=smtp_security, ca_file=str(tls[0]))}, env=EMAIL_ENV)
        await dovecot.append(customer_mail(ANN, "Secure?", "Is this encrypted?",
                                           message_id="t1@example.org"))
        thread = await thread_of(h, "ann@example.org")
        assert await h.agent_says(thread, "Yes, both ways") == 200
        [sent] = await smtp.wait_for(1)
        assert sent.message["In-Reply-To"] == "<t1@example.org>"
        await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    finally:
        controller.stop()


async def test_a_refused_smtp_login_fails_the_reply_and_says_why(
    make_harness: HarnessFactory, dovecot: Dovecot,
) -> None:
    smtp = SmtpReceiver()
    controller = smtp.start()
    try:
        h = await make_harness({"connectors.email": email_config(dovecot, smtp)},
                               env={**EMAIL_ENV, "EMAIL_SMTP_PASSWORD": "wrong"})
        await dovecot.append(customer_mail(ANN, "Hi", "Hello", message_id="t2@example.org"))
        thread = await thread_of(h, "ann@example.org")
        assert await h.agent_says(thread, "Hello Ann") == 200
        await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("failed",)])
        await h.slack.wait_for("chat.postMessage", 2)
        notice = h.slack.thread(CHANNEL, thread)[-1]["text"]
        assert "smtp_user/smtp_password" in notice and "535" in notice
        assert smtp.received == []
    finally:
        controller.stop()


async def test_a_certificate_not_signed_by_ca_file_is_refused(
    make_harness: HarnessFactory, dovecot: Dovecot, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, quick_imap_retries: None,
) -> None:
    failed: list[int] = []  # the IMAP loop backs off once per failed session

    def recorded(attempt: int, **kw: Any) -> float:
        failed.append(attempt)
        return real_backoff(attempt, **kw)
    monkeypatch.setattr(imap, "backoff", recorded)
    other = tmp_path / "other"
    other.mkdir()
    stranger, _ = make_cert(other)  # trusting this CA, not the one Dovecot's cert is from
    smtp = SmtpReceiver()
    controller = smtp.start()
    try:
        h = await make_harness({"connectors.email": email_config(
            dovecot, smtp, imap_security="starttls", ca_file=str(stranger))}, env=EMAIL_ENV)
        await dovecot.append(customer_mail(ANN, "Hi", "Hello", message_id="t3@example.org"))
        # Two sessions failed (the first and its retry), neither got as far as a login.
        await until(lambda: len(failed) >= 2, lambda: f"failed sessions: {failed}", timeout=10)
        poller = h.bridge.connectors["email"].poller  # type: ignore[attr-defined]
        assert poller.sessions == 0
        assert h.count("messages") == 0
        assert h.rows("SELECT COUNT(*) FROM connector_state WHERE key = 'cursor'") == [(0,)]
    finally:
        controller.stop()
