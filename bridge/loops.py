"""A background round repeated until stopped: the snooze waker, the response-time targets'
keeper, the retention job and the KPI digest each run one (every instance runs its own; the
store decides which of them acts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Rounds:
    """Calls `step` now and then every `every()` seconds of real time; a failed round is
    logged as `failed` (with the exception's type, never a traceback) and the next one runs."""

    def __init__(self, name: str, step: Callable[[], Awaitable[object]],
                 every: Callable[[], float], log: logging.Logger, failed: str) -> None:
        self.name, self.step, self.every, self.log, self.failed = name, step, every, log, failed
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception as exc:
                self.log.warning("%s (%s); trying again", self.failed, type(exc).__name__)
            await asyncio.sleep(self.every())
