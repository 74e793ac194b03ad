"""What every demo act waits with: a condition on the stand-ins, polled until true."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(check: Callable[[], object], what: str) -> None:
    """Wait until `check()` is true; fail saying `what` was awaited (10 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while not check():
        if loop.time() > deadline:
            raise TimeoutError(f"not within 10s: {what}")
        await asyncio.sleep(0.05)
