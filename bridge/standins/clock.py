"""A clock to hand the bridge (`Bridge(clock=...)`) when time must pass faster than it does:
the demo and the tests move it past WhatsApp's and Messenger's 24-hour windows."""

from __future__ import annotations

import time


class OffsetClock:
    """Real time plus an offset the caller moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset
