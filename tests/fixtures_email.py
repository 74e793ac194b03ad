"""The email tests' servers as fixtures (a pytest plugin, see conftest): a private Dovecot
and an SMTP receiver, each started on a free loopback port and stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.dovecot import Dovecot, running
from tests.mailservers import SmtpReceiver


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    async with running() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    controller = receiver.start()
    yield receiver
    controller.stop()
