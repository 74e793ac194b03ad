"""The target keeper's decisions, one situation at a time (pure: no store, no Slack)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.hours import Calendar
from bridge.targets import TeamTargets, moves
from vocab.events import TargetMissed, TargetWarned
from vocab.targets import Active, Target, TargetChange, TargetKind, TargetState

HOUR = 3600.0
TEAM = TeamTargets("support", {TargetKind.FIRST_RESPONSE: HOUR}, Calendar.always(),
                   alerts_channel="C0ALERTS01", members=("U0AGENT1",))


def active(state: TargetState = TargetState.RUNNING, kind: TargetKind = TargetKind.FIRST_RESPONSE,
           **conv: Any) -> Active:
    target = Target(id=1, conversation_id=7, team="support", kind=kind, state=state,
                    assignee=None, started_at=0.0, due_at=HOUR, warn_at=0.8 * HOUR,
                    warned_at=None, met_at=None, missed_at=None, business_seconds=None,
                    target_seconds=HOUR,
                    left_seconds=conv.pop("left", None))
    return Active(target=target, **{"status": "open", "status_at": 0.0, "closed_at": None,
                                    "assignee": None, "replied_at": None, **conv})


def decide(item: Active, now: float) -> list[tuple[TargetChange, tuple[Any, ...]]]:
    return list(moves(item, Calendar.always(), TEAM, now))


def test_nothing_before_80_percent_then_one_reminder_to_the_members() -> None:
    assert decide(active(), 0.5 * HOUR) == []
    [(move, events)] = decide(active(), 0.85 * HOUR)
    assert move.unwarned and move.warned_at == 0.85 * HOUR
    assert events == (TargetWarned(target="first_response", due_at=HOUR,
                                   members=("U0AGENT1",)),)


def test_due_is_missed_with_one_alert() -> None:
    [(move, events)] = decide(active(), HOUR + 1)
    assert move.state is TargetState.MISSED and move.missed_at == HOUR
    assert isinstance(events[0], TargetMissed) and events[0].alerts_channel == "C0ALERTS01"


@pytest.mark.parametrize(("replied", "state", "took"), [
    (0.25 * HOUR, TargetState.MET, 0.25 * HOUR), (1.5 * HOUR, TargetState.MISSED, 1.5 * HOUR)])
def test_a_reply_meets_it_or_is_late(replied: float, state: TargetState, took: float) -> None:
    [(move, events)] = decide(active(replied_at=replied), 2 * HOUR)
    assert move.state is state and move.met_at == replied and events == ()
    assert move.business_seconds == pytest.approx(took)


@pytest.mark.parametrize("stopped", ["pending", "snoozed"])
def test_pending_or_snoozed_stops_the_clock_and_open_starts_it_again(stopped: str) -> None:
    [(move, _)] = decide(active(status=stopped, status_at=0.5 * HOUR), 3 * HOUR)
    assert move.state is TargetState.PAUSED and move.left_seconds == pytest.approx(0.5 * HOUR)
    paused = active(TargetState.PAUSED, left=0.5 * HOUR, status_at=10 * HOUR)
    [(move, _)] = decide(paused, 10 * HOUR)
    assert move.state is TargetState.RUNNING and move.due_at == pytest.approx(10.5 * HOUR)
    assert move.warn_at == pytest.approx(10.3 * HOUR)


def test_pending_after_the_due_time_is_a_miss_not_a_pause() -> None:
    [(move, _)] = decide(active(status="pending", status_at=2 * HOUR), 3 * HOUR)
    assert move.state is TargetState.MISSED


def test_a_close_cancels_an_answer_and_meets_a_resolution() -> None:
    [(move, _)] = decide(active(status="closed", closed_at=0.5 * HOUR), HOUR)
    assert move.state is TargetState.CANCELLED
    resolution = active(kind=TargetKind.RESOLUTION, status="closed", closed_at=0.5 * HOUR)
    [(move, _)] = decide(resolution, HOUR)
    assert move.state is TargetState.MET and move.met_at == 0.5 * HOUR
    [(move, _)] = decide(active(TargetState.MISSED, status="closed"), 2 * HOUR)
    assert move.settled and move.state is TargetState.MISSED
