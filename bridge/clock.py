"""The bridge's business clock: what business time is (hours, targets, snoozes, 24-hour
windows, link and code expiry, reports).  Signature time windows, leases and I/O timeouts use
real time and never this clock.

Tests move it in-process (`bridge.standins.clock.OffsetClock`); black-box tests start
`bridge run` or any CLI command with `BRIDGE_FAKE_NOW=<ISO 8601 instant>`, and the clock starts
there and runs normally from it.  That is test-only: it is refused unless the config says
`[server] allow_fake_clock = true`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

FAKE_NOW = "BRIDGE_FAKE_NOW"

Clock = Callable[[], float]


class FakeClockRefused(ValueError):
    """`BRIDGE_FAKE_NOW` set where it is not allowed, or not an instant; `str()` says the fix."""


class StartedAt:
    """Real time's rate, from a chosen start instant."""

    def __init__(self, start: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._start = start
        self._monotonic = monotonic
        self._t0 = monotonic()

    def __call__(self) -> float:
        return self._start + (self._monotonic() - self._t0)


def parse_instant(text: str) -> float:
    """An ISO 8601 instant as epoch seconds; without an offset it is UTC."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FakeClockRefused(
            f"{FAKE_NOW}={text!r} is not an ISO 8601 instant "
            "(fix: e.g. BRIDGE_FAKE_NOW=2026-12-07T09:00:00+01:00)") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


def business_clock(environ: Mapping[str, str], *, allowed: bool,
                   config_path: str = "the config file") -> Clock:
    """The clock for this process: real time, or `BRIDGE_FAKE_NOW` onwards when allowed."""
    value = environ.get(FAKE_NOW, "")
    if not value:
        return time.time
    if not allowed:
        raise FakeClockRefused(
            f"{FAKE_NOW} is set but {config_path} does not allow a fake clock "
            f"(fix: unset {FAKE_NOW}, or for tests only set [server] allow_fake_clock = true)")
    return StartedAt(parse_instant(value))
