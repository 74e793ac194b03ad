"""Exponential backoff with jitter, one formula for every retry loop of the bridge.

The wait after the `attempt`-th consecutive failure is `base * 2**(attempt-1)`, capped at `cap`,
then spread by a jitter factor drawn uniformly from `jitter` (low, high): so many retriers that
failed together do not come back together.  Pure: the random source is passed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# "Equal jitter": between half and all of the capped delay (the polling loops).
EQUAL = (0.5, 1.0)
# Half to one and a half times the capped delay (the outbox's retries).
AROUND = (0.5, 1.5)
_MAX_DOUBLINGS = 60  # 2**60 times any sane base is past any cap; keeps the float finite


def backoff(attempt: int, *, base: float, cap: float, jitter: tuple[float, float] = EQUAL,
            rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after `attempt` consecutive failures (1 for the first).

    `rand` returns a float in [0, 1) (`random.random`, a seeded `Random().random`, or a
    constant in tests)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), _MAX_DOUBLINGS))
    low, high = jitter
    return ceiling * (low + (high - low) * rand())
