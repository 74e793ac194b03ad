"""The web chat's rate-limit window with a moved clock (pure: `Limiter` takes `now`): a sliding
60 s per key, independent keys, memory bounded however many keys arrive."""

from __future__ import annotations

from connectors.webchat.protocol import Limiter


def test_the_window_slides_with_the_clock() -> None:
    limit = Limiter(per_minute=3)
    t = 1000.0
    assert [limit.allow("a", t + i) for i in range(4)] == [True, True, True, False]
    assert limit.allow("b", t + 3)  # another visitor is not limited by "a"
    assert not limit.allow("a", t + 59.9)  # the first event is still inside the window
    assert limit.allow("a", t + 60.0)  # ...and now it is out: one slot again
    assert not limit.allow("a", t + 60.5)
    assert [limit.allow("a", t + 200 + i) for i in range(4)] == [True, True, True, False]


def test_refused_attempts_do_not_extend_the_window() -> None:
    limit = Limiter(per_minute=1)
    assert limit.allow("a", 0.0)
    assert not any(limit.allow("a", s) for s in (1.0, 30.0, 59.0))  # hammering is not counted
    assert limit.allow("a", 60.0)


def test_memory_is_bounded() -> None:
    limit = Limiter(per_minute=1, size=100)
    for i in range(1000):
        assert limit.allow(f"k{i}", 0.0)
    assert len(limit._seen) <= 100
