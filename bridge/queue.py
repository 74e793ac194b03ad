"""The queue (issue 19, item 4): who is waiting longest.  An agent sees the conversations
assigned to them and, per team they belong to (`members`, or every team that lists none), the
open unassigned ones, the longest-waiting customer first.  `bridge queue` prints every team's.
Rendered for Slack by `bridge/console/queue.py`; as a table or JSON by the CLI."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.teams import Team
from storage.base import QueueEntry

SLACK_LINK = "https://slack.com"  # Slack redirects /archives/<channel>/p<ts> to the workspace


@dataclass(frozen=True)
class Section:
    title: str
    team: str | None  # None: the agent's own
    entries: tuple[QueueEntry, ...]


def belongs(user: str, team: Team) -> bool:
    return not team.members or user in team.members


def agent_sections(entries: Sequence[QueueEntry], teams: Mapping[str, Team],
                   user: str) -> list[Section]:
    """What one agent's queue shows: theirs, then each of their teams' unassigned."""
    out = [Section("Assigned to you", None,
                   tuple(e for e in entries if e.assignee == user))]
    for name, team in sorted(teams.items()):
        if belongs(user, team):
            out.append(Section(f"Waiting in {name}", name, tuple(
                e for e in entries if e.assignee is None and e.slack_channel == team.channel)))
    return out


def team_sections(entries: Sequence[QueueEntry], teams: Mapping[str, Team],
                  only: str | None = None) -> list[Section]:
    """Every team's open conversations (assigned or not), for `bridge queue`."""
    return [Section(name, name, tuple(e for e in entries if e.slack_channel == team.channel))
            for name, team in sorted(teams.items()) if only is None or name == only]


def waited(entry: QueueEntry, now: float) -> str:
    """How long the customer has waited: `42 min`, `3 h 5 min`, `2 d 4 h`; `answered`."""
    if entry.waiting_since is None:
        return "answered"
    minutes = max(0, int(now - entry.waiting_since) // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def thread_link(entry: QueueEntry, base: str = SLACK_LINK) -> str | None:
    if not entry.slack_channel or not entry.slack_thread_ts:
        return None
    return f"{base.rstrip('/')}/archives/{entry.slack_channel}/p" \
           f"{entry.slack_thread_ts.replace('.', '')}"


def as_json(sections: Sequence[Section], now: float) -> str:
    return json.dumps([{
        "team": s.team, "conversation_id": e.conversation_id, "customer": e.customer,
        "channel": e.connector, "assignee": e.assignee,
        "waited_seconds": None if e.waiting_since is None else round(now - e.waiting_since),
        "target": target_json(e), "thread": thread_link(e)}
        for s in sections for e in s.entries], indent=2)


def target_text(entry: QueueEntry) -> str:
    """`  first_response due 2026-12-09T08:30:00+00:00 (80 % gone)`, or nothing."""
    found = target_json(entry)
    if found is None:
        return ""
    if found["state"] == "paused":
        return f"  {found['kind']} paused"
    if found["state"] == "missed":
        return f"  {found['kind']} MISSED (due {found['due_at']})"
    warned = " (80 % gone)" if found["warned"] else ""
    return f"  {found['kind']} due {found['due_at']}{warned}"


def target_json(entry: QueueEntry) -> dict[str, Any] | None:
    """The response-time target the parent shows: kind, state (running, paused, missed),
    whether the 80 % reminder went out, the due time (ISO 8601, UTC)."""
    t = entry.target
    if t is None:
        return None
    due = None if t.due_at is None else datetime.fromtimestamp(t.due_at, UTC).isoformat(
        timespec="seconds")
    return {"kind": t.kind.value, "state": t.state.value, "warned": t.warned_at is not None,
            "due_at": due}


def as_table(sections: Sequence[Section], now: float) -> str:
    lines: list[str] = []
    for section in sections:
        lines.append(f"{section.title} ({len(section.entries)})")
        for e in section.entries:
            lines.append(f"  #{e.conversation_id:<6} {waited(e, now):>12}  {e.connector:<9} "
                         f"{(e.customer or '-')[:24]:<24} {e.assignee or 'unassigned':<12} "
                         f"{thread_link(e) or '(no thread yet)'}{target_text(e)}")
    return "\n".join(lines)
