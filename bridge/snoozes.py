"""Snoozed conversations open again when their time comes: a loop asks the store every
`interval` seconds (of real time) for snoozes due by the bridge's clock.

Every instance of a deployment runs it: the store wakes each snooze in a conditional update,
so of several instances asking at once one wakes it and the others find nothing
(`storage/ownership.py`).  A failed round (the database away) is logged and tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bridge.loops import Rounds

log = logging.getLogger(__name__)


class SnoozeWaker:
    def __init__(self, wake: Callable[[], Awaitable[int]], interval: float = 1.0) -> None:
        self.wake = wake  # opens what is due; returns how many rows it queued
        self.interval = interval
        self._rounds = Rounds("snoozes", lambda: self.wake(), lambda: self.interval, log,
                              "waking snoozed conversations failed")

    async def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()
