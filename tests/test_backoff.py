"""The one backoff formula (vocab/backoff.py) used by the outbox and the polling loops."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from vocab.backoff import AROUND, EQUAL, backoff


def test_it_doubles_from_base_up_to_the_cap() -> None:
    top = [backoff(n, base=0.5, cap=30.0, rand=lambda: 1.0) for n in range(1, 10)]
    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_equal_jitter_is_between_half_and_all_of_the_delay() -> None:
    assert backoff(3, base=1.0, cap=60.0, rand=lambda: 0.0) == 2.0
    assert backoff(3, base=1.0, cap=60.0, rand=lambda: 0.5) == 3.0


def test_the_outbox_jitter_is_half_to_one_and_a_half_times() -> None:
    assert backoff(2, base=1.0, cap=60.0, jitter=AROUND, rand=lambda: 0.0) == 1.0
    assert backoff(2, base=1.0, cap=60.0, jitter=AROUND, rand=lambda: 0.5) == 2.0
    assert backoff(9, base=1.0, cap=60.0, jitter=AROUND, rand=lambda: 1.0) == 90.0


def test_a_seeded_random_gives_the_same_waits() -> None:
    first, second = random.Random(7), random.Random(7)
    assert ([backoff(n, base=0.5, cap=30.0, rand=first.random) for n in range(1, 8)]
            == [backoff(n, base=0.5, cap=30.0, rand=second.random) for n in range(1, 8)])


@given(attempt=st.integers(min_value=-5, max_value=100_000),
       base=st.floats(min_value=0.001, max_value=100.0),
       cap=st.floats(min_value=0.001, max_value=86_400.0),
       r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
       jitter=st.sampled_from([EQUAL, AROUND]))
def test_any_attempt_gives_a_finite_wait_within_the_jittered_cap(
        attempt: int, base: float, cap: float, r: float, jitter: tuple[float, float]) -> None:
    """Slack posts are retried without end: a thousandth attempt must not overflow."""
    wait = backoff(attempt, base=base, cap=cap, jitter=jitter, rand=lambda: r)
    ceiling = min(base, cap) if attempt <= 1 else cap
    assert math.isfinite(wait)
    assert jitter[0] * min(base, cap) <= wait * (1 + 1e-9)
    assert wait <= jitter[1] * ceiling * (1 + 1e-9)
