"""The email tests' servers as fixtures (a pytest plugin, see conftest): one Dovecot for the
whole session (with STARTTLS and implicit TLS on a certificate of its own) and a mail user on
it per test; an SMTP receiver per test, on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.email.imap import ImapPoller
from tests.dovecot import Dovecot, DovecotServer, make_cert, serving
from tests.mailservers import SmtpReceiver


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shared Dovecot's certificate (cert.pem, key.pem): its own CA, for 127.0.0.1."""
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def dovecot_server(tls: tuple[Path, Path]) -> Iterator[DovecotServer]:
    with serving(tls) as server:
        yield server


@pytest.fixture
def dovecot(dovecot_server: DovecotServer) -> Dovecot:
    """A mail user of this test's own on the shared Dovecot."""
    return dovecot_server.mailbox()


@pytest.fixture
def private_dovecot() -> Iterator[Dovecot]:
    """A Dovecot of this test's own, for a test that stops and starts the server."""
    with serving() as server:
        yield server.mailbox()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    controller = receiver.start()
    yield receiver
    controller.stop()


@pytest.fixture
def quick_imap_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The IMAP loop's backoff starts at 50 ms instead of 1 s (the same doubling, jitter and
    cap), for a test that waits for what happens after a few failed sessions."""
    monkeypatch.setattr(ImapPoller, "base_delay", 0.05)
