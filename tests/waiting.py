"""Waiting on a condition with a deadline that fails: the one polling loop of the tests.

Every waiting helper (`Harness.wait_rows`, `Harness.drained`, `wait_pg_rows`, `until` ...)
is built on `poll`, which raises `AssertionError` with what it last saw when the condition
still does not hold at the deadline.  Nothing returns quietly on timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
INTERVAL = 0.02


async def poll(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str,
               timeout: float = 5.0) -> T:
    """Call `read()` until `done(value)`; return that value, or fail after `timeout` seconds
    saying `what` was awaited and the last value read."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await read()
        if done(got):
            return got
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}; last seen: {got!r}")
        await asyncio.sleep(INTERVAL)


async def until(check: Callable[[], bool], what: str | Callable[[], str],
                timeout: float = 30.0) -> None:
    """Wait until `check()` holds; fail after `timeout` seconds with `what` (a text, or a
    function that says what was seen at the deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"not within {timeout}s: {said}")
        await asyncio.sleep(INTERVAL)
