"""Response-time targets as agents read them: the parent's due line (⏱, 🟡 at 80 %, 🔴
missed), the thread's reminder and the alerts channel's line.  Pure functions."""

from __future__ import annotations

from datetime import UTC, tzinfo

from bridge.console.render import when
from vocab.events import TargetMissed, TargetWarned
from vocab.targets import Target, TargetKind, TargetState


def _label(kind: str) -> str:
    return TargetKind(kind).label


def _span(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d}" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def due_line(target: Target, zone: tzinfo = UTC) -> str:
    """`⏱ first answer due 14:32` (🟡 once reminded, 🔴 once missed, ⏸ while stopped)."""
    label = _label(target.kind.value)
    if target.state is TargetState.PAUSED:
        left = _span(target.left_seconds or 0.0)
        return f"⏸ {label}: clock stopped ({left} of business time left)"
    due = when(target.due_at, zone) if target.due_at is not None else "not within two years"
    if target.state is TargetState.MISSED:
        return f"🔴 *{label} missed* (was due {due})"
    mark = "🟡" if target.warned_at is not None else "⏱"
    return f"{mark} {label} due {due}"


def warned_text(event: TargetWarned, zone: tzinfo = UTC) -> str:
    who = (f"<@{event.assignee}>" if event.assignee
           else " ".join(f"<@{m}>" for m in event.members) or "<!here>")
    return (f"🟡 {who}: 80 % of the time for the {_label(event.target)} is gone; it is due "
            f"{when(event.due_at, zone)}.")


def missed_text(event: TargetMissed, thread_link: str | None, zone: tzinfo = UTC) -> str:
    held = f", assigned to <@{event.assignee}>" if event.assignee else ", nobody assigned"
    where = f" <{thread_link}|Open the thread>." if thread_link else ""
    return (f"🔴 Team *{event.team}* missed the {_label(event.target)} target (due "
            f"{when(event.due_at, zone)}){held}.{where}")
