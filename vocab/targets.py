"""Response-time targets (issue 20) as the store keeps them and the console shows them."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict


class TargetKind(enum.StrEnum):
    FIRST_RESPONSE = "first_response"  # the customer's first wait for an agent's reply
    NEXT_RESPONSE = "next_response"  # each later wait, after an agent has replied
    RESOLUTION = "resolution"  # from opening (or reopening) to the close

    @property
    def label(self) -> str:
        return {"first_response": "first answer", "next_response": "next answer",
                "resolution": "resolution"}[self.value]


class TargetState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # pending or snoozed: the clock stands still
    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"  # closed without an answer owed any more


class Target(BaseModel):
    """One row of `response_targets`."""

    model_config = ConfigDict(frozen=True)

    id: int
    conversation_id: int
    team: str
    kind: TargetKind
    state: TargetState
    assignee: str | None
    started_at: float
    due_at: float | None
    warn_at: float | None
    warned_at: float | None
    met_at: float | None
    missed_at: float | None
    business_seconds: float | None
    target_seconds: float | None
    left_seconds: float | None


class Owed(BaseModel):
    """A conversation that is not closed, with what decides which targets run for it."""

    model_config = ConfigDict(frozen=True)

    conversation_id: int
    slack_channel: str | None
    assignee: str | None
    created_at: float
    waiting_since: float | None  # the customer's first message after the last agent reply
    answered: bool  # an agent has replied (a note or an automatic answer does not count)
    reopened_at: float | None  # the last reopening, if any
    answer_started: float | None = None  # the latest answer target's start, if any
    resolution_started: float | None = None  # the latest resolution target's start, if any


class Active(BaseModel):
    """A target still to be settled (running, paused, or missed and not answered yet), with
    its conversation's state."""

    model_config = ConfigDict(frozen=True)

    target: Target
    status: str  # the conversation's: open, pending, snoozed, closed
    status_at: float | None
    closed_at: float | None
    assignee: str | None
    replied_at: float | None  # the first agent reply since the target started


class TargetStart(BaseModel):
    model_config = ConfigDict(frozen=True)

    conversation_id: int
    team: str
    kind: TargetKind
    assignee: str | None
    started_at: float
    due_at: float | None
    warn_at: float | None
    target_seconds: float


class TargetChange(BaseModel):
    """A conditional change of one target: applied only while it is in one of `expect` (and,
    for a reminder, not reminded yet), so of several instances one applies it."""

    model_config = ConfigDict(frozen=True)

    id: int
    conversation_id: int
    expect: tuple[TargetState, ...]
    state: TargetState
    due_at: float | None = None
    warn_at: float | None = None
    left_seconds: float | None = None
    warned_at: float | None = None
    met_at: float | None = None
    missed_at: float | None = None
    business_seconds: float | None = None
    assignee: str | None = None  # who held it when it was settled (kept if None)
    unwarned: bool = False  # only if not reminded yet
    settled: bool = False  # a missed target no longer owed (closed): kept as it was
    redraw: bool = True  # the parent shows the change
